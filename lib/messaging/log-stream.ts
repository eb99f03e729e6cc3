import type { Redis } from 'ioredis';
import { logEntrySchema, type LogEntry, type LogEntryInput } from '../task.js';
import type { Keys } from './keys.js';

/** A log entry with its stream id and task. Stream ids are `<ms>-<seq>`, so they order entries in time. */
export interface StoredLogEntry {
  id: string;
  taskId: string;
  entry: LogEntry;
}

export interface LogStreamOptions {
  /** Entries kept per task (approximate, `MAXLEN ~`). */
  maxLen: number;
  now?: () => number;
}

type StreamReply = Array<[string, string[]]>;

/** Compares stream ids numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

/**
 * The per-task log: a capped Redis stream `<prefix>task:<id>:log` holding every event and log line of the
 * task as JSON in the field `e`. History and live reads share stream ids, so following after a history read
 * has no gap and no duplicate.
 */
export class LogStream {
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: LogStreamOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Appends entries in order, in one round trip. */
  async append(taskId: string, entries: readonly LogEntryInput[]): Promise<void> {
    if (entries.length === 0) return;
    const key = this.keys.taskLog(taskId);
    const pipeline = this.redis.pipeline();
    for (const input of entries) {
      const entry: LogEntry = { ...input, ts: input.ts ?? this.now(), task: input.task ?? taskId };
      pipeline.xadd(key, 'MAXLEN', '~', this.options.maxLen, '*', 'e', JSON.stringify(entry));
    }
    const replies = (await pipeline.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
  }

  /** Entries in order; with `last`, only the newest `last` of them. */
  async history(taskId: string, options: { last?: number; after?: string } = {}): Promise<StoredLogEntry[]> {
    const key = this.keys.taskLog(taskId);
    if (options.last !== undefined) {
      const reply = await this.redis.xrevrange(key, '+', options.after ? `(${options.after}` : '-', 'COUNT', options.last);
      return reply.reverse().map(([id, fields]) => this.decode(taskId, id, fields));
    }
    const reply = await this.redis.xrange(key, options.after ? `(${options.after}` : '-', '+');
    return reply.map(([id, fields]) => this.decode(taskId, id, fields));
  }

  /** The id of the newest entry, or `0-0` for an empty stream: follow from there to see only new entries. */
  async lastId(taskId: string): Promise<string> {
    const reply = await this.redis.xrevrange(this.keys.taskLog(taskId), '+', '-', 'COUNT', 1);
    return reply[0]?.[0] ?? '0-0';
  }

  /**
   * One blocking read of new entries of several tasks after the given positions, which it advances.
   * `blocking` must be a connection of its own (XREAD BLOCK holds it). Returns entries ordered by stream id.
   */
  async readAfter(blocking: Redis, positions: Map<string, string>, blockMs: number, count = 1000): Promise<StoredLogEntry[]> {
    if (positions.size === 0) return [];
    const taskIds = [...positions.keys()];
    const reply = (await blocking.xread(
      'COUNT',
      count,
      'BLOCK',
      blockMs,
      'STREAMS',
      ...taskIds.map((t) => this.keys.taskLog(t)),
      ...taskIds.map((t) => positions.get(t)!),
    )) as StreamReply | null;
    if (!reply) return [];
    const out: StoredLogEntry[] = [];
    for (const [key, items] of reply) {
      const taskId = this.taskIdOf(key);
      for (const item of items as unknown as Array<[string, string[]]>) {
        const [id, fields] = item;
        out.push(this.decode(taskId, id, fields));
        positions.set(taskId, id);
      }
    }
    return out.sort((a, b) => compareStreamIds(a.id, b.id));
  }

  private taskIdOf(key: string): string {
    return key.slice(this.keys.prefix.length + 'task:'.length, -':log'.length);
  }

  /** Every entry read from Redis is parsed with the schema that wrote it; a malformed one becomes a raw entry. */
  private decode(taskId: string, id: string, fields: string[]): StoredLogEntry {
    const index = fields.indexOf('e');
    const raw = index >= 0 ? fields[index + 1] : undefined;
    if (raw !== undefined) {
      try {
        const parsed = logEntrySchema.safeParse(JSON.parse(raw));
        if (parsed.success) return { id, taskId, entry: parsed.data };
      } catch {
        // fall through: not JSON
      }
    }
    const ts = Number(id.split('-')[0]);
    return { id, taskId, entry: { ts, type: 'raw', text: `malformed log entry: ${fields.join(' ').slice(0, 500)}`, task: taskId } };
  }
}
