import type { Redis } from 'ioredis';
import { ulid } from 'ulid';
import type { Keys } from './keys.js';
import { Scripts } from './scripts.js';

export interface MergeLockOptions {
  /** How long a holder that stops renewing keeps the lock. */
  ttlMs: number;
  /** How often a waiter tries again. @default 50 */
  pollMs?: number;
}

/** A held merge lock; `release()` may be called twice. */
export interface MergeLease {
  /** The lock's value: the holder and a token unique to this acquisition (the fence). */
  readonly token: string;
  /** Whether the lock is still this lease's (false once it lapsed and another took it). */
  held(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * The network's merge lock `<prefix>merge` (DESIGN.md, Workspaces): one merge into the integration branch at a
 * time across every agent. The value names the holder and a token unique to the acquisition; renewal and
 * release compare it, so a holder whose lock lapsed can neither extend nor free its successor's. Beside it,
 * `<prefix>merge:pending` keeps the merge in flight, for a successor to finish or undo.
 */
export class MergeLock {
  private readonly scripts: Scripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: MergeLockOptions,
  ) {
    this.scripts = new Scripts(redis);
  }

  /** Waits for the lock (renewed every third of its TTL while held) until it is ours or `signal` aborts. */
  async acquire(holder: string, signal?: AbortSignal): Promise<MergeLease> {
    const token = `${holder} ${ulid()}`;
    const pollMs = this.options.pollMs ?? 50;
    for (;;) {
      signal?.throwIfAborted();
      if ((await this.scripts.acquireLease(this.keys.merge, token, this.options.ttlMs)) === 1) break;
      await new Promise((resolve) => setTimeout(resolve, pollMs + Math.random() * pollMs));
    }
    const renewal = setInterval(() => {
      // A failed renewal is seen by held() before the step that needs the lock.
      this.scripts.acquireLease(this.keys.merge, token, this.options.ttlMs).catch(() => undefined);
    }, Math.max(10, Math.floor(this.options.ttlMs / 3)));
    renewal.unref();
    let released = false;
    return {
      token,
      held: async () => (await this.redis.get(this.keys.merge)) === token,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renewal);
        await this.scripts.releaseLease(this.keys.merge, token);
      },
    };
  }

  /** Who holds the lock now, if anyone. */
  holder(): Promise<string | null> {
    return this.redis.get(this.keys.merge);
  }

  /** The merge in flight, as its writer stored it (JSON), if any. */
  pending(): Promise<string | null> {
    return this.redis.get(this.keys.mergePending);
  }

  async setPending(json: string): Promise<void> {
    await this.redis.set(this.keys.mergePending, json);
  }

  async clearPending(): Promise<void> {
    await this.redis.del(this.keys.mergePending);
  }
}
