import { describeStat } from '../workspace/index.js';
import type { AgentContext, RunResult, TaskRun } from './task-run.js';

/**
 * Stage: records the outcome, fenced (only if the record still names this agent and this attempt), with the
 * task's git state. Returns whether the record took it.
 */
export async function recordResult(ctx: AgentContext, run: TaskRun, result: RunResult): Promise<boolean> {
  await run.writer.flush();
  const { agentId } = ctx;
  const outcome = await ctx.bus.tasks.transition(run.taskId, result.status, {
    agent: agentId,
    expectAgent: agentId,
    expectAttempts: run.attempt,
    text: outcomeText(run, result, agentId),
    // The answer a run was given is taken once its result is recorded.
    del: ['answer'],
    fields: {
      finishedAt: result.status === 'needs_input' ? undefined : Date.now(),
      question: run.question ? JSON.stringify(run.question) : undefined,
      result: result.result,
      error: result.status === 'completed' ? undefined : result.error,
      costUsd: result.costUsd,
      turns: result.turns,
      usage: result.usage === undefined ? undefined : JSON.stringify(result.usage),
      warnings: result.warnings?.length ? JSON.stringify(result.warnings) : undefined,
      reason: result.reason ?? (result.status === 'cancelled' ? result.error : undefined),
      modelUsed: result.model,
      tokenIndex: ctx.config.tokenIndex,
      sessionId: result.sessionId,
      git: run.git === undefined ? undefined : JSON.stringify(run.git),
      verdict: run.verdict === undefined ? undefined : JSON.stringify(run.verdict),
      reviews: run.reviews === undefined ? undefined : JSON.stringify(run.reviews),
    },
  });
  if (outcome.outcome === 'fenced' || outcome.outcome === 'illegal') {
    run.log.warn({ outcome: outcome.outcome, now: outcome.from }, 'result discarded: the task was handed to another agent or ended meanwhile');
    return false;
  }
  // Follow-ups sent while it ran wait for its end (and its saved session).
  await ctx.bus.releaseFollowers(run.taskId).catch((error) => run.log.warn({ err: error }, 'could not queue the follow-ups; the reconciler will'));
  return true;
}

function outcomeText(run: TaskRun, result: RunResult, agentId: string): string {
  if (result.status === 'completed') return `completed by ${agentId}${gitSummary(run)}`;
  if (result.status === 'needs_input' && run.question) {
    const options = run.question.options?.length ? ` (options: ${run.question.options.join(' | ')})` : '';
    return `needs input: Q: ${run.question.question}${options}; answer with dan answer ${run.taskId} "<text>"`;
  }
  return `${result.status}: ${result.error ?? 'no message'}`;
}

/** `; merged into main (3 files, +40 -2)`, or what else became of the change. */
function gitSummary(run: TaskRun): string {
  const git = run.git;
  if (!git?.merge) return '';
  if (git.merge === 'merged') return `; merged into ${git.integration} (${describeStat(git.files)})`;
  if (git.merge === 'nothing to commit') return '; nothing to commit';
  return `; ${git.merge}: ${git.mergeReason ?? git.branch}`;
}
