import { subtasksCost } from '../task.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/**
 * Stage: a subtask of a goal sent with `--budget` starts with what is left of the goal's budget (what its
 * subtasks' recorded runs have not spent yet), or its own budget when that is less. With nothing left, it does
 * not run: it ends cancelled with reason budget (the goal's graph cancels the others and fails the goal).
 */
export async function shareGoalBudget(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const parentId = run.record?.parent;
  if (!parentId) return 'next';
  const parent = await ctx.bus.tasks.find(parentId);
  if (parent?.budgetUsd === undefined) return 'next';
  const spent = subtasksCost(await ctx.bus.tasks.getMany(parent.children));
  const left = parent.budgetUsd - spent;
  if (left <= 0) {
    const why = `budget: the goal's budget $${parent.budgetUsd} is spent ($${spent.toFixed(4)})`;
    run.result = { status: 'cancelled', reason: 'budget', error: why };
    return 'record';
  }
  run.budgetUsd = Math.min(run.record!.budgetUsd ?? left, left);
  run.writer.push({ type: 'info', text: `the goal's budget: $${left.toFixed(4)} of $${parent.budgetUsd} left; this run may spend $${run.budgetUsd.toFixed(4)}` });
  return 'next';
}
