import type { Redis } from 'ioredis';
import type { DanConfig } from '../config.js';
import { BadInputError, DanError } from '../errors.js';
import { isTerminal, RETRYABLE_STATUSES, type TaskRecord, type TaskSpec, type TaskStatus } from '../task.js';
import { EventBus } from './event-bus.js';
import { Keys } from './keys.js';
import { LogStream } from './log-stream.js';
import { connectRedis, createRedis, type RedisConnectionOptions } from './redis-connection.js';
import { RunGate } from './run-gate.js';
import { TaskQueues } from './task-queues.js';
import { TaskStore } from './task-store.js';

export type CancelOutcome =
  | { outcome: 'cancelled'; from: TaskStatus }
  | { outcome: 'requested'; agent: string | undefined }
  | { outcome: 'already_finished'; status: TaskStatus };

export interface BusOptions extends RedisConnectionOptions {
  now?: () => number;
}

/**
 * A process's view of the bus: the task records, their logs, the queues and the events of one network,
 * over connections it owns. `Bus.connect` does the I/O; `close()` releases everything and may be called twice.
 */
export class Bus {
  readonly keys: Keys;
  readonly tasks: TaskStore;
  readonly logs: LogStream;
  readonly queues: TaskQueues;
  /** Pauses after limits, running slots, spend and the network's limits (issue 12). */
  readonly gate: RunGate;
  private blockingConnection: Redis | undefined;
  private eventBus: EventBus | undefined;
  private closed = false;

  constructor(
    readonly redis: Redis,
    readonly config: Pick<DanConfig, 'prefix' | 'logMaxLen' | 'redisUrl'>,
    private readonly options: BusOptions = {},
  ) {
    this.keys = new Keys(config.prefix);
    this.tasks = new TaskStore(redis, this.keys, { logMaxLen: config.logMaxLen, now: options.now });
    this.logs = new LogStream(redis, this.keys, { maxLen: config.logMaxLen, now: options.now });
    this.queues = new TaskQueues(redis, this.keys);
    this.gate = new RunGate(redis, this.keys, { now: options.now });
  }

  /** Connects (throws RedisUnreachableError naming the URL) and returns a ready bus. */
  static async connect(config: Pick<DanConfig, 'prefix' | 'logMaxLen' | 'redisUrl'>, options: BusOptions = {}): Promise<Bus> {
    const redis = await connectRedis(config.redisUrl, options);
    return new Bus(redis, config, options);
  }

  /** A second connection for blocking reads (XREAD BLOCK), created on first use. */
  blocking(): Redis {
    this.blockingConnection ??= createRedis(this.config.redisUrl, { ...this.options, name: `${this.options.name ?? 'dan'}:blocking` });
    return this.blockingConnection;
  }

  /** Pub/sub of events and control messages, on a subscriber connection created on first use. */
  events(): EventBus {
    this.eventBus ??= new EventBus(
      this.redis,
      createRedis(this.config.redisUrl, { ...this.options, name: `${this.options.name ?? 'dan'}:sub` }),
      this.keys,
    );
    return this.eventBus;
  }

  /**
   * Submits a task: the record (durable first), then the queue. A task whose dependencies are open is
   * written `waiting` and not enqueued. If enqueueing fails, the record says so and the error is thrown.
   */
  async submit(spec: TaskSpec, options: { waiting?: boolean; id?: string } = {}): Promise<TaskRecord> {
    const record = await this.tasks.create(spec, options.waiting ? 'waiting' : 'queued', options.id);
    if (!options.waiting) await this.enqueue(record);
    return options.waiting ? record : this.tasks.get(record.id);
  }

  /** Puts a queued record on its domain's queue; on failure marks it failed and throws DAN_ENQUEUE_FAILED. */
  async enqueue(record: TaskRecord): Promise<void> {
    try {
      await this.queues.enqueue(record.domain, record.id, record.priority);
    } catch (error) {
      const message = `could not enqueue on ${record.domain}: ${(error as Error).message}`;
      await this.tasks
        .transition(record.id, 'failed', { text: message, fields: { error: message, finishedAt: Date.now() } })
        .catch(() => {});
      throw new DanError('DAN_ENQUEUE_FAILED', message, { cause: error, retryable: true, details: { taskId: record.id } });
    }
  }

  /**
   * Submits a follow-up (`--continue`): queued at once when the task it follows has ended; written `waiting`
   * and listed among that task's followers while it is still open, to be queued when it ends (by whoever
   * records its end, or by the reconciler). Either way it joins the task's followers: the thread `dan status` shows.
   * Returns the record and whether it waits.
   */
  async submitFollowUp(spec: TaskSpec & { follows: string }, followed: TaskRecord): Promise<{ record: TaskRecord; waits: boolean }> {
    if (isTerminal(followed.status)) {
      const record = await this.submit(spec);
      await this.redis.sadd(this.keys.taskFollowers(spec.follows), record.id);
      return { record, waits: false };
    }
    const record = await this.tasks.create(spec, 'waiting');
    await this.redis.sadd(this.keys.taskFollowers(spec.follows), record.id);
    // The followed task may have ended between the look and the list: release now if so.
    await this.releaseFollowers(spec.follows);
    const now = await this.tasks.get(record.id);
    return { record: now, waits: now.status === 'waiting' };
  }

  /**
   * The conversation a task belongs to, oldest first: back along `follows` to the first task, then every follow-up
   * of each (at most `limit` tasks).
   */
  async thread(record: TaskRecord, limit = 50): Promise<TaskRecord[]> {
    let root = record;
    for (let i = 0; i < limit && root.follows; i++) {
      const earlier = await this.tasks.find(root.follows);
      if (!earlier) break;
      root = earlier;
    }
    const out: TaskRecord[] = [];
    const todo = [root];
    const seen = new Set<string>();
    while (todo.length > 0 && out.length < limit) {
      const next = todo.shift()!;
      if (seen.has(next.id)) continue;
      seen.add(next.id);
      out.push(next);
      const followers = (await this.redis.smembers(this.keys.taskFollowers(next.id))).sort();
      todo.push(...(await this.tasks.getMany(followers)));
    }
    return out;
  }

  /** Queues the waiting follow-ups of a task that has ended; idempotent (a guarded transition each). */
  async releaseFollowers(id: string): Promise<string[]> {
    const followed = await this.tasks.find(id);
    if (followed && !isTerminal(followed.status)) return [];
    const released: string[] = [];
    for (const follower of await this.redis.smembers(this.keys.taskFollowers(id))) {
      const text = followed ? `task ${id} it follows ended ${followed.status}; queued` : `task ${id} it follows is gone; queued`;
      const moved = await this.tasks.transition(follower, 'queued', { from: ['waiting'], text });
      if (moved.outcome === 'ok') {
        await this.enqueue(await this.tasks.get(follower));
        released.push(follower);
      }
    }
    return released;
  }

  /**
   * `dan answer`: the user's answer to the question a task's run asked. The task is queued again, the answer in
   * its record: a new attempt of the same task, whose run resumes the session with the answer as the next message.
   * Throws BadInputError when the task is not waiting for input.
   */
  async answer(id: string, text: string): Promise<TaskRecord> {
    const record = await this.tasks.get(id);
    if (record.status !== 'needs_input') {
      throw new BadInputError(`task ${id} is ${record.status}, not waiting for input: only a needs_input task takes an answer (dan tasks --status needs_input lists them)`);
    }
    const moved = await this.tasks.transition(id, 'queued', {
      from: ['needs_input'],
      expectAttempts: record.attempts,
      text: `answered: A: ${text}`,
      fields: { answer: text },
    });
    if (moved.outcome !== 'ok') throw new BadInputError(`task ${id} changed while it was being answered: look again with dan status ${id}`);
    await this.enqueue({ ...record, status: 'queued' });
    return this.tasks.get(id);
  }

  /**
   * `dan retry`: starts a failed, timed-out or cancelled task again, its attempts reset and how it ended kept in
   * its record (`retried`) and log. A goal retries its failed, timed-out and cancelled subtasks (back to waiting:
   * its graph queues each once its dependencies completed) and is reopened; a goal that failed before it had a
   * plan is planned again. Every move is fenced on the status and attempts read, so a concurrent change wins.
   * Throws BadInputError for a task that is not in a retryable end.
   */
  async retry(id: string): Promise<{ record: TaskRecord; subtasks: string[] }> {
    const record = await this.tasks.get(id);
    if (record.parent) {
      throw new BadInputError(`task ${id} is a subtask of goal ${record.parent}: retry the goal (dan retry ${record.parent}), which retries its failed subtasks`);
    }
    if (!RETRYABLE_STATUSES.includes(record.status)) {
      throw new BadInputError(`task ${id} is ${record.status}: only a failed, timed-out or cancelled task can be retried`);
    }
    const planned = record.plan !== undefined && record.children.length > 0;
    const subtasks: string[] = [];
    if (planned) {
      for (const child of await this.tasks.getMany(record.children)) {
        if (!RETRYABLE_STATUSES.includes(child.status)) continue;
        const moved = await this.reopen(child, 'waiting', `retried with goal ${id}`);
        if (moved) subtasks.push(child.id);
      }
    }
    const to = planned ? 'active' : 'queued';
    if (!(await this.reopen(record, to, planned ? `retried: ${subtasks.length} subtask${subtasks.length === 1 ? '' : 's'} again` : 'retried: queued again'))) {
      throw new BadInputError(`task ${id} changed while it was being retried: look again with dan status ${id}`);
    }
    if (planned) await this.redis.sadd(this.keys.graphs, id);
    else await this.enqueue({ ...record, status: 'queued' });
    return { record: await this.tasks.get(id), subtasks };
  }

  private async reopen(record: TaskRecord, to: 'queued' | 'waiting' | 'active', text: string): Promise<boolean> {
    const now = Date.now();
    const earlier = [...(record.retried ?? []), { status: record.status, attempts: record.attempts, error: record.error ?? record.reason, finishedAt: record.finishedAt, retriedAt: now }];
    const moved = await this.tasks.transition(record.id, to, {
      from: [record.status],
      reopen: true,
      expectAttempts: record.attempts,
      text: `${text} (it had ended ${record.status} after ${record.attempts} attempt${record.attempts === 1 ? '' : 's'}${record.error ? `: ${firstLine(record.error)}` : ''})`,
      fields: { attempts: 0, retried: JSON.stringify(earlier.slice(-20)) },
      del: ['error', 'result', 'finishedAt', 'reason', 'cancelRequested', 'warnings', 'sessionId', 'agent', 'startedAt'],
    });
    return moved.outcome === 'ok';
  }

  /**
   * Cancels a task: a waiting or queued one at once; an active one by asking its agent (through its control
   * channel) after marking the record cancel-requested, so an agent that missed the message still sees it.
   * A `main` task whose plan is running is cancelled at once, with every open subtask.
   */
  async cancel(id: string, reason = 'cancelled by user'): Promise<CancelOutcome> {
    const outcome = await this.cancelOne(id, reason);
    const record = await this.tasks.get(id);
    if (record.children.length > 0 && outcome.outcome !== 'already_finished') {
      for (const child of record.children) await this.cancelOne(child, `parent ${id} was cancelled`).catch(() => undefined);
      await this.tasks.closeGraph(id);
    }
    return outcome;
  }

  private async cancelOne(id: string, reason: string): Promise<CancelOutcome> {
    for (let i = 0; i < 3; i++) {
      const record = await this.tasks.get(id);
      if (isTerminal(record.status)) return { outcome: 'already_finished', status: record.status };
      // Waiting, queued, or a planned parent (its work is its subtasks, no agent runs it): cancel now.
      if (record.status !== 'active' || record.plan !== undefined) {
        const result = await this.tasks.transition(id, 'cancelled', {
          text: reason,
          fields: { reason, finishedAt: Date.now() },
        });
        if (result.outcome === 'ok') {
          if (result.from === 'queued') await this.queues.remove(record.domain, id);
          await this.releaseFollowers(id);
          return { outcome: 'cancelled', from: result.from! };
        }
        continue; // it moved on meanwhile (taken by an agent): look again
      }
      const requested = await this.tasks.requestCancel(id, reason);
      if (requested.outcome !== 'ok') continue;
      if (requested.agent) await this.events().publishControl(requested.agent, { type: 'cancel', taskId: id, reason });
      return { outcome: 'requested', agent: requested.agent };
    }
    const record = await this.tasks.get(id);
    return { outcome: 'already_finished', status: record.status };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.eventBus?.close();
    await this.queues.close().catch(() => {});
    for (const connection of [this.blockingConnection, this.redis]) connection?.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const firstLine = (text: string): string => {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
};
