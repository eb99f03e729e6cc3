import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MergeLock } from '../../lib/messaging/index.js';
import { openNetwork, type TestNetwork } from '../helpers/network.js';

/**
 * The merge train's queue in Redis (lib/messaging/merge-lock.ts): a request its agent takes off is never merged,
 * and one a holder has taken to merge is never taken off from under it; a holder that died leaves its marks for
 * the next. The agents' side of it runs in git-workspace.test.ts.
 */
let net: TestNetwork;
let lock: MergeLock;
const request = (id: string) => ({ id, entry: JSON.stringify({ id, branch: `dan/${id}` }) });

beforeEach(async () => {
  net = await openNetwork({}, 'train');
  lock = new MergeLock(net.redis, net.bus.keys, { ttlMs: 10_000 });
});

afterEach(async () => {
  await net.cleanup();
});

describe('the merge train queue', () => {
  it('a request taken off before a holder takes the train is not merged', async () => {
    const [a, b] = [request('A'), request('B')];
    for (const r of [a, b]) await lock.request(r.entry);
    expect(await lock.withdraw(a.entry, a.id)).toBe('withdrawn');
    const waiting = await lock.waiting(16);
    expect(waiting).toEqual([b.entry]);
    // A holder that read the train before the withdrawal takes only what is still on it.
    expect(await lock.take([a, b])).toEqual([1]);
  });

  it('a request a holder has taken cannot be taken off by its agent until answered; holding the lock, it can', async () => {
    const a = request('A');
    await lock.request(a.entry);
    expect(await lock.take([a])).toEqual([0]);
    expect(await lock.withdraw(a.entry, a.id)).toBe('taken');
    expect(await lock.waiting(16)).toEqual([a.entry]);
    // The holder died: its mark is left. The agent holding the lock itself knows nobody is merging.
    expect(await lock.withdraw(a.entry, a.id, true)).toBe('withdrawn');
    expect(await lock.waiting(16)).toEqual([]);
  });

  it('an answer removes the request and its mark in one step, and is taken once', async () => {
    const a = request('A');
    await lock.request(a.entry);
    await lock.take([a]);
    await lock.answer([{ entry: a.entry, id: a.id, answer: '{"state":"lost"}' }]);
    expect(await lock.waiting(16)).toEqual([]);
    expect(await net.redis.exists(net.bus.keys.mergeTaken(a.id))).toBe(0);
    expect(await lock.withdraw(a.entry, a.id)).toBe('gone');
    expect(await lock.takeAnswer(a.id)).toBe('{"state":"lost"}');
    expect(await lock.takeAnswer(a.id)).toBeNull();
  });
});
