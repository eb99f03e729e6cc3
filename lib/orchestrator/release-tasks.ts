import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import type { AgentRecord } from '../registry/index.js';
import type { Priority } from '../task.js';

/**
 * Corrects the records of the tasks a dead agent held (DESIGN.md, Two kinds of liveness): each goes back to
 * `queued` with the reason, or ends `failed` once its attempts are used up. Fenced on the agent and attempt,
 * so a task that already moved on (redelivered to another agent, finished) is left alone. A released task's
 * job is put back on its queue at once when its lock has lapsed with the agent (else BullMQ's stalled-job check
 * does it, later); a failed one's job is removed.
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
      else await handBack(bus, record.domain, taskId, record.priority, logger);
      released.push(taskId);
      logger?.info({ taskId, agentId: agent.id, exhausted }, text);
    }
  }
  return released;
}

/** Puts a released task's job back on its queue now; if it was removed but cannot be added again, the task fails saying so. */
async function handBack(bus: Bus, domain: string, taskId: string, priority: Priority, logger?: Logger): Promise<void> {
  try {
    if (!(await bus.queues.requeue(domain, taskId, priority))) logger?.debug({ taskId }, 'job still locked: the stalled-job check hands it back');
  } catch (error) {
    const message = `could not put the task back on the ${domain} queue: ${(error as Error).message}`;
    logger?.error({ err: error, taskId }, message);
    await bus.tasks.transition(taskId, 'failed', { text: message, fields: { error: message, finishedAt: Date.now() } }).catch(() => {});
  }
}
