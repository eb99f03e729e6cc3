import { z } from 'zod';
import { gateStateSchema, reviewRefSchema, verdictSchema } from '../gates.js';
import { agentRecordSchema, type AgentRecord } from '../registry/index.js';
import { taskGitSchema } from '../workspace/task-git.js';
import { earlierEndSchema, eventSchema, questionSchema, logEntrySchema, prioritySchema, taskIdSchema, taskStatusSchema, usageSchema, type TaskRecord } from '../task.js';

/**
 * The zod schemas of what the API answers, for the OpenAPI document. Requests are parsed with the CLI's own
 * schemas (lib/task-request.ts, lib/task.ts); these describe the records the messaging layer returns, and the
 * type checks below keep them in step with those records.
 */
export const errorSchema = z.object({
  error: z.object({ code: z.string().describe('a stable code: DAN_BAD_INPUT, DAN_UNKNOWN_TASK, DAN_UNAUTHORIZED …'), message: z.string() }),
});

export const taskRecordSchema = z
  .object({
    id: z.string(),
    domain: z.string(),
    description: z.string(),
    priority: prioritySchema,
    timeoutS: z.number(),
    context: z.record(z.string(), z.unknown()),
    status: taskStatusSchema,
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    createdAt: z.number().describe('ms since the epoch'),
    updatedAt: z.number(),
    parent: z.string().optional(),
    key: z.string().optional().describe("the subtask's key in its goal's plan"),
    dependsOn: z.array(z.string()),
    children: z.array(z.string()),
    agent: z.string().optional(),
    startedAt: z.number().optional(),
    finishedAt: z.number().optional(),
    result: z.string().optional(),
    error: z.string().optional(),
    reason: z.string().optional(),
    costUsd: z.number().optional(),
    turns: z.number().optional(),
    usage: usageSchema.optional(),
    cancelRequested: z.boolean(),
    plan: z.string().optional().describe("a goal's accepted plan (JSON)"),
    noMerge: z.boolean().describe("the task's branch is kept for review instead of merged"),
    follows: z.string().optional().describe('the task whose conversation this one continues (`--continue`)'),
    sessionId: z.string().optional().describe("the Claude Code session of the task's last run"),
    question: questionSchema.optional().describe('the last question the task asked the user (status needs_input)'),
    answer: z.string().optional().describe("the user's answer, until a run has taken it"),
    retried: z.array(earlierEndSchema).optional().describe('how the task ended before each `dan retry`, oldest first'),
    git: taskGitSchema.optional().describe("where the task's change lives and what became of it: branch, base, commits, files, merge state"),
    gates: z.array(z.string()).optional().describe('the review gates asked for with the task; absent: its domain\'s'),
    reviews: z.array(gateStateSchema).optional().describe("the review gates of the task's change: each one's state, rounds, verdicts and findings"),
    review: reviewRefSchema.optional().describe('a review task: the task (or goal) and commit it reviews, its gate and round'),
    verdict: verdictSchema.optional().describe("a review task's verdict"),
  })
  .describe('a task record (`dan status --json`)');

export const taskWithSubtasksSchema = taskRecordSchema.extend({
  subtasks: z.array(taskRecordSchema).optional().describe("a goal's subtasks, when it has any"),
});

export const agentSchema = agentRecordSchema.omit({ lastLogs: true }).extend({ alive: z.boolean(), taskIds: z.array(z.string()) });

export const storedLogEntrySchema = z.object({
  id: z.string().describe('the stream id (`<ms>-<seq>`): the SSE event id, for Last-Event-ID'),
  taskId: z.string(),
  entry: logEntrySchema,
});

export const danEventSchema = eventSchema;

export const idParamsSchema = z.object({ id: taskIdSchema });

export const cancelAnswerSchema = z.union([
  z.object({ id: z.string(), outcome: z.literal('cancelled'), from: taskStatusSchema }),
  z.object({ id: z.string(), outcome: z.literal('requested'), agent: z.string().optional() }),
  z.object({ id: z.string(), outcome: z.literal('already_finished'), status: taskStatusSchema }),
]);

export const overviewSchema = z.object({
  domains: z.array(z.object({ name: z.string(), waiting: z.number().int(), active: z.number().int() })),
  today: z.object({ since: z.number().describe('midnight UTC, ms'), tasks: z.number().int(), costUsd: z.number() }),
});

// Compile-time: the records the messaging layer returns are what the document says.
export const asTaskAnswer = (record: TaskRecord): z.infer<typeof taskRecordSchema> => record;
export const asAgentAnswer = ({ lastLogs: _, ...agent }: AgentRecord): z.infer<typeof agentSchema> => agent;
