import type { MergeLock } from '../messaging/index.js';
import { ulid } from 'ulid';
import { z } from 'zod';
import { mergeResultSchema, pendingMergeSchema, type MergeResult, type PendingMergeStore } from '../workspace/index.js';
import { retryOnLock } from './prepare-worktree.js';
import { runCli } from './run-cli.js';
import { abortReason, descriptionLine, holdsAttempt, loseTask, type AgentContext, type StageOutcome, type TaskRun } from './task-run.js';

/**
 * Stage: merges a completed task's branch into the integration branch, one merge at a time across the network
 * (the merge lock). A conflict goes back to this agent: the integration branch is merged into the task's branch
 * in its worktree and the CLI resolves it in the task's own session, up to DAN_MERGE_ATTEMPTS times; then the
 * merge is tried again. Still conflicting, or blocked by the user's uncommitted changes: the branch is kept and
 * the record says why (`dan merge` finishes it later).
 */
export async function mergeChange(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const outcome = await mergeTaskBranch(ctx, run);
  const target = run.target;
  if (target && run.git?.merge) {
    // A merge task reports on the task whose branch it merged, too.
    const text = run.git.merge === 'merged' ? `merged by task ${run.taskId} (${run.git.mergeCommit?.slice(0, 10)})` : `task ${run.taskId} could not merge it: ${run.git.merge}: ${run.git.mergeReason ?? ''}`;
    await ctx.bus.tasks.updateGit(target.id, { ...run.git, keptAttempts: target.git?.keptAttempts ?? [] }, text);
  }
  return outcome;
}

async function mergeTaskBranch(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const git = run.git;
  if (!ctx.workspace || !run.worktree || !git?.commit || run.result?.status !== 'completed') return 'next';
  if (run.record?.review) {
    git.merge = 'skipped';
    git.mergeReason = 'a review never merges';
    return 'next';
  }
  if (run.record?.noMerge) {
    git.merge = 'skipped';
    git.mergeReason = `kept for review (--no-merge): dan diff ${run.taskId}, then dan merge ${run.taskId}`;
    run.writer.push({ type: 'info', text: `not merged (--no-merge): ${git.branch} is kept for review` });
    return 'next';
  }
  git.resolutions = 0;
  // A merge task (`dan merge --resolve`) exists to resolve: it gets at least one resolution.
  const allowed = run.target ? Math.max(1, ctx.config.mergeAttempts) : ctx.config.mergeAttempts;
  for (;;) {
    if (abortReason(run)) return 'next';
    let outcome;
    try {
      outcome = await mergeOnce(ctx, run);
    } catch (error) {
      if (abortReason(run)) return 'next';
      // The change is committed on its branch: the task completed, its merge did not, and the record says why.
      run.log.error({ err: error }, 'merging failed');
      git.merge = 'blocked';
      git.mergeReason = `the merge failed: ${(error as Error).message}; ${git.branch} is kept (dan merge ${run.taskId} tries again)`;
      run.writer.push({ type: 'error', text: git.mergeReason });
      return 'next';
    }
    if (outcome.state === 'lost') {
      loseTask(run, 'merge');
      return 'next';
    }
    if (outcome.state === 'merged') {
      git.merge = 'merged';
      git.mergeCommit = outcome.mergeCommit;
      git.mergeReason = undefined;
      if (git.resolutions > 0) {
        // What the merge brought to the integration branch, the resolution included.
        git.commit = await ctx.workspace.head(git.branch);
        git.files = await ctx.workspace.stat(`${outcome.mergeCommit}^1`, outcome.mergeCommit);
      }
      run.writer.push({ type: 'info', text: `merged ${git.branch} into ${git.integration} (${outcome.mergeCommit.slice(0, 10)})` });
      return 'next';
    }
    if (outcome.state === 'blocked') {
      git.merge = 'blocked';
      git.mergeReason = outcome.reason;
      run.writer.push({ type: 'error', text: `merge blocked: ${outcome.reason}; ${git.branch} is kept` });
      return 'next';
    }
    if (git.resolutions >= allowed) {
      git.merge = 'conflict';
      git.mergeReason = `conflicts in ${outcome.files.join(', ')} after ${git.resolutions} resolution${git.resolutions === 1 ? '' : 's'}: dan merge ${run.taskId} --resolve, or resolve them on ${git.branch} and dan merge ${run.taskId}`;
      run.writer.push({ type: 'error', text: `merge conflict: ${git.mergeReason}` });
      return 'next';
    }
    git.resolutions += 1;
    run.writer.push({ type: 'info', text: `merge conflict in ${outcome.files.join(', ')}: resolving it (${git.resolutions} of ${allowed})` });
    await resolveConflict(ctx, run);
  }
}

/** A merge request on the train (DESIGN.md, Workspaces): what the lock holder needs to merge it for its agent. */
const mergeRequestSchema = z.object({
  id: z.string().min(1),
  taskId: z.string().min(1),
  agent: z.string().min(1),
  attempt: z.number().int().positive(),
  branch: z.string().min(1),
  message: z.string(),
  identity: z.object({ name: z.string(), email: z.string() }),
});
type MergeRequest = z.infer<typeof mergeRequestSchema>;

const mergeAnswerSchema = z.union([mergeResultSchema, z.object({ state: z.literal('lost') })]);
type MergeAnswer = z.infer<typeof mergeAnswerSchema>;

/** At most this many branches merged in one hold of the lock. */
const TRAIN_LENGTH = 16;

/**
 * One merge attempt, on the merge train: the request goes on the train, and whichever agent holds the merge
 * lock next merges every request waiting (this one among them) in one hold, then answers each. This agent
 * takes the lock itself whenever it is free. `lost` when the attempt no longer held its task when the holder
 * came to it (its lease lapsed while it waited): the branch `dan/<id>` is the next attempt's by then.
 */
async function mergeOnce(ctx: AgentContext, run: TaskRun): Promise<MergeResult | { state: 'lost' }> {
  const request: MergeRequest = {
    id: ulid(),
    taskId: run.taskId,
    agent: ctx.agentId,
    attempt: run.attempt,
    branch: run.git!.branch,
    message: `Merge ${run.git!.branch}: ${descriptionLine(run)}\n\ndan task ${run.taskId} (${ctx.domain}), merged by ${ctx.agentId}\n`,
    identity: ctx.identity,
  };
  const entry = JSON.stringify(request);
  await ctx.mergeLock.request(entry);
  for (;;) {
    const answer = await takeAnswer(ctx, request.id);
    if (answer) return answer;
    // Cancelled, stopping or lapsed while it waited: off the train at once, unless a holder is merging it (then
    // its answer, in a moment, is what the record says). Gone: answered just now, taken above next time round.
    if (run.controller.signal.aborted && (await ctx.mergeLock.withdraw(entry, request.id)) === 'withdrawn') run.controller.signal.throwIfAborted();
    const lease = await ctx.mergeLock.tryAcquire(ctx.agentId);
    if (!lease) {
      await ctx.mergeLock.pause();
      continue;
    }
    try {
      if (run.controller.signal.aborted) {
        // Holding the lock, no holder can be merging it: a mark left by one that died does not count.
        if ((await ctx.mergeLock.withdraw(entry, request.id, true)) === 'withdrawn') run.controller.signal.throwIfAborted();
        continue;
      }
      await driveTrain(ctx, run);
    } finally {
      await lease.release();
    }
  }
}

async function takeAnswer(ctx: AgentContext, id: string): Promise<MergeAnswer | undefined> {
  const json = await ctx.mergeLock.takeAnswer(id);
  if (json === null) return undefined;
  return mergeAnswerSchema.parse(JSON.parse(json));
}

/**
 * Holding the merge lock: repairs what a dead merge step left, then merges the requests waiting on the train
 * (each only while its agent still holds its task's attempt) and answers every one.
 */
async function driveTrain(ctx: AgentContext, run: TaskRun): Promise<void> {
  const pending = pendingStore(ctx.mergeLock);
  for (const note of await ctx.workspace!.recover(pending, ctx.config.heartbeatTtlMs)) run.writer.push({ type: 'info', text: note });
  const entries = await ctx.mergeLock.waiting(TRAIN_LENGTH);
  const answers: Array<{ entry: string; id: string; answer: string }> = [];
  const held: Array<{ entry: string; request: MergeRequest }> = [];
  for (const entry of entries) {
    const request = parseRequest(entry);
    if (!request) {
      run.log.warn({ entry: entry.slice(0, 200) }, 'dropped an unreadable merge request from the train');
      await ctx.mergeLock.drop(entry);
      continue;
    }
    if (await holdsAttempt(ctx, request.taskId, request.agent, request.attempt)) held.push({ entry, request });
    else answers.push({ entry, id: request.id, answer: JSON.stringify({ state: 'lost' }) });
  }
  // Only those still on the train: one whose agent took it off just now is not merged.
  const taken = new Set(await ctx.mergeLock.take(held.map((c) => ({ entry: c.entry, id: c.request.id }))));
  const cars = held.filter((_, i) => taken.has(i));
  if (cars.length > 0) {
    let results: MergeResult[];
    try {
      results = await retryOnLock(() => ctx.workspace!.mergeTrain(cars.map((c) => c.request), pending));
    } catch (error) {
      // Answered all the same, or every agent on the train would wait for ever and the next holder fail alike.
      run.log.error({ err: error }, 'merging the train failed');
      results = cars.map(({ request }) => ({ state: 'blocked', files: [], reason: `the merge failed: ${(error as Error).message}; ${request.branch} is kept (dan merge ${request.taskId} tries again)` }));
    }
    cars.forEach((car, i) => answers.push({ entry: car.entry, id: car.request.id, answer: JSON.stringify(results[i]) }));
    if (cars.length > 1) run.writer.push({ type: 'info', text: `merged a train of ${cars.length} branches in one hold of the merge lock` });
  }
  await ctx.mergeLock.answer(answers);
}

function parseRequest(entry: string): MergeRequest | undefined {
  try {
    const parsed = mergeRequestSchema.safeParse(JSON.parse(entry));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Merges the integration branch into the task's branch and asks the CLI, in the task's session, to resolve it. */
async function resolveConflict(ctx: AgentContext, run: TaskRun): Promise<void> {
  const workspace = ctx.workspace!;
  const worktree = run.worktree!;
  const start = await workspace.startResolution(worktree, ctx.identity);
  if (start.state === 'clean') {
    run.writer.push({ type: 'info', text: `merged ${worktree.integration} into ${worktree.branch} without conflict` });
    return;
  }
  const prompt = [
    ...(run.target ? [`This is the change made for this task:\n\n${run.target.description.trim()}\n`] : []),
    `Merging your change for this task into the branch ${worktree.integration} conflicts with work merged there since you started.`,
    `dan has merged ${worktree.integration} into your branch in your working directory; git left conflict markers in:`,
    ...start.files.map((f) => `- ${f}`),
    '',
    `The commits on ${worktree.integration} that your branch did not have:`,
    ...start.theirs.map((c) => `- ${c}`),
    '',
    'Resolve every conflict so that both intents are kept: edit those files until no conflict marker (<<<<<<<, =======, >>>>>>>) is left, then run the project\'s checks if it has any.',
    'Do not commit, switch branches, rebase, reset or push: dan commits and merges when you are done.',
  ].join('\n');
  const result = await runCli(ctx, run, prompt, run.result?.sessionId);
  run.result = { ...run.result!, costUsd: (run.result?.costUsd ?? 0) + result.costUsd, turns: (run.result?.turns ?? 0) + result.turns };
  if (result.status !== 'completed') {
    run.writer.push({ type: 'error', text: `the resolution run ended ${result.status}: ${result.error ?? 'no message'}` });
  }
  const left = await workspace.finishResolution(worktree, start.files, ctx.identity);
  if (left.length > 0) run.writer.push({ type: 'error', text: `conflict markers left in ${left.join(', ')}: the resolution was undone` });
  else run.writer.push({ type: 'info', text: `conflict resolved on ${worktree.branch}` });
}

/** The merge in flight, kept beside the merge lock and read back with its schema. */
export function pendingStore(lock: MergeLock): PendingMergeStore {
  return {
    get: async () => {
      const json = await lock.pending();
      if (json === null) return undefined;
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        return undefined;
      }
      const parsed = pendingMergeSchema.safeParse(value);
      return parsed.success ? parsed.data : undefined;
    },
    set: (pending) => lock.setPending(JSON.stringify(pending)),
    clear: () => lock.clearPending(),
  };
}
