import { isLockError, taskBranch, type GitWorkspace } from '../workspace/index.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/**
 * Stage: the attempt's own worktree and branch `dan/<id>`, from the integration branch's head, so a subtask
 * sees its merged dependencies. A follow-up (`--continue`) of a task whose change was merged starts there too
 * (the merged result); of a task whose branch was kept unmerged (--no-merge, a conflict, a blocked merge), from
 * that branch's tip, so it continues on the work it follows and merging it brings both. In shared mode the CLI
 * runs in the workspace itself.
 */
export async function prepareWorktree(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const workspace = ctx.workspace;
  if (!workspace) {
    run.cwd = ctx.config.workspace;
    return 'next';
  }
  if (ctx.workspaceProblem) {
    run.result = { status: 'failed', error: `the workspace cannot be used: ${ctx.workspaceProblem}` };
    return 'record';
  }
  if (run.record?.mergeOf) return attachTarget(ctx, run, workspace, run.record.mergeOf);
  try {
    const from = await followedBranch(ctx, run);
    const worktree = await retryOnLock(() => workspace.prepare(run.taskId, run.attempt, ctx.identity, from?.commit));
    for (const note of worktree.notes) run.writer.push({ type: 'info', text: note });
    if (from && run.record?.review) run.writer.push({ type: 'info', text: `reviewing ${from.branch} at ${from.commit.slice(0, 10)}` });
    else if (from) run.writer.push({ type: 'info', text: `continuing on ${from.branch === worktree.branch ? 'its own' : `task ${run.record!.follows}'s unmerged`} branch ${from.branch} (${from.commit.slice(0, 10)})` });
    run.worktree = worktree;
    run.cwd = worktree.path;
    run.git = {
      branch: worktree.branch,
      integration: worktree.integration,
      base: worktree.base,
      files: [],
      keptAttempts: [...(run.record?.git?.keptAttempts ?? []), ...(worktree.kept ? [worktree.kept] : [])],
    };
    run.writer.push({ type: 'info', text: `worktree on ${worktree.branch} from ${worktree.integration} at ${worktree.base.slice(0, 10)}` });
    return 'next';
  } catch (error) {
    run.log.error({ err: error }, 'could not make the task a worktree');
    run.result = { status: 'failed', error: `could not make the task's worktree: ${(error as Error).message}` };
    return 'record';
  }
}

/**
 * Where the attempt continues rather than starts: an answered task on its own branch (what it did before it asked);
 * a follow-up on the unmerged branch of the task it follows.
 */
async function followedBranch(ctx: AgentContext, run: TaskRun): Promise<{ branch: string; commit: string } | undefined> {
  const review = run.record?.review;
  // A review task looks at the change it reviews: the author's commit; a goal's, the integration branch's head.
  if (review) return review.commit ? { branch: taskBranch(review.of), commit: review.commit } : undefined;
  const own = run.record?.git;
  if (run.record?.answer !== undefined && own?.commit && own.merge === undefined) return { branch: own.branch, commit: own.commit };
  const follows = run.record?.follows;
  if (!follows) return undefined;
  const git = (await ctx.bus.tasks.find(follows))?.git;
  if (!git?.commit || git.merge === 'merged' || git.merge === 'nothing to commit') return undefined;
  return { branch: git.branch, commit: git.commit };
}

/** A merge task (`dan merge --resolve`): its worktree is on the other task's kept branch, to resolve and merge it. */
async function attachTarget(ctx: AgentContext, run: TaskRun, workspace: GitWorkspace, targetId: string): Promise<StageOutcome> {
  const target = await ctx.bus.tasks.get(targetId);
  if (!target.git?.commit) {
    run.result = { status: 'failed', error: `task ${targetId} has no committed branch to merge` };
    return 'record';
  }
  const worktree = await retryOnLock(() => workspace.attach(run.taskId, target.git!.branch, target.git!.base, ctx.identity));
  for (const note of worktree.notes) run.writer.push({ type: 'info', text: note });
  run.worktree = worktree;
  run.cwd = worktree.path;
  run.target = target;
  run.git = { ...target.git, merge: undefined, mergeReason: undefined, resolutions: undefined };
  run.writer.push({ type: 'info', text: `worktree on ${worktree.branch} (task ${targetId}'s branch), to merge it into ${worktree.integration}` });
  return 'next';
}

/** Runs a git step again while another git process holds a lock it needs (a few times, briefly). */
export async function retryOnLock<T>(step: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await step();
    } catch (error) {
      if (!isLockError(error) || i >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * i));
    }
  }
}
