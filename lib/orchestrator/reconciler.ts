import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import { isTerminal, type TaskRecord } from '../task.js';
import { releaseAgentTasks } from './release-tasks.js';

export interface ReconcilerOptions {
  /**
   * A queued record younger than this is left alone: its sender may be between the record and the enqueue, and
   * an agent may be between taking the job and claiming. @default the heartbeat TTL
   */
  graceMs: number;
  /** A `needs_input` task unanswered this long fails with reason `no answer` (DAN_INPUT_TIMEOUT_S). @default 24 h */
  inputTimeoutMs?: number;
  now?: () => number;
}

/**
 * The reconciler (the controller pattern: observe, compare, repair), run in the leader's cycle. It compares each
 * open task record (`tasks:open`) with the queues and the live agents, and repairs what does not match:
 * - a `queued` record with no job (its send was interrupted between the two writes, or its job failed and was
 *   removed after a Redis error in the agent's task path) is enqueued again; idempotent, the job id is the task id;
 * - an `active` record whose agent is not live (not registered and not awaiting the reaper) is released as the
 *   reaper would: back to `queued`, or `failed` when its attempts are used up, fenced on agent and attempt.
 * - a waiting follow-up (`--continue`) whose task has ended is queued;
 * - a `needs_input` task unanswered for DAN_INPUT_TIMEOUT_S fails with reason `no answer`.
 * (A graph whose goal ended is closed by the task graph's own reconcile pass, in the same cycle.) Every repair is
 * logged. A record that disappeared leaves the open index.
 */
export class Reconciler {
  private readonly now: () => number;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly options: ReconcilerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** One pass; returns the ids it repaired. */
  async reconcileOnce(): Promise<string[]> {
    const ids = await this.bus.tasks.openIds();
    const repaired: string[] = [];
    for (let i = 0; i < ids.length; i += 200) {
      const batch = ids.slice(i, i + 200);
      const records = await this.bus.tasks.getMany(batch, (error) => this.log.warn({ err: error }, 'reconciler: skipped a malformed record'));
      const found = new Set(records.map((r) => r.id));
      const gone = batch.filter((id) => !found.has(id));
      if (gone.length > 0) await this.bus.redis.srem(this.bus.keys.open, ...gone);
      for (const record of records) {
        if (await this.repair(record)) repaired.push(record.id);
      }
    }
    return repaired;
  }

  private async repair(record: TaskRecord): Promise<boolean> {
    if (record.status === 'queued') {
      if (this.now() - record.updatedAt < this.options.graceMs) return false;
      const queue = this.bus.queues.queue(record.domain);
      const state = await queue.getJobState(record.id);
      if (state !== 'unknown' && state !== 'failed' && state !== 'completed') return false;
      // A finished job of a task still queued is stale: it would block the job id. Remove it, then add again.
      if (state !== 'unknown') await this.bus.queues.remove(record.domain, record.id);
      await this.bus.queues.enqueue(record.domain, record.id, record.priority);
      this.log.warn({ taskId: record.id, domain: record.domain, job: state }, 'reconciler: a queued task had no job; enqueued it again');
      return true;
    }
    if (record.status === 'needs_input') {
      const timeoutMs = this.options.inputTimeoutMs ?? 86_400_000;
      if (this.now() - record.updatedAt < timeoutMs) return false;
      const why = `no answer: nobody answered its question within DAN_INPUT_TIMEOUT_S (${Math.round(timeoutMs / 1000)} s)`;
      const moved = await this.bus.tasks.transition(record.id, 'failed', {
        from: ['needs_input'],
        expectAttempts: record.attempts,
        text: why,
        fields: { error: why, reason: 'no answer', finishedAt: this.now() },
      });
      if (moved.outcome !== 'ok') return false;
      await this.bus.releaseFollowers(record.id);
      this.log.warn({ taskId: record.id }, 'reconciler: a task waited too long for its answer; failed (no answer)');
      return true;
    }
    if (record.status === 'waiting' && record.follows && !record.parent) {
      // A follow-up whose task ended while it was being listed among its followers (or before it was).
      const followed = await this.bus.tasks.find(record.follows);
      if (followed && !isTerminal(followed.status)) return false;
      const text = `task ${record.follows} it follows ${followed ? `ended ${followed.status}` : 'is gone'}; queued (by the reconciler)`;
      const moved = await this.bus.tasks.transition(record.id, 'queued', { from: ['waiting'], text });
      if (moved.outcome !== 'ok') return false;
      await this.bus.enqueue({ ...record, status: 'queued' });
      this.log.warn({ taskId: record.id, follows: record.follows }, 'reconciler: queued a follow-up whose task had ended');
      return true;
    }
    if (record.status === 'active' && record.agent) {
      const agent = record.agent;
      const [live, awaitingReaper] = await Promise.all([
        this.bus.redis.sismember(this.bus.keys.agents, agent),
        this.bus.redis.sismember(this.bus.keys.toRelease, agent),
      ]);
      if (live === 1 || awaitingReaper === 1) return false;
      const released = await releaseAgentTasks(this.bus, { id: agent, taskIds: [record.id] }, 'is not live (found by the reconciler)', this.log);
      if (released.length > 0) this.log.warn({ taskId: record.id, agentId: agent }, 'reconciler: released an active task whose agent is not live');
      return released.length > 0;
    }
    return false;
  }
}
