import { describe, expect, it } from 'vitest';
import { agentPause, budgetReached, describeAccess, queuedWait, type AccessState } from '../../lib/access-state.js';

const now = Date.UTC(2030, 0, 1, 12, 0);
const state = (over: Partial<AccessState> = {}): AccessState => ({ now, pauses: [], limits: {}, spend: {}, spentUsd: 0, running: 0, ...over });
const pause = (scope: string, minutes: number, kind: 'usage_limit' | 'rate_limit' | 'unauthorized' = 'usage_limit') => ({ scope, untilMs: now + minutes * 60_000, kind, failures: 1, message: 'x' });

describe('what holds tasks, as the commands say it', () => {
  it('holds queued tasks for the budget only once today\'s spend reached it', () => {
    expect(budgetReached(state({ spentUsd: 4.99, limits: { dailyBudgetUsd: 5 } }))).toBe(false);
    expect(budgetReached(state({ spentUsd: 5, limits: { dailyBudgetUsd: 5 } }))).toBe(true);
    expect(budgetReached(state({ spentUsd: 500 }))).toBe(false);
    expect(queuedWait(state({ spentUsd: 5.5, limits: { dailyBudgetUsd: 5 } }))).toBe('budget: $5.50 of $5.00 spent today (DAN_DAILY_BUDGET_USD): queued tasks wait until 00:00 UTC or until it is raised');
  });

  it("names the network's pause for every queued task, a token's only for that token's agents", () => {
    expect(queuedWait(state({ pauses: [pause('token:0', 65)] }))).toBeUndefined();
    expect(queuedWait(state({ pauses: [pause('network', 65, 'rate_limit')] }))).toBe('paused until 13:05 UTC (rate limit)');
    const s = state({ pauses: [pause('token:0', 65), pause('network', 5, 'rate_limit')] });
    expect(agentPause(s, 0)?.scope).toBe('token:0');
    expect(agentPause(s, 1)?.scope).toBe('network');
    expect(agentPause(state({ pauses: [pause('token:0', 65)] }), 1)).toBeUndefined();
    expect(agentPause(state({ pauses: [pause('token:0', 65)] }), undefined)).toBeUndefined();
  });

  it("sums up the doctor's limits line", () => {
    expect(describeAccess(state({ spentUsd: 1.5, running: 2, limits: { maxRunning: 4, dailyBudgetUsd: 10 } }))).toEqual({
      holding: false,
      text: 'no pause; $1.50 spent today (daily budget $10.00); 2 CLIs running, at most 4 (DAN_MAX_RUNNING)',
    });
    expect(describeAccess(state({ pauses: [pause('token:1', 125), pause('token:2', 15, 'unauthorized')] }))).toEqual({
      holding: true,
      text: 'subscription token #1 paused until 14:05 UTC (usage limit); subscription token #2 is bad: the API rejected it (401), not used until 12:15 UTC',
    });
  });
});
