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

/** KEYS: the train, then one taken-mark per request; ARGV: the requests. Marks those still on the train. */
const TAKE = `
local taken = {}
for i = 1, #ARGV do
  if redis.call('LPOS', KEYS[1], ARGV[i]) then
    redis.call('SET', KEYS[i + 1], '1', 'EX', 3600)
    taken[#taken + 1] = i
  end
end
return taken`;

/** KEYS: the train, the request's taken-mark; ARGV: the request, whether the caller holds the lock. */
const WITHDRAW = `
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('DEL', KEYS[2])
return redis.call('LREM', KEYS[1], 1, ARGV[1])`;

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
    for (;;) {
      signal?.throwIfAborted();
      const lease = await this.tryAcquire(holder);
      if (lease) return lease;
      await this.pause();
    }
  }

  /** The lock if it is free now (renewed every third of its TTL while held), else undefined. */
  async tryAcquire(holder: string): Promise<MergeLease | undefined> {
    const token = `${holder} ${ulid()}`;
    if ((await this.scripts.acquireLease(this.keys.merge, token, this.options.ttlMs)) !== 1) return undefined;
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

  /** A waiter's pause between two tries: the poll interval, jittered so waiters do not try in step. */
  pause(): Promise<void> {
    const pollMs = this.options.pollMs ?? 50;
    return new Promise((resolve) => setTimeout(resolve, pollMs / 2 + Math.random() * pollMs));
  }

  /** Puts a merge request (JSON) on the train, for whoever holds the lock next. */
  async request(entry: string): Promise<void> {
    await this.redis.rpush(this.keys.mergeQueue, entry);
  }

  /** The first `limit` merge requests waiting, oldest first (left on the train until answered). */
  waiting(limit: number): Promise<string[]> {
    return this.redis.lrange(this.keys.mergeQueue, 0, limit - 1);
  }

  /**
   * Marks the requests the holder is about to merge as taken, those still on the train (in one script: a request
   * its agent took off just before is not merged), and returns their indexes. A taken request stays on the train
   * until answered, so a holder that dies leaves it for the next holder, which takes it again.
   */
  async take(requests: ReadonlyArray<{ entry: string; id: string }>): Promise<number[]> {
    if (requests.length === 0) return [];
    const keys = [this.keys.mergeQueue, ...requests.map((r) => this.keys.mergeTaken(r.id))];
    const taken = (await this.redis.eval(TAKE, keys.length, ...keys, ...requests.map((r) => r.entry))) as number[];
    return taken.map((i) => i - 1);
  }

  /**
   * Answers merge requests, each in one transaction with its removal from the train, so that a holder that
   * dies midway leaves every unanswered request for the next one. Answers outlive a requester that died by
   * an hour at most.
   */
  async answer(answers: ReadonlyArray<{ entry: string; id: string; answer: string }>): Promise<void> {
    if (answers.length === 0) return;
    const tx = this.redis.multi();
    for (const a of answers) tx.set(this.keys.mergeAnswer(a.id), a.answer, 'EX', 3600).lrem(this.keys.mergeQueue, 1, a.entry).del(this.keys.mergeTaken(a.id));
    await tx.exec();
  }

  /** The answer to request `id`, taken (deleted) when there is one. */
  async takeAnswer(id: string): Promise<string | null> {
    const [[, answer]] = (await this.redis.multi().get(this.keys.mergeAnswer(id)).del(this.keys.mergeAnswer(id)).exec()) as [[Error | null, string | null], unknown];
    return answer;
  }

  /** Drops an unreadable request from the train (holding the lock). */
  async drop(entry: string): Promise<void> {
    await this.redis.lrem(this.keys.mergeQueue, 1, entry);
  }

  /**
   * Takes a request off the train, unless a holder has taken it to merge (`taken`; then its answer is the truth):
   * `withdrawn`, `taken`, or `gone` (answered already). Holding the lock itself, a waiter passes `holding`: no
   * holder can be merging then, and a mark left by one that died does not count.
   */
  async withdraw(entry: string, id: string, holding = false): Promise<'withdrawn' | 'taken' | 'gone'> {
    const done = (await this.redis.eval(WITHDRAW, 2, this.keys.mergeQueue, this.keys.mergeTaken(id), entry, holding ? '1' : '0')) as number;
    return done === -1 ? 'taken' : done > 0 ? 'withdrawn' : 'gone';
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
