import type { Logger } from '../log.js';
import type { LogEntryInput } from '../task.js';

/** Receives each log entry of a run; may be async (appending to Redis). */
export type EntryHandler = (entry: LogEntryInput) => void | Promise<void>;

/**
 * Delivers entries to a handler one at a time, in order, without ever making the reader wait: reading the
 * CLI's stdout must go on while a slow handler catches up, or the CLI would block on a full pipe. A handler
 * that fails is logged and the next entries are still delivered.
 */
export class EntryQueue {
  private tail: Promise<void> = Promise.resolve();
  private failures = 0;

  constructor(
    private readonly handler: EntryHandler | undefined,
    private readonly log: Logger,
  ) {}

  /** Queues an entry. */
  push(entry: LogEntryInput): void {
    const handler = this.handler;
    if (!handler) return;
    this.tail = this.tail
      .then(() => handler(entry))
      .catch((error: unknown) => {
        this.failures += 1;
        // One line per failure would flood the log when, say, Redis is down for the whole run.
        if (this.failures <= 3) this.log.warn({ err: error, entryType: entry.type }, 'onEntry failed; the entry is lost');
      });
  }

  /** Resolves once every queued entry has been handed over. */
  async drained(): Promise<void> {
    await this.tail;
    if (this.failures > 3) this.log.warn({ failures: this.failures }, 'onEntry failed for several entries');
  }
}
