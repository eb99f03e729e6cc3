import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import type { AgentRecord } from '../registry/index.js';

/**
 * Corrects the records of the tasks a dead agent held (DESIGN.md, Two kinds of liveness): each goes back to
 * `queued` with the reason, or ends `failed` once its attempts are used up. Fenced on the agent and attempt,
 * so a task that already moved on (redelivered to another agent, finished) is left alone; a failed one's job is
 * removed. Delivery of a released task is BullMQ's stalled-job check: the job's lock lapsed with the agent.
 * (Removing the job and adding it again would hand it over sooner, but an orchestrator that died between the
 * two commands would leave a queued record with no job: a lost task.)
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
      released.push(taskId);
      logger?.info({ taskId, agentId: agent.id, exhausted }, text);
    }
  }
  return released;
}

