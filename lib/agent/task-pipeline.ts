import { commitChange } from './commit-change.js';
import { mergeChange } from './merge-change.js';
import { shareGoalBudget } from './goal-budget.js';
import { pauseOnLimit } from './pause-on-limit.js';
import { prepareTask } from './prepare-task.js';
import { prepareWorktree } from './prepare-worktree.js';
import { readVerdict } from './read-verdict.js';
import { reviewChange } from './review-change.js';
import { collectQuestion, runTaskCli } from './run-cli.js';
import { restoreSession, saveSession } from './session.js';
import { abortReason, type AbortReason, type AgentContext, type Stage, type TaskRun } from './task-run.js';

/** The stages of a claimed task, in order (STYLE.md, 12); each logs what it did to the task's log. */
export const STAGES: ReadonlyArray<readonly [string, Stage]> = [
  ['prepare', prepareTask],
  ['goal-budget', shareGoalBudget],
  ['worktree', prepareWorktree],
  ['session', restoreSession],
  ['run', runTaskCli],
  // A usage or rate limit: the token pauses and the task goes back without using an attempt (its work is kept).
  ['limit', pauseOnLimit],
  ['ask', collectQuestion],
  // A review task's answer: its verdict (one more turn when it is invalid).
  ['verdict', readVerdict],
  ['commit', commitChange],
  // The review gates of the change, before it merges: a failed gate sends it back to its author (issue 15).
  ['review', reviewChange],
  ['merge', mergeChange],
  // Last: a conflict resolution in the merge stage continues the same session.
  ['save-session', saveSession],
];

/** Abort reasons that end the pipeline at once (a cancel goes on through commit). */
type EndingReason = Exclude<AbortReason, 'cancelled'>;
const endsRun = (reason: AbortReason | undefined): reason is EndingReason => reason !== undefined && reason !== 'cancelled';

/**
 * Runs a claimed task through the stages until one sends it to recording or the last is done. Returns
 * `record` (the caller records `run.result`), `hand-back` (the run ended on a limit: the caller puts the task
 * back on its queue with its attempt restored, `run.handBack` says until when), or the reason the agent aborted it: `reaped` (the task is
 * someone else's now: record nothing), `shutdown` or `lapsed` (hand it back). A cancel still goes through commit,
 * so the cancelled run's work is kept on its branch. A lapse after the change merged is recorded (fenced): the
 * work is in the integration branch, and running it again would do it twice.
 */
export async function runPipeline(ctx: AgentContext, run: TaskRun): Promise<'record' | 'hand-back' | EndingReason> {
  for (const [name, stage] of STAGES) {
    const reason = abortReason(run);
    if (endsRun(reason)) return reason;
    run.log.debug({ stage: name }, 'stage');
    try {
      if ((await stage(ctx, run)) === 'record') break;
    } catch (error) {
      if (abortReason(run)) break;
      // A stage that fails unexpectedly (Redis, git, the file system) fails the task saying where, instead of
      // escaping as a queue error that leaves the record active.
      run.log.error({ err: error, stage: name }, 'a stage of the task failed');
      run.result = { ...run.result, status: 'failed', error: `the ${name} stage failed: ${(error as Error).message}` };
      break;
    }
  }
  const reason = abortReason(run);
  if (reason === 'lapsed' && run.git?.merge === 'merged') return 'record';
  if (endsRun(reason)) return reason;
  if (reason === undefined && run.handBack) return 'hand-back';
  if (reason === 'cancelled' && run.result) run.result = { ...run.result, status: 'cancelled', error: run.cancelReason ?? run.result.error };
  return 'record';
}
