import type { Redis } from 'ioredis';
import { CorruptRecordError, DanError, IllegalTransitionError, UnknownTaskError, describeZodError } from '../errors.js';
import {
  TASK_STATUSES,
  canReopen,
  canTransition,
  newRecordFields,
  newTaskId,
  recordFromHash,
  taskRecordHashSchema,
  type LogEntry,
  type TaskRecord,
  type TaskSpec,
  type TaskStatus,
} from '../task.js';
import type { TaskGit } from '../workspace/task-git.js';
import type { Keys } from './keys.js';
import { Scripts } from './scripts.js';

export type TransitionOutcome = 'ok' | 'missing' | 'illegal' | 'fenced' | 'exhausted' | 'cancelled' | 'busy';

export interface TransitionResult {
  outcome: TransitionOutcome;
  /** The status before the call. */
  from: TaskStatus | undefined;
  /** The attempt number after the call. */
  attempts: number;
}

export interface TransitionOptions {
  /** Log text of the transition (also the event's reason). */
  text?: string;
  /** The agent named in the log entry and event. */
  agent?: string;
  /** Fencing: act only if the record names this agent … */
  expectAgent?: string;
  /** … and holds this attempt number. */
  expectAttempts?: number;
  /** Fields to set with the status. */
  fields?: Record<string, string | number | undefined>;
  /** Fields to delete. */
  del?: string[];
  mode?: 'claim';
  /**
   * Claim only: leave an `active` record alone while the agent it names (another than `agent`) still has a
   * heartbeat (outcome `busy`). A domain agent claims so: a job redelivered because its lock lapsed while its
   * agent lived is not run twice at once (issue 16, item 8).
   */
  unlessHolderLive?: boolean;
  /** Act only from these statuses (within what the state machine allows). @default every status allowed */
  from?: readonly TaskStatus[];
  /** Allow a move out of an end (REOPENS, `dan retry`); needs `from`. */
  reopen?: boolean;
}

export interface ListFilter {
  domain?: string;
  status?: TaskStatus;
  parent?: string;
  /** @default 20 */
  limit?: number;
}

export interface TaskStoreOptions {
  /** Entries kept per task log stream (approximate). */
  logMaxLen: number;
  now?: () => number;
}

/** Sources allowed for each target status, from the state machine in lib/task.ts. */
const ALLOWED_FROM = Object.fromEntries(
  TASK_STATUSES.map((to) => [to, TASK_STATUSES.filter((from) => canTransition(from, to)).join(' ')]),
) as Record<TaskStatus, string>;

/**
 * Task records `<prefix>task:<id>` and their index. Every change goes through one Lua script that writes the
 * record, appends to the task's log stream, and publishes on the events channel, in that order.
 */
export class TaskStore {
  private readonly scripts: Scripts;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: TaskStoreOptions,
  ) {
    this.scripts = new Scripts(redis);
    this.now = options.now ?? Date.now;
  }

  /** Writes a new record (status `queued` or `waiting`) with its first log entry. Does not enqueue. */
  async create(spec: TaskSpec, status: 'queued' | 'waiting' = 'queued', id = newTaskId()): Promise<TaskRecord> {
    const now = this.now();
    const fields = newRecordFields(id, spec, status, now);
    const text =
      status === 'waiting'
        ? `created, waiting for ${spec.dependsOn.length} dependenc${spec.dependsOn.length === 1 ? 'y' : 'ies'}`
        : `queued for ${spec.domain} (priority ${spec.priority}, timeout ${spec.timeoutS}s)`;
    const entry: LogEntry = { ts: now, type: 'status', status, text, task: id };
    const event = { kind: 'task', id, domain: spec.domain, status, ts: now };
    const parentKey = spec.parent ? this.keys.task(spec.parent) : this.keys.task(id);
    const created = await this.scripts.createTask(
      [this.keys.task(id), this.keys.tasks, this.keys.taskLog(id), parentKey, this.keys.open],
      [id, JSON.stringify(fields), now, JSON.stringify(entry), this.keys.events, JSON.stringify(event), this.options.logMaxLen],
    );
    if (created !== 1) throw new DanError('DAN_BAD_INPUT', `task ${id} already exists`, { details: { taskId: id } });
    // The record is exactly the fields just written: no second round trip on the way to the queue.
    return this.parse(id, fields);
  }

  /**
   * Creates a goal's subtasks (all `waiting`), links them to it, records its plan and marks its graph open, in
   * one script: either the whole graph exists or none of it does. Fenced: it writes only while the goal is
   * still active under `fence.agent` and `fence.attempts` (the orchestrator that planned it was not reaped
   * meanwhile) and has no plan yet; otherwise it writes nothing and says why.
   */
  async commitPlan(
    parentId: string,
    children: ReadonlyArray<{ id: string; spec: TaskSpec }>,
    plan: unknown,
    fence: { agent: string; attempts: number },
  ): Promise<'ok' | 'fenced' | 'planned' | 'exists'> {
    const now = this.now();
    const keys = [this.keys.task(parentId), this.keys.tasks, this.keys.graphs, this.keys.open];
    const args: Array<string | number> = [fence.agent, fence.attempts, JSON.stringify(plan), now, this.keys.events, this.options.logMaxLen, parentId];
    for (const { id, spec } of children) {
      const fields = newRecordFields(id, { ...spec, parent: parentId }, 'waiting', now);
      const text = spec.dependsOn.length === 0 ? 'created by the plan; ready' : `created by the plan, waiting for ${spec.dependsOn.length} dependenc${spec.dependsOn.length === 1 ? 'y' : 'ies'}`;
      const entry: LogEntry = { ts: now, type: 'status', status: 'waiting', text, task: id };
      const event = { kind: 'task', id, domain: spec.domain, status: 'waiting', ts: now };
      keys.push(this.keys.task(id), this.keys.taskLog(id));
      args.push(id, JSON.stringify(fields), JSON.stringify(entry), JSON.stringify(event));
    }
    return this.scripts.commitPlan(keys, args);
  }

  /** Parent ids whose graph is open. */
  openGraphs(): Promise<string[]> {
    return this.redis.smembers(this.keys.graphs);
  }

  /** Marks a parent's graph closed (it ended). */
  async closeGraph(parentId: string): Promise<void> {
    await this.redis.srem(this.keys.graphs, parentId);
  }

  /** The record, or undefined when there is none. Throws CorruptRecordError for a malformed one. */
  async find(id: string): Promise<TaskRecord | undefined> {
    const hash = await this.redis.hgetall(this.keys.task(id));
    if (Object.keys(hash).length === 0) return undefined;
    return this.parse(id, hash);
  }

  /** The record; throws UnknownTaskError when there is none. */
  async get(id: string): Promise<TaskRecord> {
    const record = await this.find(id);
    if (!record) throw new UnknownTaskError(id);
    return record;
  }

  /** Records by id, in the order asked, skipping missing ones; malformed ones are reported through `onCorrupt`. */
  async getMany(ids: readonly string[], onCorrupt?: (error: CorruptRecordError) => void): Promise<TaskRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.task(id));
    const replies = (await pipeline.exec()) ?? [];
    const records: TaskRecord[] = [];
    replies.forEach(([error, hash], i) => {
      if (error) throw error;
      const h = hash as Record<string, string>;
      if (Object.keys(h).length === 0) return;
      try {
        records.push(this.parse(ids[i]!, h));
      } catch (e) {
        if (e instanceof CorruptRecordError && onCorrupt) onCorrupt(e);
        else throw e;
      }
    });
    return records;
  }

  /** Records newest first, filtered; scans the index in pages so a filter still fills `limit`. */
  async list(filter: ListFilter = {}): Promise<TaskRecord[]> {
    const limit = filter.limit ?? 20;
    const page = Math.max(100, limit);
    const out: TaskRecord[] = [];
    for (let start = 0; out.length < limit; start += page) {
      const ids = await this.redis.zrevrange(this.keys.tasks, start, start + page - 1);
      if (ids.length === 0) break;
      for (const record of await this.getMany(ids, () => {})) {
        if (filter.domain && record.domain !== filter.domain) continue;
        if (filter.status && record.status !== filter.status) continue;
        if (filter.parent && record.parent !== filter.parent) continue;
        out.push(record);
        if (out.length >= limit) break;
      }
      if (ids.length < page) break;
    }
    return out;
  }

  /** Ids of the tasks created at or after `since` (ms), oldest first (the index only). */
  idsSince(since: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.tasks, since, '+inf');
  }

  /** Ids newest first (the index only). */
  recentIds(count: number): Promise<string[]> {
    return this.redis.zrevrange(this.keys.tasks, 0, count - 1);
  }

  /**
   * Moves a task to `to` if the state machine and the fencing allow it. Never throws for a refused
   * transition: the outcome says what happened.
   */
  async transition(id: string, to: TaskStatus, options: TransitionOptions = {}): Promise<TransitionResult> {
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.fields ?? {})) if (v !== undefined) fields[k] = String(v);
    const [outcome, from, attempts] = await this.scripts.transition(
      [this.keys.task(id), this.keys.taskLog(id), this.keys.open, this.keys.ended],
      [
        to,
        options.from ? options.from.filter((s) => canTransition(s, to) || (options.reopen === true && canReopen(s, to))).join(' ') : ALLOWED_FROM[to],
        options.expectAgent ?? '',
        options.expectAttempts === undefined ? '' : String(options.expectAttempts),
        JSON.stringify(fields),
        (options.del ?? []).join(' '),
        options.mode ?? '',
        options.text ?? '',
        options.agent ?? '',
        this.now(),
        this.keys.events,
        this.options.logMaxLen,
        id,
        options.unlessHolderLive ? this.keys.heartbeat('{agent}') : '',
      ],
    );
    return {
      outcome: outcome as TransitionOutcome,
      from: from === '' ? undefined : (from as TaskStatus),
      attempts: Number(attempts),
    };
  }

  /** Like `transition`, but an illegal or missing task is an error (for user-initiated changes). */
  async transitionOrThrow(id: string, to: TaskStatus, options: TransitionOptions = {}): Promise<TransitionResult> {
    const result = await this.transition(id, to, options);
    if (result.outcome === 'missing') throw new UnknownTaskError(id);
    if (result.outcome === 'illegal') throw new IllegalTransitionError(id, result.from ?? 'unknown', to);
    return result;
  }

  /**
   * Records what became of an ended task's change (`dan merge`): its `git` field and a log entry, in one
   * MULTI. The task's status does not change.
   */
  async updateGit(id: string, git: TaskGit, text: string): Promise<void> {
    const now = this.now();
    const entry: LogEntry = { ts: now, type: 'info', text, task: id };
    const replies = await this.redis
      .multi()
      .hset(this.keys.task(id), 'git', JSON.stringify(git), 'updatedAt', String(now))
      .xadd(this.keys.taskLog(id), 'MAXLEN', '~', this.options.logMaxLen, '*', 'e', JSON.stringify(entry))
      .exec();
    for (const [error] of replies ?? []) if (error) throw error;
  }

  /** Sets fields of a record that are not its status (an author's review gates), with no log entry. */
  async updateFields(id: string, fields: Record<string, string>): Promise<void> {
    await this.redis.hset(this.keys.task(id), { ...fields, updatedAt: String(this.now()) });
  }

  /**
   * Retention: removes every task that ended at or before `cutoffMs` (and, for a goal, its subtasks) with its log
   * stream and index entries, in batches of `batch` ended tasks, each batch one script. Returns the records removed.
   */
  async expireEnded(cutoffMs: number, batch = 200): Promise<number> {
    let removed = 0;
    for (;;) {
      const [seen, gone] = await this.scripts.expireEnded(
        [this.keys.ended, this.keys.tasks, this.keys.open, this.keys.graphs],
        [cutoffMs, this.keys.prefix, batch],
      );
      removed += gone;
      if (seen < batch) return removed;
    }
  }

  /** Ids of tasks that have not ended (the open index). */
  openIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.open);
  }

  /** Marks an active task cancel-requested; returns the agent to tell, or why not. */
  async requestCancel(id: string, reason: string): Promise<{ outcome: 'ok' | 'missing' | 'not_active'; status?: TaskStatus; agent?: string }> {
    const [outcome, status, agent] = await this.scripts.requestCancel(
      [this.keys.task(id), this.keys.taskLog(id)],
      [this.now(), reason, this.options.logMaxLen, id],
    );
    return {
      outcome: outcome as 'ok' | 'missing' | 'not_active',
      status: status === '' ? undefined : (status as TaskStatus),
      agent: agent === '' ? undefined : agent,
    };
  }

  private parse(id: string, hash: Record<string, string>): TaskRecord {
    const parsed = taskRecordHashSchema.safeParse(hash);
    if (!parsed.success) throw new CorruptRecordError(this.keys.task(id), describeZodError(parsed.error));
    return recordFromHash(parsed.data);
  }
}
