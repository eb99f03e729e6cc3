import { z } from 'zod';
import type { DanConfig } from './config.js';
import { assertKnownDomain } from './domains.js';
import { assertKnownGates, gateNameSchema, gatesOf, REVIEW_DOMAIN } from './gates.js';
import { BadInputError, describeZodError } from './errors.js';
import {
  EFFORT_LEVELS,
  MAIN_DOMAIN,
  budgetSchema,
  effortSchema,
  modelNameSchema,
  contextSchema,
  descriptionSchema,
  domainNameSchema,
  prioritySchema,
  taskIdSchema,
  taskSpecSchema,
  timeoutSchema,
  type TaskSpec,
} from './task.js';

/**
 * What a user sends to ask for a task, from `dan send-task` or `POST /api/tasks`: both turn it into a
 * {@link TaskSpec} with {@link specFromRequest}, so the two validate alike and say the same things.
 */
export const taskRequestSchema = z
  .object({
    domain: domainNameSchema.describe('`main` (plan it across domains) or a folder under agents/domain-templates/'),
    description: descriptionSchema.describe('what to do (1 byte to 64 KiB)'),
    priority: prioritySchema.optional().describe('low | normal | high (default normal)'),
    timeoutS: timeoutSchema.optional().describe('give up after this many seconds (10 to 86400; default DAN_TASK_TIMEOUT_S)'),
    context: contextSchema.optional().describe('a JSON object handed to the agent with the task (at most 64 KiB of JSON)'),
    noMerge: z.boolean({ error: 'must be true or false' }).optional().describe("keep the task's branch for review instead of merging it (not for `main`)"),
    model: modelNameSchema.optional().describe("the CLI's --model for this task (default DAN_MODEL, else the domain's settings)"),
    effort: effortSchema.optional().describe(`the CLI's --effort: ${EFFORT_LEVELS.join(' | ')}`),
    fallbackModel: modelNameSchema.optional().describe("the CLI's --fallback-model, used when the model is overloaded"),
    budgetUsd: budgetSchema.optional().describe('the most one run may spend, in US dollars (more than 0, at most 10000; default DAN_TASK_BUDGET_USD)'),
    follows: taskIdSchema.optional().describe("a follow-up: resume this task's conversation, on its branch (`dan send-task --continue`); queued after it while it is still open"),
    gates: z
      .array(gateNameSchema, { error: 'must be a list of gate names' })
      .max(8, 'must name at most 8 gates')
      .optional()
      .describe("the review gates the task's change passes before it merges, in order (gates under agents/domain-templates/review/gates/); [] for none (`--no-gates`); default the domain's dan.json"),
  })
  .strict();
export type TaskRequest = { [K in keyof z.input<typeof taskRequestSchema>]?: unknown };

/** How the caller names each field in its messages (`--priority` on the command line, `priority` in the API). */
export type FieldNames = Record<keyof z.input<typeof taskRequestSchema>, string>;

/** `dan tasks --limit` and `GET /api/tasks?limit=`. */
export const listLimitSchema = z.coerce
  .number({ error: 'must be a number from 1 to 1000' })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(1000, 'must be at most 1000');

/** `dan logs --lines` and `GET /api/tasks/:id/log?last=`. */
export const logLinesSchema = z.coerce
  .number({ error: 'must be a number from 0 to 100000' })
  .int('must be a whole number')
  .min(0, 'must be at least 0')
  .max(100_000, 'must be at most 100000');

/**
 * Parses one input value with zod; a failure is a BadInputError naming it (`what`), with the value when it is
 * a short string and `what` is not a flag or a phrase ("the description").
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const shown = typeof value === 'string' ? ` "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"` : '';
    throw new BadInputError(`${what}${what.startsWith('-') || what.startsWith('the ') ? '' : shown} ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * Validates a task request completely, before anything touches Redis: a known domain, each field, and the
 * network's defaults (timeout, attempts) filled in. Throws BadInputError or UnknownDomainError.
 */
export function specFromRequest(
  request: TaskRequest,
  settings: Pick<DanConfig, 'templatesDir' | 'taskTimeoutS' | 'taskAttempts'> & Partial<Pick<DanConfig, 'taskBudgetUsd' | 'workspaceMode'>>,
  names: FieldNames,
): TaskSpec {
  const domain = parseInput(z.string({ error: 'must be a string' }), request.domain, names.domain);
  assertKnownDomain(settings.templatesDir, domain);
  const noMerge = parseInput(z.boolean({ error: 'must be true or false' }), request.noMerge ?? false, names.noMerge);
  if (noMerge && domain === MAIN_DOMAIN) {
    throw new BadInputError(`${names.noMerge} keeps one domain task's branch for review; a goal's subtasks merge along its graph so that each builds on the last`);
  }
  const gates = request.gates === undefined ? undefined : parseInput(taskRequestSchema.shape.gates, request.gates, names.gates);
  checkGates(settings, domain, gates, names.gates);
  return parseInput(
    taskSpecSchema,
    {
      domain,
      gates,
      description: parseInput(descriptionSchema, request.description, names.description),
      priority: parseInput(prioritySchema, request.priority ?? 'normal', names.priority),
      timeoutS: parseInput(timeoutSchema, request.timeoutS ?? settings.taskTimeoutS, names.timeoutS),
      context: parseInput(contextSchema, request.context ?? {}, names.context),
      maxAttempts: settings.taskAttempts,
      noMerge,
      model: request.model === undefined ? undefined : parseInput(modelNameSchema, request.model, names.model),
      effort: request.effort === undefined ? undefined : parseInput(effortSchema, request.effort, names.effort),
      fallbackModel: request.fallbackModel === undefined ? undefined : parseInput(modelNameSchema, request.fallbackModel, names.fallbackModel),
      budgetUsd: request.budgetUsd === undefined ? settings.taskBudgetUsd : parseInput(budgetSchema, request.budgetUsd, names.budgetUsd),
      follows: request.follows === undefined ? undefined : parseInput(taskIdSchema, request.follows, names.follows),
    },
    'task',
  );
}

/**
 * Gates a task may have: known ones, in git mode (a shared workspace gives a task no change of its own to
 * review); a goal's own (`main`) review its merged subtasks as a whole. The domain's dan.json is checked here
 * too, so a broken one is said at once rather than failing each task.
 */
function checkGates(settings: Pick<DanConfig, 'templatesDir'> & Partial<Pick<DanConfig, 'workspaceMode'>>, domain: string, gates: string[] | undefined, name: string): void {
  if (gates?.length) assertKnownGates(settings.templatesDir, gates, name);
  if (domain === REVIEW_DOMAIN && gates?.length) throw new BadInputError(`${name}: a review is not reviewed`);
  const effective = domain === MAIN_DOMAIN || domain === REVIEW_DOMAIN ? (gates ?? []) : gatesOf(settings.templatesDir, domain, gates);
  if (effective.length > 0 && settings.workspaceMode === 'shared') {
    throw new BadInputError(`the review gates (${effective.join(', ')}) review a task's change on its branch, and DAN_WORKSPACE_MODE=shared gives a task none: use DAN_WORKSPACE_MODE=git, or send it with no gates (--no-gates)`);
  }
}
