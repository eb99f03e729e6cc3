import { describePause } from '../executor/limits.js';
import type { PauseKind } from '../messaging/index.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

const PAUSING: ReadonlySet<string> = new Set<PauseKind>(['usage_limit', 'rate_limit', 'overloaded']);

/**
 * Stage: a run that ended on a usage limit, a rate limit or an overloaded service pauses its subscription token
 * (or the network, for an API key, Bedrock or Vertex; overload is the service's, so always the network's) until
 * the reset time the CLI gave, else with exponential backoff, kept in Redis; and the task goes back to its queue
 * without using an attempt (the agent does that once the later stages kept the run's work on its branch).
 */
export async function pauseOnLimit(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const limit = run.result?.limit;
  if (!limit || !PAUSING.has(limit.kind) || run.controller.signal.aborted) return 'next';
  const kind = limit.kind as PauseKind;
  const scope = kind !== 'overloaded' && ctx.config.tokenIndex !== undefined ? `token:${ctx.config.tokenIndex}` : 'network';
  const untilMs = await ctx.bus.gate.pause(scope, { kind, resetsAt: limit.resetsAt, message: limit.message });
  const who = scope === 'network' ? 'the network' : `subscription token #${ctx.config.tokenIndex}`;
  const why = `${who} hit a ${kind.replace('_', ' ')}: ${describePause(untilMs, kind)}; the task waits, no attempt used`;
  run.writer.push({ type: 'info', text: why });
  run.log.warn({ scope, until: new Date(untilMs).toISOString(), kind }, 'limit reached: pausing');
  run.handBack = { untilMs, why };
  return 'next';
}
