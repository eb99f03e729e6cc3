import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { controlMessageSchema, eventSchema, type ControlMessage, type DanEvent } from '../task.js';
import { describeZodError } from '../errors.js';
import type { Keys } from './keys.js';

/**
 * Pub/sub: lifecycle events on `<prefix>events` and per-agent control channels `<prefix>control:<agent>`.
 * Messages are parsed with the schema that wrote them; a malformed one is reported as 'invalid', never thrown.
 */
export class EventBus extends EventEmitter<{
  event: [DanEvent];
  control: [ControlMessage, string];
  /** channel, message, why, and what it was meant to be */
  invalid: [string, string, string, 'event' | 'control message'];
}> {
  private subscribed = new Set<string>();
  private listening = false;

  /**
   * @param publisher a normal connection
   * @param subscriber a connection of its own, used only for SUBSCRIBE; the bus owns it and closes it
   */
  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly keys: Keys,
  ) {
    super();
    // Without a listener ioredis prints every failed reconnect raw on stderr, in the middle of the JSON log.
    // The subscriber reconnects and resubscribes by itself; the same outage is reported by the owner of the
    // publisher connection (the same server), so this one's copies of it are dropped.
    subscriber.on('error', () => {});
  }

  async publishControl(agentId: string, message: ControlMessage): Promise<number> {
    return this.publisher.publish(this.keys.control(agentId), JSON.stringify(controlMessageSchema.parse(message)));
  }

  async publishEvent(event: DanEvent): Promise<number> {
    return this.publisher.publish(this.keys.events, JSON.stringify(eventSchema.parse(event)));
  }

  /** Starts receiving lifecycle events as 'event'. */
  async subscribeEvents(): Promise<void> {
    await this.subscribe(this.keys.events);
  }

  /** Starts receiving an agent's control messages as 'control'. */
  async subscribeControl(agentId: string): Promise<void> {
    await this.subscribe(this.keys.control(agentId));
  }

  private async subscribe(channel: string): Promise<void> {
    if (!this.listening) {
      this.listening = true;
      this.subscriber.on('message', (ch: string, message: string) => this.dispatch(ch, message));
    }
    if (this.subscribed.has(channel)) return;
    await this.subscriber.subscribe(channel);
    this.subscribed.add(channel);
  }

  private dispatch(channel: string, message: string): void {
    const isEvent = channel === this.keys.events;
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      this.emit('invalid', channel, message, 'not JSON', isEvent ? 'event' : 'control message');
      return;
    }
    if (isEvent) {
      const parsed = eventSchema.safeParse(json);
      if (parsed.success) this.emit('event', parsed.data);
      else this.emit('invalid', channel, message, describeZodError(parsed.error), 'event');
      return;
    }
    const parsed = controlMessageSchema.safeParse(json);
    if (parsed.success) this.emit('control', parsed.data, channel.slice(this.keys.control('').length));
    else this.emit('invalid', channel, message, describeZodError(parsed.error), 'control message');
  }

  async close(): Promise<void> {
    if (this.subscribed.size > 0) {
      const channels = [...this.subscribed];
      this.subscribed.clear();
      await this.subscriber.unsubscribe(...channels).catch(() => {});
    }
    this.subscriber.disconnect();
    this.removeAllListeners();
  }
}
