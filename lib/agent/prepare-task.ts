import { CorruptRecordError } from '../errors.js';
import type { TaskRecord } from '../task.js';
import { buildPrompt, type DependencyResult } from './prompt.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/** Stage: reads the record, builds the prompt (with the parent goal and the dependencies' results). */
export async function prepareTask(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  try {
    run.record = await ctx.bus.tasks.get(run.taskId);
  } catch (error) {
    if (!(error instanceof CorruptRecordError)) throw error;
    run.result = { status: 'failed', error: `the task record is malformed: ${error.message}` };
    return 'record';
  }
  // An answer to the run's question is the next message of its conversation (the session stage resumes it).
  run.prompt = run.record.answer ?? buildPrompt(run.record, ...(await lineage(ctx, run.record)));
  run.writer.push({ type: 'info', text: `attempt ${run.attempt} of ${run.record.maxAttempts} on ${ctx.agentId}; prompt ${run.prompt.length} chars` });
  return 'next';
}

/** The parent goal and the results of the task's dependencies, for a subtask's prompt. */
async function lineage(ctx: AgentContext, record: TaskRecord): Promise<[TaskRecord | undefined, DependencyResult[]]> {
  if (!record.parent && record.dependsOn.length === 0) return [undefined, []];
  const parent = record.parent ? await ctx.bus.tasks.find(record.parent) : undefined;
  const deps = await ctx.bus.tasks.getMany(record.dependsOn);
  return [parent, deps.map((d) => ({ key: d.key, domain: d.domain, description: d.description, result: d.result ?? '(no result text)' }))];
}
