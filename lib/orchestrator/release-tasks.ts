import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import type { AgentRecord } from '../registry/index.js';

/**
 * Corrects the records of the tasks a dead agent held (DESIGN.md, Two kinds of liveness): each goes back to
 * `queued` with the reason, or ends `failed` once its attempts are used up. Fenced on the agent and attempt,
 * so a task that already moved on (redelivered to another agent, finished) is left alone; a failed one's job is
 * removed. A released task's job goes back on its queue at once when its lock lapsed with the agent, in one
 * atomic BullMQ script (never remove-then-add: an orchestrator dying between the two would lose the task);
 * otherwise BullMQ's stalled-job check hands it back, later.
 */
export async function releaseAgentTasks(bus: Bus, agent: Pick<AgentRecord, 'id' | 'taskIds'>, why: string, logger?: Logger): Promise<string[]> {
  const released: string[] = [];
  for (const taskId of agent.taskIds) {
    const record = await bus.tasks.find(taskId).catch(() => undefined);
    if (!record || record.status !== 'active' || record.agent !== agent.id) continue;
    const exhausted = record.attempts >= record.maxAttempts;
    const text = exhausted
      ? `agent ${agent.id} ${why} during attempt ${record.attempts} of ${record.maxAttempts}; no attempts left`
      : `agent ${agent.id} ${why} during attempt ${record.attempts} of ${record.maxAttempts}; back on the queue`;
    const result = await bus.tasks.transition(taskId, exhausted ? 'failed' : 'queued', {
      text,
      agent: agent.id,
      expectAgent: agent.id,
      expectAttempts: record.attempts,
      fields: exhausted ? { error: text, reason: text, finishedAt: Date.now() } : { reason: text },
    });
    if (result.outcome === 'ok') {
      if (exhausted) await bus.queues.remove(record.domain, taskId);
      else await bus.queues.handBack(record.domain, taskId).catch((error) => logger?.warn({ err: error, taskId }, 'job not handed back; the stalled-job check will'));
      released.push(taskId);
      logger?.info({ taskId, agentId: agent.id, exhausted }, text);
    }
  }
  return released;
}

