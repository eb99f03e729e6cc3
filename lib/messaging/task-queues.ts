import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { BULL_PRIORITY, type Priority } from '../task.js';
import type { Keys } from './keys.js';

/** What a queue job carries: only the task id. The record `<prefix>task:<id>` is the truth. */
export interface TaskJobData {
  taskId: string;
}

export interface QueueCounts {
  /** Waiting to be taken (including prioritised and delayed). */
  waiting: number;
  /** Taken by a worker (held by a lock, or stalled until the stalled-job check). */
  active: number;
}

/**
 * Delivery of tasks to domains: one BullMQ queue per domain, `<prefix>q:<domain>`. Job id = task id, so a
 * task is never on a queue twice; finished jobs are removed because the record keeps the outcome.
 */
export class TaskQueues {
  private readonly queues = new Map<string, Queue<TaskJobData>>();
  private closed = false;

  constructor(
    private readonly connection: Redis,
    private readonly keys: Keys,
  ) {}

  /** The BullMQ queue of a domain (created on first use; creating one does no I/O). */
  queue(domain: string): Queue<TaskJobData> {
    let queue = this.queues.get(domain);
    if (!queue) {
      queue = new Queue<TaskJobData>(domain, { connection: this.connection, prefix: this.keys.queuePrefix });
      // BullMQ re-emits the shared connection's errors on every queue, and with no listener prints each one
      // raw (multi-line) on stderr, in the middle of the JSON log: during a Redis outage, dozens. The
      // connection's owner already reports them (its own 'error' listener), so the queue's copies are dropped.
      queue.on('error', () => {});
      this.queues.set(domain, queue);
    }
    return queue;
  }

  async enqueue(domain: string, taskId: string, priority: Priority): Promise<void> {
    await this.queue(domain).add(
      'task',
      { taskId },
      { jobId: taskId, priority: BULL_PRIORITY[priority], removeOnComplete: true, removeOnFail: true, attempts: 1 },
    );
  }

  /** Removes a job that is not being worked on; returns whether it was removed. */
  async remove(domain: string, taskId: string): Promise<boolean> {
    try {
      return (await this.queue(domain).remove(taskId)) === 1;
    } catch {
      // A locked (active) job cannot be removed; its agent ends it, and a claim of a cancelled record is a no-op.
      return false;
    }
  }

  /**
   * Puts the job of a task whose agent is dead back on its queue now, instead of after BullMQ's stalled-job
   * check (two passes after the lock lapses). Only when the job is active and its lock is gone: the check takes
   * the lock in the same command (SET NX, so no agent can take the job between the check and the move), and
   * BullMQ's own script then moves it active → wait under that lock, or does nothing if the job went elsewhere
   * meanwhile (an agent that takes a job sets its own lock). The job is either moved or left as it is: never lost,
   * never moved from under another agent. Returns whether the job was moved.
   */
  async handBack(domain: string, taskId: string): Promise<boolean> {
    const queue = this.queue(domain);
    const job = await queue.getJob(taskId);
    if (!job || !(await job.isActive())) return false;
    const token = `dan-hand-back:${randomUUID()}`;
    // Long enough for the move; should this process die in between, the lock lapses and the stalled check moves the job.
    if ((await this.connection.set(`${queue.toKey(taskId)}:lock`, token, 'PX', 30_000, 'NX')) !== 'OK') return false;
    try {
      await job.moveToWait(token);
      return true;
    } catch {
      return false; // the job moved on (taken by an agent, which replaced the lock): nothing to do
    }
  }

  async counts(domain: string): Promise<QueueCounts> {
    const c = await this.queue(domain).getJobCounts('wait', 'prioritized', 'delayed', 'active');
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0), active: c.active ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
