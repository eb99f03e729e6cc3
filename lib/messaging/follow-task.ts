import type { Redis } from 'ioredis';
import { isSettled, type TaskRecord } from '../task.js';
import type { Bus } from './bus.js';
import { compareStreamIds, type StoredLogEntry } from './log-stream.js';

export interface FollowTaskOptions {
  /** Called for each entry in order: first the history, then live ones, with no gap and no duplicate. */
  onEntry?: (entry: StoredLogEntry) => void;
  /** Show only the newest `last` history entries. */
  last?: number;
  /** Stop following when the task ends (for --wait). @default true */
  untilDone?: boolean;
  /** Interleave the logs of a goal's subtasks, including those created while following. @default true */
  withSubtasks?: boolean;
  signal?: AbortSignal;
  /** Longest block of one read; the record is re-checked between reads. @default 1000 */
  blockMs?: number;
  /**
   * Resume after this stream id (a reconnecting client's last entry): only later entries, of every stream
   * followed (stream ids are Redis server times, so one id orders the task's and its subtasks' entries).
   */
  after?: string;
  /** The connection for blocking reads, when the caller follows several tasks at once. @default bus.blocking() */
  blocking?: Redis;
}

/**
 * Prints a task's log (and its subtasks', interleaved by time) and follows it. Returns the record once it
 * is terminal or waits for the user's answer (`needs_input`), or when aborted. The record is re-read between blocking reads, so a terminal status trimmed
 * out of a capped stream is still seen, and subtasks created meanwhile are picked up from their first entry.
 */
export async function followTask(bus: Bus, taskId: string, options: FollowTaskOptions = {}): Promise<TaskRecord> {
  const untilDone = options.untilDone ?? true;
  const withSubtasks = options.withSubtasks ?? true;
  let record = await bus.tasks.get(taskId);
  const ids = [taskId, ...(withSubtasks ? record.children : [])];
  const history: StoredLogEntry[] = [];
  const positions = new Map<string, string>();
  for (const id of ids) {
    const entries = await bus.logs.history(id, {
      ...(options.last === undefined ? {} : { last: Math.max(options.last, 1) }),
      ...(options.after === undefined ? {} : { after: options.after }),
    });
    history.push(...entries);
    positions.set(id, entries.at(-1)?.id ?? options.after ?? '0-0');
  }
  history.sort((a, b) => compareStreamIds(a.id, b.id));
  for (const entry of options.last === undefined ? history : options.last === 0 ? [] : history.slice(-options.last)) options.onEntry?.(entry);
  const blocking = options.blocking ?? bus.blocking();
  for (;;) {
    if (options.signal?.aborted) return record;
    record = await bus.tasks.get(taskId);
    if (withSubtasks) for (const child of record.children) if (!positions.has(child)) positions.set(child, options.after ?? '0-0');
    if (untilDone && isSettled(record.status)) {
      // Drain what was written before the record went terminal.
      const rest: StoredLogEntry[] = [];
      for (const [id, after] of positions) rest.push(...(await bus.logs.history(id, { after })));
      for (const entry of rest.sort((a, b) => compareStreamIds(a.id, b.id))) options.onEntry?.(entry);
      return record;
    }
    const entries = await bus.logs.readAfter(blocking, positions, options.blockMs ?? 1000);
    let ended = false;
    for (const entry of entries) {
      options.onEntry?.(entry);
      if (entry.taskId === taskId && entry.entry.type === 'status' && entry.entry.status && isSettled(entry.entry.status)) ended = true;
    }
    if (untilDone && ended) {
      // Entries of other streams written just before the end are drained on the next pass.
      continue;
    }
  }
}
