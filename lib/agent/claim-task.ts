import type { AgentRegistry } from '../registry/index.js';
import type { AgentContext } from './task-run.js';

/**
 * Stage: takes the task for this agent. The agent record names the task first, so a reaper that finds this
 * agent dead knows what it held; then the record moves to `active` with attempts+1 (the attempt is the fence
 * of every later write). Returns the attempt, or undefined when the task was not ours to take.
 */
export async function claimTask(
  ctx: AgentContext,
  registry: AgentRegistry,
  taskId: string,
  held: () => string[],
  tasksDone: number,
): Promise<number | undefined> {
  const { agentId } = ctx;
  await registry.setState(agentId, 'busy', [...held(), taskId], tasksDone);
  const claim = await ctx.bus.tasks.transition(taskId, 'active', {
    mode: 'claim',
    agent: agentId,
    fields: { agent: agentId, startedAt: Date.now() },
    del: ['result', 'error', 'finishedAt', 'warnings'],
    text: `taken by ${agentId}`,
  });
  if (claim.outcome === 'ok') return claim.attempts;
  await registry.setState(agentId, held().length > 0 ? 'busy' : 'idle', held(), tasksDone);
  return undefined;
}
