import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Keys } from '../messaging/keys.js';
import { Scripts } from '../messaging/scripts.js';

export interface LeaderLeaseOptions {
  /** Lease time to live. A standby takes over at most this long after the leader dies. */
  ttlMs: number;
  /** How often to try to take or renew the lease. @default ttlMs / 3 */
  renewMs?: number;
}

/**
 * The orchestrator lease `<prefix>leader` (SET NX PX, renewed by a compare-and-extend script). Emits
 * 'acquired' when this holder becomes leader and 'lost' when it stops being one (renewal refused or failed
 * for longer than the TTL). Only the leader scales and reaps.
 */
export class LeaderLease extends EventEmitter<{ acquired: []; lost: [string]; error: [Error] }> {
  private readonly scripts: Scripts;
  private timer: NodeJS.Timeout | undefined;
  private leader = false;
  private lastRenewed = 0;
  private stopped = false;
  /** Counts stop() calls, so an attempt that was on the wire when stop() came knows not to lead. */
  private stops = 0;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    readonly holderId: string,
    private readonly options: LeaderLeaseOptions,
  ) {
    super();
    this.scripts = new Scripts(redis);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Tries once: takes or renews the lease. */
  async tryAcquire(): Promise<boolean> {
    const stops = this.stops;
    let held = false;
    try {
      held = (await this.scripts.acquireLease(this.keys.leader, this.holderId, this.options.ttlMs)) === 1;
      if (this.stops !== stops) {
        // stop() came while this attempt was on the wire: hand back what it took instead of leading.
        if (held) await this.scripts.releaseLease(this.keys.leader, this.holderId).catch(() => {});
        return false;
      }
    } catch (error) {
      this.emit('error', error as Error);
      // Without Redis we cannot renew: once the TTL has passed, another may lead.
      if (this.leader && Date.now() - this.lastRenewed >= this.options.ttlMs) this.setLeader(false, 'lease could not be renewed');
      return this.leader;
    }
    if (held) this.lastRenewed = Date.now();
    this.setLeader(held, 'another orchestrator holds the lease');
    return held;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    const renewMs = this.options.renewMs ?? Math.max(50, Math.floor(this.options.ttlMs / 3));
    const loop = async (): Promise<void> => {
      await this.tryAcquire();
      if (!this.stopped) this.timer = setTimeout(() => void loop(), renewMs);
    };
    // tryAcquire() reports a failed attempt as 'error' and never rejects, so neither does loop().
    void loop();
  }

  /** Stops renewing and hands the lease back, so a standby takes over at once. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stops++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.leader) {
      this.leader = false;
      await this.scripts.releaseLease(this.keys.leader, this.holderId).catch(() => {});
    }
  }

  private setLeader(held: boolean, reason: string): void {
    if (held === this.leader) return;
    this.leader = held;
    if (held) this.emit('acquired');
    else this.emit('lost', reason);
  }
}
