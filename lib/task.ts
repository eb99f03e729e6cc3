import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import { IllegalTransitionError } from './errors.js';
import { gateNameSchema, gateStateSchema, reviewRefSchema, verdictSchema, type GateState, type ReviewRef, type Verdict } from './gates.js';
import { taskGitSchema, type TaskGit } from './workspace/task-git.js';

/** Task ids are ULIDs: unique and sortable by creation time. */
const nextUlid = monotonicFactory();
export const newTaskId = (): string => nextUlid();
export const taskIdSchema = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'is not a task id (a 26-character ULID)');

export const TASK_STATUSES = ['waiting', 'queued', 'active', 'needs_input', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
export const taskStatusSchema = z.enum(TASK_STATUSES, { error: `must be one of ${TASK_STATUSES.join(', ')}` });
export type TaskStatus = z.infer<typeof taskStatusSchema>;
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled', 'timed_out']);
export const isTerminal = (status: TaskStatus): boolean => TERMINAL_STATUSES.has(status);
/** Where following a task stops: an end, or a question for the user (`needs_input`: not an end, nobody works on it). */
export const isSettled = (status: TaskStatus): boolean => isTerminal(status) || status === 'needs_input';

/**
 * The state machine of DESIGN.md (A task's life). `active → queued` is a retry (agent died or was stopped);
 * `active → needs_input` a run that asked the user a question (ask_user), `needs_input → queued` its answer;
 * `waiting → queued` is a subtask whose dependencies completed.
 */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  waiting: ['queued', 'cancelled', 'failed'],
  queued: ['active', 'cancelled', 'failed'],
  active: ['queued', 'active', 'needs_input', 'completed', 'failed', 'cancelled', 'timed_out'],
  /** Waiting for the user's answer (`dan answer` queues it again; DAN_INPUT_TIMEOUT_S fails it). */
  needs_input: ['queued', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};

/**
 * Moves out of an end, only on the user's explicit request (`dan retry`): a failed, timed-out or cancelled task
 * queued again (a subtask: waiting for its graph), a goal reopened. Never part of an ordinary transition, so a
 * late write of a dead attempt cannot reopen an ended task.
 */
export const REOPENS: Readonly<Partial<Record<TaskStatus, readonly TaskStatus[]>>> = {
  // `completed`: a change that failed only its review gates, waived by hand and merged (`dan waive`).
  failed: ['queued', 'waiting', 'active', 'completed'],
  timed_out: ['queued', 'waiting', 'active'],
  cancelled: ['queued', 'waiting', 'active'],
};
export const RETRYABLE_STATUSES: readonly TaskStatus[] = ['failed', 'timed_out', 'cancelled'];

export function canReopen(from: TaskStatus, to: TaskStatus): boolean {
  return REOPENS[from]?.includes(to) ?? false;
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(taskId: string, from: TaskStatus, to: TaskStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(taskId, from, to);
}

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export const prioritySchema = z.enum(PRIORITIES, { error: 'must be low, normal or high' });
export type Priority = z.infer<typeof prioritySchema>;
/** BullMQ priority numbers: lower runs first. */
export const BULL_PRIORITY: Readonly<Record<Priority, number>> = { high: 1, normal: 5, low: 10 };

export const MAX_DESCRIPTION_BYTES = 64 * 1024;
export const MAX_CONTEXT_BYTES = 64 * 1024;
export const MIN_TIMEOUT_S = 10;
export const MAX_TIMEOUT_S = 86_400;
export const MAIN_DOMAIN = 'main';

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

export const domainNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a folder name: lowercase letters, digits, "_" or "-"');

export const descriptionSchema = z
  .string()
  .refine((s) => byteLength(s) >= 1 && s.trim().length > 0, 'must not be empty')
  .refine((s) => byteLength(s) <= MAX_DESCRIPTION_BYTES, `must be at most ${MAX_DESCRIPTION_BYTES} bytes`);

export const contextSchema = z
  .record(z.string(), z.unknown())
  .refine((c) => byteLength(JSON.stringify(c)) <= MAX_CONTEXT_BYTES, `must be at most ${MAX_CONTEXT_BYTES} bytes of JSON`);

export const timeoutSchema = z.coerce
  .number({ error: 'must be a whole number of seconds' })
  .int('must be a whole number of seconds')
  .min(MIN_TIMEOUT_S, `must be at least ${MIN_TIMEOUT_S} seconds`)
  .max(MAX_TIMEOUT_S, `must be at most ${MAX_TIMEOUT_S} seconds`);

/** The CLI's `--effort` levels (`claude --help`). */
export const EFFORT_LEVELS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;
export const effortSchema = z.enum(EFFORT_LEVELS, { error: `must be one of ${EFFORT_LEVELS.join(', ')}` });
/** A model name or alias as the CLI takes it (`sonnet`, `claude-sonnet-4-5`, `us.anthropic.claude-…:0`). */
export const modelNameSchema = z
  .string({ error: 'must be a model name' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/\[\]-]{0,127}$/, 'must be a model name or alias (letters, digits, ".", "-", ":", "/", "@", "[", "]"; at most 128)');
/** A spending cap in US dollars: more than 0, at most 10000 (a larger one is surely a typo). */
export const MAX_BUDGET_USD = 10_000;
export const budgetSchema = z.coerce
  .number({ error: 'must be an amount in US dollars, like 2.50' })
  .refine((n) => Number.isFinite(n), 'must be an amount in US dollars, like 2.50')
  .refine((n) => n > 0, 'must be more than 0 dollars')
  .refine((n) => n <= MAX_BUDGET_USD, `must be at most ${MAX_BUDGET_USD} dollars`);

/** What a user asks for: the input of `dan send-task`. */
export const taskSpecSchema = z.object({
  domain: domainNameSchema,
  description: descriptionSchema,
  priority: prioritySchema.default('normal'),
  timeoutS: timeoutSchema,
  context: contextSchema.default({}),
  parent: taskIdSchema.optional(),
  dependsOn: z.array(taskIdSchema).max(100).default([]),
  /** Subtask key within its parent's plan. */
  key: z.string().min(1).max(64).optional(),
  /** Keep the task's branch for review instead of merging it (`--no-merge`). */
  noMerge: z.boolean().default(false),
  /** A merge task (`dan merge --resolve`): resolve and merge this task's kept branch; the run is the resolution. */
  mergeOf: taskIdSchema.optional(),
  /** A follow-up (`dan send-task --continue <id>`): the task whose conversation this one continues. */
  follows: taskIdSchema.optional(),
  maxAttempts: z.number().int().min(1).max(100),
  /** `--model` for this task's runs. @default DAN_MODEL, else the domain's settings, else the CLI's default */
  model: modelNameSchema.optional(),
  /** `--effort`. @default the CLI's */
  effort: effortSchema.optional(),
  /** `--fallback-model`: used when the model is overloaded. */
  fallbackModel: modelNameSchema.optional(),
  /** `--max-budget-usd` of each run. @default DAN_TASK_BUDGET_USD */
  budgetUsd: budgetSchema.optional(),
  /** The review gates of the task's change (`--gate`), in order; [] for none (`--no-gates`). @default the domain's dan.json */
  gates: z.array(gateNameSchema).max(8).optional(),
  /** A gate's review task: the change it reviews. */
  review: reviewRefSchema.optional(),
});
export type TaskSpec = z.infer<typeof taskSpecSchema>;
export type TaskSpecInput = z.input<typeof taskSpecSchema>;

/** Parses a context flag: must be a JSON object. */
export function parseContextJson(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be a JSON object');
  return value as Record<string, unknown>;
}

const numeric = z.coerce.number();
const optionalNumber = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : Number(v)))
  .pipe(z.number().finite().optional());
const jsonField = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** Usage figures from the CLI's result event. */
export const usageSchema = z
  .object({
    input_tokens: z.number().optional(),
    output_tokens: z.number().optional(),
    cache_creation_input_tokens: z.number().optional(),
    cache_read_input_tokens: z.number().optional(),
  })
  .passthrough();
export type Usage = z.infer<typeof usageSchema>;

/** A question a run asked the user with dan's MCP tool ask_user. */
export const questionSchema = z.object({
  question: z.string().min(1).max(MAX_DESCRIPTION_BYTES),
  options: z.array(z.string().max(1000)).max(20).optional(),
  askedAt: z.number().optional(),
});
export type Question = z.infer<typeof questionSchema>;

/** `dan answer`: 1 byte to 64 KiB. */
export const answerSchema = z
  .string({ error: 'must be text' })
  .refine((s) => byteLength(s) >= 1 && s.trim().length > 0, 'must not be empty')
  .refine((s) => byteLength(s) <= MAX_DESCRIPTION_BYTES, `must be at most ${MAX_DESCRIPTION_BYTES} bytes`);

/** How a task ended before a `dan retry` started it again. */
export const earlierEndSchema = z.object({
  status: z.string(),
  attempts: z.number().int(),
  error: z.string().optional(),
  finishedAt: z.number().optional(),
  retriedAt: z.number(),
});
export type EarlierEnd = z.infer<typeof earlierEndSchema>;

/**
 * The task record as stored in the hash `<prefix>task:<id>` (all fields are strings in Redis).
 * Written and read with this one schema.
 */
export const taskRecordHashSchema = z.object({
  id: taskIdSchema,
  domain: domainNameSchema,
  description: z.string(),
  priority: prioritySchema,
  timeoutS: numeric.pipe(z.number().int().positive()),
  context: jsonField(z.record(z.string(), z.unknown())),
  status: taskStatusSchema,
  attempts: numeric.pipe(z.number().int().min(0)),
  maxAttempts: numeric.pipe(z.number().int().min(1)),
  createdAt: numeric,
  updatedAt: numeric,
  parent: z.string().optional(),
  key: z.string().optional(),
  dependsOn: jsonField(z.array(z.string())).optional(),
  children: jsonField(z.array(z.string())).optional(),
  agent: z.string().optional(),
  startedAt: optionalNumber,
  finishedAt: optionalNumber,
  result: z.string().optional(),
  error: z.string().optional(),
  reason: z.string().optional(),
  costUsd: optionalNumber,
  turns: optionalNumber,
  usage: jsonField(usageSchema).optional(),
  cancelRequested: z.string().optional(),
  /** A `main` task's accepted plan (JSON), written with its subtasks. */
  plan: z.string().optional(),
  noMerge: z.string().optional(),
  mergeOf: z.string().optional(),
  /** The task whose conversation this one continues (`--continue`). */
  follows: z.string().optional(),
  /** The Claude Code session of the task's last run, saved to `<prefix>task:<id>:session` (lib/agent/session.ts). */
  sessionId: z.string().optional(),
  /** Where the task's change lives and what became of it (lib/workspace/task-git.ts), JSON. */
  git: jsonField(taskGitSchema).optional(),
  /** What the run's status hides (JSON list): `no changes`, `2 refused writes`, `1 tool error`. */
  warnings: jsonField(z.array(z.string())).optional(),
  /** Asked for: `--model`, `--effort`, `--fallback-model`, `--max-budget-usd`. */
  model: z.string().optional(),
  effort: z.string().optional(),
  fallbackModel: z.string().optional(),
  budgetUsd: optionalNumber,
  /** The model the last run used, as the CLI's init event named it. */
  modelUsed: z.string().optional(),
  /** The subscription token (its index in CLAUDE_CODE_OAUTH_TOKEN, never its value) of the last run. */
  tokenIndex: optionalNumber,
  /** The ends before each `dan retry` (JSON list), oldest first. */
  retried: jsonField(z.array(earlierEndSchema)).optional(),
  /** The last question the task's run asked the user (ask_user), JSON. */
  question: jsonField(questionSchema).optional(),
  /** The user's answer to it (`dan answer`), until a run has taken it. */
  answer: z.string().optional(),
  /** The gates asked for (JSON list); absent: the domain's. */
  gates: jsonField(z.array(gateNameSchema)).optional(),
  /** A review task's subject (JSON). */
  review: jsonField(reviewRefSchema).optional(),
  /** A review task's verdict (JSON). */
  verdict: jsonField(verdictSchema).optional(),
  /** The author's gates, their rounds and verdicts (JSON). */
  reviews: jsonField(z.array(gateStateSchema)).optional(),
});

export type TaskRecordHash = z.infer<typeof taskRecordHashSchema>;

/** A task record as the rest of dan sees it. */
export interface TaskRecord {
  id: string;
  domain: string;
  description: string;
  priority: Priority;
  timeoutS: number;
  context: Record<string, unknown>;
  status: TaskStatus;
  /** How many times the task has been started; also the fencing token of the current start. */
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  updatedAt: number;
  parent?: string;
  key?: string;
  dependsOn: string[];
  children: string[];
  agent?: string;
  startedAt?: number;
  finishedAt?: number;
  result?: string;
  error?: string;
  /** Why the last transition happened (requeued after a dead agent, cancelled by the user …). */
  reason?: string;
  costUsd?: number;
  turns?: number;
  usage?: Usage;
  cancelRequested: boolean;
  /** A `main` task's accepted plan: subtask keys, domains, descriptions and dependencies. */
  plan?: string;
  /** The branch is kept for review instead of merged. */
  noMerge: boolean;
  /** The task whose kept branch this one resolves and merges (`dan merge --resolve`). */
  mergeOf?: string;
  /** The task whose conversation this one continues (`dan send-task --continue`). */
  follows?: string;
  /** The Claude Code session of the task's last run (saved beside the record, so any agent can resume it). */
  sessionId?: string;
  /** Git workspaces: the task's branch, commits, diff stat and merge state. */
  git?: TaskGit;
  /**
   * What the last run's status hides: `no changes`, `2 refused writes`, `1 refused tool call`, `3 tool errors`.
   * Empty for a clean run. `completed` means the CLI finished without an error; with warnings it may not have
   * done what it was asked (README, A task's outcome).
   */
  warnings?: string[];
  /** The task's `--model`, `--effort`, `--fallback-model` and `--budget`, when given. */
  model?: string;
  effort?: string;
  fallbackModel?: string;
  budgetUsd?: number;
  /** The model the last run used (the CLI's init event). */
  modelUsed?: string;
  /** Which subscription token ran the last run: its index in CLAUDE_CODE_OAUTH_TOKEN, never its value. */
  tokenIndex?: number;
  /** How the task ended before each `dan retry`, oldest first (its attempts were reset each time). */
  retried?: EarlierEnd[];
  /** The last question the task's run asked the user. */
  question?: Question;
  /** The user's answer, until a run has taken it. */
  answer?: string;
  /** The gates asked for with the task (`--gate`, [] for `--no-gates`); absent: its domain's. */
  gates?: string[];
  /** A gate's review task: what it reviews. */
  review?: ReviewRef;
  /** A review task's verdict. */
  verdict?: Verdict;
  /** The review gates of the task's change: each one's state and rounds. */
  reviews?: GateState[];
}

export function recordFromHash(hash: TaskRecordHash): TaskRecord {
  return {
    ...hash,
    dependsOn: hash.dependsOn ?? [],
    children: hash.children ?? [],
    cancelRequested: hash.cancelRequested === '1',
    noMerge: hash.noMerge === '1',
  };
}

/** The hash fields of a new record. */
export function newRecordFields(id: string, spec: TaskSpec, status: TaskStatus, now: number): Record<string, string> {
  const fields: Record<string, string> = {
    id,
    domain: spec.domain,
    description: spec.description,
    priority: spec.priority,
    timeoutS: String(spec.timeoutS),
    context: JSON.stringify(spec.context),
    status,
    attempts: '0',
    maxAttempts: String(spec.maxAttempts),
    createdAt: String(now),
    updatedAt: String(now),
    dependsOn: JSON.stringify(spec.dependsOn),
    children: '[]',
  };
  if (spec.parent) fields.parent = spec.parent;
  if (spec.key) fields.key = spec.key;
  if (spec.noMerge) fields.noMerge = '1';
  if (spec.mergeOf) fields.mergeOf = spec.mergeOf;
  if (spec.model) fields.model = spec.model;
  if (spec.effort) fields.effort = spec.effort;
  if (spec.fallbackModel) fields.fallbackModel = spec.fallbackModel;
  if (spec.budgetUsd !== undefined) fields.budgetUsd = String(spec.budgetUsd);
  if (spec.follows) fields.follows = spec.follows;
  if (spec.gates) fields.gates = JSON.stringify(spec.gates);
  if (spec.review) fields.review = JSON.stringify(spec.review);
  return fields;
}

/** Entry types of a task's log stream. */
export const LOG_ENTRY_TYPES = [
  'status', // a lifecycle transition
  'init', // the CLI's system/init event
  'assistant', // assistant text
  'thinking',
  'tool_use', // a tool the model called, with an input summary
  'tool_result', // what came back
  'result', // the CLI's final result event
  'system', // other system events from the CLI (api_retry …)
  'stderr', // a line the CLI wrote on stderr
  'raw', // a stdout line the parser did not understand
  'info', // a note from dan itself (planner fallback, prompt built …)
  'warning', // what a status hides: refused tool calls, tool errors, no changes
  'error',
] as const;
export const logEntryTypeSchema = z.enum(LOG_ENTRY_TYPES);
export type LogEntryType = z.infer<typeof logEntryTypeSchema>;

/** One entry of a task's log stream, stored as JSON in the stream field `e`. */
export const logEntrySchema = z.object({
  ts: z.number(),
  type: logEntryTypeSchema,
  text: z.string(),
  task: z.string().optional(),
  agent: z.string().optional(),
  status: taskStatusSchema.optional(),
  /** Structured payload: tool name and input, usage, the raw event … */
  data: z.record(z.string(), z.unknown()).optional(),
});
export type LogEntry = z.infer<typeof logEntrySchema>;
/** What producers hand to the log: the timestamp is added on append. */
export type LogEntryInput = Omit<LogEntry, 'ts'> & { ts?: number };

/** Lifecycle events on the `<prefix>events` channel. */
export const eventSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('task'),
    id: z.string(),
    domain: z.string(),
    status: taskStatusSchema,
    agent: z.string().optional(),
    reason: z.string().optional(),
    ts: z.number(),
  }),
  z.object({
    kind: z.literal('agent'),
    id: z.string(),
    domain: z.string(),
    status: z.enum(['registered', 'stopped', 'dead']),
    ts: z.number(),
  }),
]);
export type DanEvent = z.infer<typeof eventSchema>;

/** Messages on an agent's control channel. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cancel'), taskId: taskIdSchema, reason: z.string().optional() }),
  z.object({ type: z.literal('drain') }),
  z.object({ type: z.literal('stop') }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

/** A status with the warnings of its run: `completed (no changes, 2 refused writes)`. */
export function describeOutcome(record: Pick<TaskRecord, 'status' | 'warnings'>): string {
  return record.warnings && record.warnings.length > 0 ? `${record.status} (${record.warnings.join(', ')})` : record.status;
}

/** What a goal's subtasks have cost so far (their recorded runs): what its `--budget` has left is measured by it. Pure. */
export const subtasksCost = (children: readonly TaskRecord[]): number => children.reduce((sum, c) => sum + (c.costUsd ?? 0), 0);
