import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Keys } from '../messaging/keys.js';
import { Scripts } from '../messaging/scripts.js';

export interface LeaderLeaseOptions {
  /** Lease time to live. A standby takes over at most this long after the leader dies. */
  ttlMs: number;
  /** How often to try to take or renew the lease. @default ttlMs / 3 */
  renewMs?: number;
  /**
   * Taken off the local deadline for clock drift between this process and Redis (and timer lateness).
   * @default max(20 ms, ttlMs / 10)
   */
  driftMs?: number;
  /** The local clock. @default Date.now */
  now?: () => number;
}

/**
 * The orchestrator lease `<prefix>leader` (SET NX PX, renewed by a compare-and-extend script). Emits
 * 'acquired' when this holder becomes leader and 'lost' when it stops being one. Only the leader scales and reaps.
 *
 * Leadership is judged locally, never from a reply alone: each successful take or renewal sets a deadline of the
 * time the request was *sent* plus the TTL minus a drift margin (Redis may have started the TTL any time after the
 * send, never before), and `isLeader` is false from that deadline on, whether or not a renewal is still on the
 * wire. A renewal that hangs (Redis paused, a partition) therefore ends leadership before the key can expire and a
 * standby take over. Give the lease a connection with a command timeout (`createRedis(…, { commandTimeoutMs })`),
 * so that a hung renewal also fails and the loop tries again.
 */
export class LeaderLease extends EventEmitter<{ acquired: []; lost: [string]; error: [Error] }> {
  private readonly scripts: Scripts;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private leader = false;
  /** Local time until which this holder may act as leader. */
  private deadline = 0;
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
    this.now = options.now ?? Date.now;
  }

  private get driftMs(): number {
    return this.options.driftMs ?? Math.max(20, Math.floor(this.options.ttlMs / 10));
  }

  /** Whether this holder leads now: it holds the lease and its local deadline has not passed. */
  get isLeader(): boolean {
    return this.checkDeadline();
  }

  private checkDeadline(): boolean {
    if (this.leader && this.now() >= this.deadline) this.setLeader(false, 'lease not renewed before its local deadline');
    return this.leader;
  }

  /** Tries once: takes or renews the lease. */
  async tryAcquire(): Promise<boolean> {
    const stops = this.stops;
    const sentAt = this.now();
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
      // Without Redis we cannot renew: we lead only until the deadline of the last renewal.
      return this.checkDeadline();
    }
    if (!held) {
      this.setLeader(false, 'another orchestrator holds the lease');
      return false;
    }
    const deadline = sentAt + this.options.ttlMs - this.driftMs;
    if (deadline <= this.now()) {
      // The reply came so late that the lease may already be someone else's: do not lead on it.
      this.setLeader(false, 'lease renewal answered too late');
      return false;
    }
    this.deadline = deadline;
    this.setLeader(true, '');
    this.armExpiry();
    return true;
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
    if (this.expiry) clearTimeout(this.expiry);
    this.timer = undefined;
    this.expiry = undefined;
    if (this.leader) {
      this.leader = false;
      await this.scripts.releaseLease(this.keys.leader, this.holderId).catch(() => {});
    }
  }

  /** Says 'lost' at the deadline even when nobody asks `isLeader` and the renewal is still hanging. */
  private armExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.checkDeadline(), Math.max(0, this.deadline - this.now()) + 1);
    this.expiry.unref();
  }

  private setLeader(held: boolean, reason: string): void {
    if (held === this.leader) return;
    this.leader = held;
    if (held) this.emit('acquired');
    else this.emit('lost', reason);
  }
}
