import type { AgentRegistry } from '../registry/index.js';
import type { AgentContext } from './task-run.js';

/**
 * Stage: takes the task for this agent. The agent record names the task first, so a reaper that finds this
 * agent dead knows what it held; then the record moves to `active` with attempts+1 (the attempt is the fence
 * of every later write). An `active` record whose agent still lives is not taken (its job came back because the
 * job lock lapsed in a stall while that agent kept working): `busy`, and the caller puts the job off. Returns the
 * attempt, `busy`, or undefined when the task is not there to take (ended, cancelled, gone).
 */
export async function claimTask(
  ctx: AgentContext,
  registry: AgentRegistry,
  taskId: string,
  held: () => string[],
  tasksDone: number,
): Promise<number | 'busy' | undefined> {
  const { agentId } = ctx;
  await registry.setState(agentId, 'busy', [...held(), taskId], tasksDone);
  const claim = await ctx.bus.tasks.transition(taskId, 'active', {
    mode: 'claim',
    unlessHolderLive: true,
    agent: agentId,
    fields: { agent: agentId, startedAt: Date.now() },
    del: ['result', 'error', 'finishedAt', 'warnings'],
    text: `taken by ${agentId}`,
  });
  if (claim.outcome === 'ok') return claim.attempts;
  await registry.setState(agentId, held().length > 0 ? 'busy' : 'idle', held(), tasksDone);
  return claim.outcome === 'busy' ? 'busy' : undefined;
}
