import type { Redis } from 'ioredis';
import { z } from 'zod';
import { describeZodError } from '../errors.js';
import type { Keys } from '../messaging/keys.js';
import { Scripts } from '../messaging/scripts.js';

export const AGENT_STATUSES = ['starting', 'idle', 'busy', 'draining', 'stopped', 'dead'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

/** The agent hash `<prefix>agent:<id>`, written and read with this one schema. */
export const agentRecordSchema = z.object({
  id: z.string(),
  role: z.enum(['main', 'domain']),
  domain: z.string(),
  runtime: z.string(),
  /** Container name or `pid:<n>`. */
  ref: z.string().default(''),
  host: z.string().default(''),
  pid: z.coerce.number().optional(),
  startedAt: z.coerce.number(),
  lastSeen: z.coerce.number().optional(),
  status: z.enum(AGENT_STATUSES),
  /** Task ids in progress, comma-separated. */
  tasks: z.string().default(''),
  tasksDone: z.coerce.number().default(0),
  reapedAt: z.coerce.number().optional(),
  /** The last log lines of a reaped agent, kept by the reaper. */
  lastLogs: z.string().optional(),
});
export type AgentRecord = z.infer<typeof agentRecordSchema> & { alive: boolean; taskIds: string[] };

export interface RegisterInput {
  id: string;
  role: 'main' | 'domain';
  domain: string;
  runtime: string;
  ref?: string;
  host?: string;
  pid?: number;
}

export interface RegistryOptions {
  heartbeatTtlMs: number;
  /** How long the record of a dead or stopped agent is kept, for `dan agents` and post-mortems. @default 86400 s */
  keepDeadS?: number;
  now?: () => number;
}

/**
 * The agent registry: `<prefix>agents` (live ids), `<prefix>agent:<id>` (the record) and
 * `<prefix>agent:<id>:hb` (the heartbeat, a key with a TTL: gone means dead).
 */
export class AgentRegistry {
  private readonly scripts: Scripts;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: RegistryOptions,
  ) {
    this.scripts = new Scripts(redis);
    this.now = options.now ?? Date.now;
  }

  get heartbeatTtlMs(): number {
    return this.options.heartbeatTtlMs;
  }

  async register(input: RegisterInput): Promise<void> {
    const now = this.now();
    const fields: Record<string, string> = {
      id: input.id,
      role: input.role,
      domain: input.domain,
      runtime: input.runtime,
      ref: input.ref ?? '',
      host: input.host ?? '',
      startedAt: String(now),
      lastSeen: String(now),
      status: 'idle',
      tasks: '',
      tasksDone: '0',
    };
    if (input.pid !== undefined) fields.pid = String(input.pid);
    await this.redis
      .multi()
      .del(this.keys.agent(input.id))
      .hset(this.keys.agent(input.id), fields)
      .sadd(this.keys.agents, input.id)
      .set(this.keys.heartbeat(input.id), String(now), 'PX', this.options.heartbeatTtlMs)
      .publish(this.keys.events, JSON.stringify({ kind: 'agent', id: input.id, domain: input.domain, status: 'registered', ts: now }))
      .exec();
  }

  /** Renews the heartbeat. Returns false when the agent has been reaped: it must stop work and exit. */
  async heartbeat(id: string): Promise<boolean> {
    return (await this.beat(id, [])).alive;
  }

  /**
   * Renews the heartbeat and reads, in the same step, which of `taskIds` (the tasks the agent runs) have a cancel
   * request on their record, with the reason given.
   */
  async beat(id: string, taskIds: readonly string[]): Promise<{ alive: boolean; cancelled: Array<{ taskId: string; reason: string }> }> {
    const reply = await this.scripts.heartbeat(
      [this.keys.agents, this.keys.heartbeat(id), this.keys.agent(id), ...taskIds.map((t) => this.keys.task(t))],
      [id, this.options.heartbeatTtlMs, this.now(), ...taskIds],
    );
    const cancelled: Array<{ taskId: string; reason: string }> = [];
    for (let i = 1; i + 1 < reply.length; i += 2) cancelled.push({ taskId: String(reply[i]), reason: String(reply[i + 1]) });
    return { alive: Number(reply[0]) === 1, cancelled };
  }

  /** Updates an agent's status and the tasks it holds. */
  async setState(id: string, status: AgentStatus, taskIds: readonly string[], tasksDone?: number): Promise<void> {
    const fields: Record<string, string> = { status, tasks: taskIds.join(',') };
    if (tasksDone !== undefined) fields.tasksDone = String(tasksDone);
    await this.redis.hset(this.keys.agent(id), fields);
  }

  /** Leaves the network cleanly: out of the live set, heartbeat gone, record kept a while as `stopped`. */
  async deregister(id: string, domain: string): Promise<void> {
    const now = this.now();
    await this.redis
      .multi()
      .srem(this.keys.agents, id)
      .del(this.keys.heartbeat(id))
      .hset(this.keys.agent(id), { status: 'stopped', tasks: '', lastSeen: String(now) })
      .expire(this.keys.agent(id), this.options.keepDeadS ?? 86_400)
      .publish(this.keys.events, JSON.stringify({ kind: 'agent', id, domain, status: 'stopped', ts: now }))
      .exec();
  }

  /** Ids in the live set (registered, not yet reaped or deregistered). */
  ids(): Promise<string[]> {
    return this.redis.smembers(this.keys.agents);
  }

  /** Registered agents with whether their heartbeat is alive. Malformed records are skipped. */
  async list(): Promise<AgentRecord[]> {
    const ids = await this.ids();
    return this.records(ids);
  }

  async get(id: string): Promise<AgentRecord | undefined> {
    return (await this.records([id]))[0];
  }

  /** Registered ids whose heartbeat key is gone: dead, awaiting the reaper. */
  async expired(): Promise<string[]> {
    const ids = await this.ids();
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.keys.heartbeat(id));
    const replies = (await pipeline.exec()) ?? [];
    return ids.filter((_, i) => replies[i]?.[1] === 0);
  }

  /**
   * Reaps one agent atomically: only if still registered and its heartbeat expired. Returns its record, or
   * undefined when another reaper got there first or it came back to life.
   */
  async reap(id: string): Promise<AgentRecord | undefined> {
    const now = this.now();
    const flat = await this.scripts.reap(
      [this.keys.agents, this.keys.heartbeat(id), this.keys.agent(id), this.keys.toRelease],
      [id, now, this.keys.events, this.options.keepDeadS ?? 86_400],
    );
    if (flat.length === 0) return undefined;
    const hash: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
    const parsed = agentRecordSchema.safeParse({ id, role: 'domain', domain: '', runtime: '', startedAt: 0, ...hash });
    if (!parsed.success) return { ...minimalRecord(id, now), alive: false, taskIds: [] };
    return { ...parsed.data, alive: false, taskIds: splitTasks(parsed.data.tasks) };
  }

  /**
   * Reaped agents whose work is not yet released (see {@link Keys.toRelease}), with their records as the reap left
   * them, reaped at least `olderThanMs` ago (a younger one is likely still being released by its reaper). An agent
   * whose record has expired meanwhile comes back with no tasks.
   */
  async pendingRelease(olderThanMs = 0): Promise<AgentRecord[]> {
    const ids = await this.redis.smembers(this.keys.toRelease);
    if (ids.length === 0) return [];
    const found = new Map((await this.records(ids)).map((a) => [a.id, a]));
    const cutoff = this.now() - olderThanMs;
    return ids
      .map((id) => found.get(id) ?? { ...minimalRecord(id, 0), alive: false, taskIds: [] })
      .filter((a) => (a.reapedAt ?? 0) <= cutoff);
  }

  /** The second step of a reap is done: the agent leaves the to-release set. */
  async released(id: string): Promise<void> {
    await this.redis.srem(this.keys.toRelease, id);
  }

  /** Keeps a reaped agent's last log lines in its record. */
  async keepLogs(id: string, lines: string): Promise<void> {
    await this.redis.hset(this.keys.agent(id), 'lastLogs', lines.slice(-8000));
  }

  private async records(ids: readonly string[]): Promise<AgentRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.agent(id)).exists(this.keys.heartbeat(id));
    const replies = (await pipeline.exec()) ?? [];
    const out: AgentRecord[] = [];
    ids.forEach((id, i) => {
      const hash = replies[2 * i]?.[1] as Record<string, string> | undefined;
      const alive = replies[2 * i + 1]?.[1] === 1;
      if (!hash || Object.keys(hash).length === 0) return;
      const parsed = agentRecordSchema.safeParse(hash);
      if (!parsed.success) {
        out.push({ ...minimalRecord(id, 0), alive, taskIds: [], lastLogs: `malformed record: ${describeZodError(parsed.error)}` });
        return;
      }
      out.push({ ...parsed.data, alive, taskIds: splitTasks(parsed.data.tasks) });
    });
    return out;
  }
}

function splitTasks(tasks: string): string[] {
  return tasks === '' ? [] : tasks.split(',');
}

function minimalRecord(id: string, now: number): z.infer<typeof agentRecordSchema> {
  return { id, role: 'domain', domain: '', runtime: '', ref: '', host: '', startedAt: now, status: 'dead', tasks: '', tasksDone: 0 };
}
