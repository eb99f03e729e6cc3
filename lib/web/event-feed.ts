import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import type { DanEvent } from '../task.js';

/** The SSE id of an event: its time first, so a reconnecting client's Last-Event-ID says where to resume. */
export const eventId = (e: DanEvent): string => `${e.ts}-${e.kind}-${e.id}-${e.status}`;

/** The time a Last-Event-ID names, or undefined when it is not one of ours. */
export function eventIdTime(id: string | undefined): number | undefined {
  const match = id === undefined ? null : /^(\d{1,15})-/.exec(id);
  return match ? Number(match[1]) : undefined;
}

export interface EventFeedOptions {
  /** How many of the newest tasks a resume looks through. @default 500 */
  resumeWindow?: number;
}

/**
 * The network's lifecycle events for every client of one web process, from one subscription of
 * `<prefix>events`. Pub/sub keeps no history, so a client that resumes (Last-Event-ID) gets the task events it
 * missed rebuilt from the task logs, where every transition is appended before it is published (DESIGN.md, A
 * task's life). Agent events are not kept anywhere: a resuming client reads the agents' state instead.
 */
export class EventFeed {
  private readonly listeners = new Set<(e: DanEvent) => void>();
  private started: Promise<void> | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: EventFeedOptions = {},
  ) {}

  /** Subscribes (once) and calls `listener` for every event from now on; returns the unsubscribe function. */
  async subscribe(listener: (e: DanEvent) => void): Promise<() => void> {
    this.started ??= this.start();
    await this.started;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async start(): Promise<void> {
    const events = this.bus.events();
    events.on('event', (e) => {
      for (const listener of this.listeners) listener(e);
    });
    events.on('invalid', (channel, message, why) => this.logger.warn({ channel, why, message: message.slice(0, 200) }, 'malformed event ignored'));
    await events.subscribeEvents();
  }

  /** Task events at or after `since` (ms), oldest first, rebuilt from the status entries of recent tasks' logs. */
  async taskEventsSince(since: number): Promise<DanEvent[]> {
    const ids = await this.bus.tasks.recentIds(this.options.resumeWindow ?? 500);
    const records = (await this.bus.tasks.getMany(ids, () => {})).filter((r) => r.updatedAt >= since);
    const out: DanEvent[] = [];
    for (const record of records) {
      for (const { entry } of await this.bus.logs.history(record.id, { last: 200 })) {
        if (entry.type !== 'status' || !entry.status || entry.ts < since) continue;
        out.push({ kind: 'task', id: record.id, domain: record.domain, status: entry.status, agent: entry.agent, reason: entry.text, ts: entry.ts });
      }
    }
    return out.sort((a, b) => a.ts - b.ts); // stable: a task's own events keep their order
  }
}
