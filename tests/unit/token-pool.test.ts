import { describe, expect, it } from 'vitest';
import { chooseToken } from '../../lib/orchestrator/token-pool.js';

describe('chooseToken: the least used subscription token with room', () => {
  it('fills tokens evenly, the lowest index first on a tie', () => {
    const counts = [0, 0];
    const order: number[] = [];
    for (let i = 0; i < 4; i++) {
      const index = chooseToken(counts, 2)!;
      order.push(index);
      counts[index]! += 1;
    }
    expect(order).toEqual([0, 1, 0, 1]);
    expect(chooseToken(counts, 2)).toBeUndefined();
  });

  it('skips tokens that are full or unavailable (paused, rejected)', () => {
    expect(chooseToken([1, 0, 2], 2)).toBe(1);
    expect(chooseToken([1, 0, 2], 2, new Set([1]))).toBe(0);
    expect(chooseToken([2, 2], 2)).toBeUndefined();
    expect(chooseToken([0], 1, new Set([0]))).toBeUndefined();
    expect(chooseToken([], 2)).toBeUndefined();
  });
});
