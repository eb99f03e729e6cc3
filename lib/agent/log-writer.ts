import type { Logger } from '../log.js';
import { isConnectionError, type LogStream } from '../messaging/index.js';
import type { LogEntryInput } from '../task.js';

/**
 * Appends a task's log entries to its stream in order, batching whatever arrived while the previous batch
 * was in flight into one pipelined round trip. If Redis is briefly away the entries wait and are retried; an error
 * Redis answers with (the stream key of another type, a denied command, out of memory) is not retried: the batch
 * is dropped and logged, so a log that cannot be written never holds back the task's result. `flush()` resolves
 * once everything pushed so far is stored or dropped.
 */
export class LogWriter {
  private pending: LogEntryInput[] = [];
  private flushing: Promise<void> | undefined;
  private dropped = 0;

  constructor(
    private readonly logs: LogStream,
    private readonly taskId: string,
    private readonly logger: Logger,
    private readonly options: { maxPending?: number; retryMs?: number } = {},
  ) {}

  push(entry: LogEntryInput): void {
    this.pending.push({ ...entry, ts: entry.ts ?? Date.now() });
    const max = this.options.maxPending ?? 100_000;
    if (this.pending.length > max) {
      // Redis has been away long enough to fill the buffer: keep the newest, say how many were dropped.
      this.dropped += this.pending.length - max;
      this.pending.splice(0, this.pending.length - max);
    }
    this.flushing ??= this.drain();
  }

  /** Resolves once every entry pushed so far is in Redis. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, 500);
        if (this.dropped > 0) {
          batch.unshift({ type: 'error', text: `${this.dropped} log entries dropped while Redis was unreachable`, ts: Date.now() });
          this.dropped = 0;
        }
        for (;;) {
          try {
            await this.logs.append(this.taskId, batch);
            break;
          } catch (error) {
            if (!isConnectionError(error)) {
              this.logger.error({ err: error, taskId: this.taskId, entries: batch.length }, 'Redis refused the log entries; dropped them');
              break;
            }
            this.logger.warn({ err: error, taskId: this.taskId }, 'appending log entries failed; retrying');
            await new Promise((r) => setTimeout(r, this.options.retryMs ?? 500));
          }
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
