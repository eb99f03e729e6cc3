import { z } from 'zod';
import { logEntryTypeSchema, taskStatusSchema } from '../task.js';

/**
 * What a planner run (`dan planner`, in its own container or process) prints on stdout, one JSON object a
 * line: each log entry of its CLI run as it comes, then one `result`. The orchestrator reads nothing else of the
 * run, and parses every line with these schemas: a planner run reads the workspace, so what it prints is
 * untrusted input.
 */
export const PLANNER_LINE_KEY = 'danPlanner';

/** The most of a result's text the orchestrator takes (a plan is far smaller). */
const MAX_RESULT_CHARS = 1_000_000;
/** The most of one log entry's text the orchestrator takes. */
const MAX_ENTRY_CHARS = 20_000;

const plannerEntrySchema = z.object({
  type: logEntryTypeSchema,
  text: z.string().transform((t) => (t.length > MAX_ENTRY_CHARS ? `${t.slice(0, MAX_ENTRY_CHARS)} …` : t)),
  ts: z.number().optional(),
  status: taskStatusSchema.optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const plannerLineSchema = z.discriminatedUnion(PLANNER_LINE_KEY, [
  z.object({ [PLANNER_LINE_KEY]: z.literal('entry'), entry: plannerEntrySchema }),
  z.object({
    [PLANNER_LINE_KEY]: z.literal('result'),
    status: z.enum(['completed', 'failed', 'timed_out', 'cancelled']),
    result: z.string().max(MAX_RESULT_CHARS),
    error: z.string().max(MAX_ENTRY_CHARS).optional(),
    costUsd: z.number().nonnegative().finite(),
    turns: z.number().int().nonnegative(),
  }),
]);
export type PlannerLine = z.infer<typeof plannerLineSchema>;
export type PlannerRunResult = Omit<Extract<PlannerLine, { danPlanner: 'result' }>, typeof PLANNER_LINE_KEY>;

/** A line of a planner run's stdout, parsed; undefined for anything that is not one of ours. */
export function parsePlannerLine(line: string): PlannerLine | undefined {
  if (!line.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined; // not a protocol line (a stray print): ignored
  }
  const parsed = plannerLineSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The line a planner run prints for `line`. */
export function formatPlannerLine(line: PlannerLine): string {
  return JSON.stringify(line);
}
