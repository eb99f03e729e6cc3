import { describeStat } from '../workspace/index.js';
import { retryOnLock } from './prepare-worktree.js';
import { descriptionLine, holdsTask, loseTask, type AgentContext, type StageOutcome, type TaskRun } from './task-run.js';

/**
 * Stage: commits everything the run changed in the worktree to the task's branch, whatever the run's outcome:
 * a failed, cancelled or timed-out run's work is kept on its branch too (never merged).
 */
export async function commitChange(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  // A merge task commits nothing of its own before the merge: the branch is the other task's, committed.
  if (!ctx.workspace || !run.worktree || !run.git || run.target) return 'next';
  // The worktree's path is the task's: after a takeover it is the next attempt's worktree.
  if (!(await holdsTask(ctx, run))) {
    loseTask(run, 'commit');
    return 'next';
  }
  const status = run.result?.status ?? 'failed';
  try {
    const change = await retryOnLock(() => ctx.workspace!.commit(run.worktree!, commitMessage(ctx, run, status), ctx.identity));
    run.git.commit = change.commit;
    run.git.files = change.files;
    if (!change.commit) {
      run.git.merge = 'nothing to commit';
      run.writer.push({ type: 'info', text: `nothing to commit: the run changed no file` });
    } else {
      run.writer.push({ type: 'info', text: `committed ${describeStat(change.files)} on ${run.git.branch} (${change.commit.slice(0, 10)})` });
    }
  } catch (error) {
    // The worktree stays as it is (not removed), so the change is still there for a person or the next attempt.
    run.log.error({ err: error }, 'committing the change failed');
    run.writer.push({ type: 'error', text: `could not commit the change: ${(error as Error).message}; the worktree is kept at ${run.worktree.path}` });
    run.git.mergeReason = `commit failed: ${(error as Error).message}`;
    run.worktree.keep = true;
    if (status === 'completed') run.result = { ...run.result!, status: 'failed', error: `the change could not be committed: ${(error as Error).message}` };
    return 'record';
  }
  return 'next';
}

/** The task's first description line, and who made it. */
function commitMessage(ctx: AgentContext, run: TaskRun, status: string): string {
  const prefix = status === 'completed' ? '' : `WIP (${status}): `;
  return `${prefix}${descriptionLine(run)}\n\ndan task ${run.taskId}, attempt ${run.attempt}, by ${ctx.domain} agent ${ctx.agentId}\n`;
}
