import { isTerminal, type TaskRecord } from '../task.js';
import type { Bus } from './bus.js';
import type { StoredLogEntry } from './log-stream.js';

export interface FollowTaskOptions {
  /** Called for each entry in order: first the history, then live ones, with no gap and no duplicate. */
  onEntry?: (entry: StoredLogEntry) => void;
  /** Show only the newest `last` history entries. */
  last?: number;
  /** Stop following when the task ends (for --wait). @default true */
  untilDone?: boolean;
  signal?: AbortSignal;
  /** Longest block of one read; the record is re-checked between reads. @default 1000 */
  blockMs?: number;
}

/**
 * Prints a task's log and follows it. Returns the record once it is terminal (or when aborted). The record
 * is re-read between blocking reads, so a terminal status trimmed out of a capped stream is still seen.
 */
export async function followTask(bus: Bus, taskId: string, options: FollowTaskOptions = {}): Promise<TaskRecord> {
  const untilDone = options.untilDone ?? true;
  const history = await bus.logs.history(taskId, options.last === undefined ? {} : { last: options.last });
  for (const entry of history) options.onEntry?.(entry);
  const positions = new Map([[taskId, history.at(-1)?.id ?? (options.last === 0 ? await bus.logs.lastId(taskId) : '0-0')]]);
  const blocking = bus.blocking();
  for (;;) {
    if (options.signal?.aborted) return bus.tasks.get(taskId);
    if (untilDone) {
      const record = await bus.tasks.get(taskId);
      if (isTerminal(record.status)) {
        // Drain what was written before the record went terminal.
        for (const entry of await bus.logs.history(taskId, { after: positions.get(taskId)! })) options.onEntry?.(entry);
        return record;
      }
    }
    const entries = await bus.logs.readAfter(blocking, positions, options.blockMs ?? 1000);
    for (const entry of entries) {
      options.onEntry?.(entry);
      if (untilDone && entry.entry.type === 'status' && entry.entry.status && isTerminal(entry.entry.status)) {
        return bus.tasks.get(taskId);
      }
    }
  }
}
