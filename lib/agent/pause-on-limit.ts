import { describePause } from '../executor/limits.js';
import type { PauseKind } from '../messaging/index.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/** How long a credential the API rejected is not used (each time it is tried again and rejected). */
const BAD_CREDENTIAL_PAUSE_MS = 15 * 60_000;

const PAUSING: ReadonlySet<string> = new Set<PauseKind>(['usage_limit', 'rate_limit', 'overloaded', 'unauthorized']);

/**
 * Stage: a run that ended on a usage limit, a rate limit or an overloaded service pauses its subscription token
 * (or the network, for an API key, Bedrock or Vertex; overload is the service's, so always the network's) until
 * the reset time the CLI gave, else with exponential backoff, kept in Redis; and the task goes back to its queue
 * without using an attempt (the agent does that once the later stages kept the run's work on its branch).
 * A credential the API rejected (401) marks the token bad for 15 minutes (`dan doctor` shows it, the pool gives it
 * no agent, its agents take no task meanwhile), but the task fails, saying so: a token that stays
 * bad must not hold the work for ever.
 */
export async function pauseOnLimit(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const limit = run.result?.limit;
  if (!limit || !PAUSING.has(limit.kind) || run.controller.signal.aborted) return 'next';
  const kind = limit.kind as PauseKind;
  const scope = kind !== 'overloaded' && ctx.config.tokenIndex !== undefined ? `token:${ctx.config.tokenIndex}` : 'network';
  // A rejected credential rarely comes good by itself: it is left alone for the longest backoff at once.
  const resetsAt = kind === 'unauthorized' ? Date.now() + BAD_CREDENTIAL_PAUSE_MS : limit.resetsAt;
  const untilMs = await ctx.bus.gate.pause(scope, { kind, resetsAt, message: limit.message });
  const who = scope === 'network' ? 'the network' : `subscription token #${ctx.config.tokenIndex}`;
  if (kind === 'unauthorized') {
    run.writer.push({ type: 'info', text: `the API rejected the credential of ${who} (401): it is marked bad, ${describePause(untilMs, kind)}` });
    run.log.warn({ scope, until: new Date(untilMs).toISOString() }, 'credential rejected: marked bad');
    return 'next';
  }
  const why = `${who} hit a ${kind.replace('_', ' ')}: ${describePause(untilMs, kind)}; the task waits, no attempt used`;
  run.writer.push({ type: 'info', text: why });
  run.log.warn({ scope, until: new Date(untilMs).toISOString(), kind }, 'limit reached: pausing');
  run.handBack = { untilMs, why };
  return 'next';
}
