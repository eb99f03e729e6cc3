import { describePause } from './executor/limits.js';
import { pauseScopes, type NetworkLimits, type Pause, type RunGate } from './messaging/index.js';

/** Pauses, spend and limits as `dan agents`, `dan status`, `dan tasks` and `dan doctor` show them (issue 12). */
export interface AccessState {
  now: number;
  /** The pauses that last now. */
  pauses: Pause[];
  limits: NetworkLimits;
  /** Today's spend (UTC) by domain, in dollars. */
  spend: Record<string, number>;
  spentUsd: number;
  /** CLIs holding a running slot (a dead agent's is counted until the next admission frees it). */
  running: number;
}

/** Reads the state from Redis. */
export async function readAccessState(gate: RunGate): Promise<AccessState> {
  const [pauses, limits, spend, running] = await Promise.all([gate.pauses(), gate.limits(), gate.spendToday(), gate.running()]);
  const spentUsd = Object.values(spend).reduce((sum, usd) => sum + usd, 0);
  return { now: Date.now(), pauses, limits, spend, spentUsd, running: running.length };
}

/** Whether today's spend reached DAN_DAILY_BUDGET_USD. Pure. */
export const budgetReached = (state: AccessState): boolean => state.limits.dailyBudgetUsd !== undefined && state.spentUsd >= state.limits.dailyBudgetUsd;

/** "$1.20 of $1.00 spent today (DAN_DAILY_BUDGET_USD): waits until 00:00 UTC or until it is raised". Pure. */
export function describeBudget(state: AccessState): string {
  return `$${state.spentUsd.toFixed(2)} of $${state.limits.dailyBudgetUsd!.toFixed(2)} spent today (DAN_DAILY_BUDGET_USD): queued tasks wait until 00:00 UTC or until it is raised`;
}

/** Where a pause applies: `subscription token #0`, `the network`. Pure. */
export const pauseOwner = (scope: string): string => (scope === 'network' ? 'the network' : `subscription token #${scope.slice('token:'.length)}`);

/**
 * Why a queued task waits now, when something network-wide holds every task: the daily budget (`budget: …`) or
 * the network's pause. A token's pause holds only its agents: `dan agents` and `dan doctor` show it. Pure.
 */
export function queuedWait(state: AccessState): string | undefined {
  if (budgetReached(state)) return `budget: ${describeBudget(state)}`;
  const network = state.pauses.find((p) => p.scope === 'network');
  return network ? describePause(network.untilMs, network.kind) : undefined;
}

/** The pause that holds an agent on this subscription token (or none), the longest first. Pure. */
export function agentPause(state: AccessState, tokenIndex: number | undefined): Pause | undefined {
  const scopes = pauseScopes(tokenIndex);
  return state.pauses.filter((p) => scopes.includes(p.scope)).sort((a, b) => b.untilMs - a.untilMs)[0];
}

/** The lines of `dan doctor`'s limits check: what holds tasks now, else what is spent and running. Pure. */
export function describeAccess(state: AccessState): { holding: boolean; text: string } {
  const held = [
    ...state.pauses.map((p) =>
      p.kind === 'unauthorized'
        ? `${pauseOwner(p.scope)} is bad: the API rejected it (401), not used until ${new Date(p.untilMs).toISOString().slice(11, 16)} UTC`
        : `${pauseOwner(p.scope)} ${describePause(p.untilMs, p.kind)}`,
    ),
    ...(budgetReached(state) ? [`daily budget reached: ${describeBudget(state)}`] : []),
  ];
  if (held.length > 0) return { holding: true, text: held.join('; ') };
  const budget = state.limits.dailyBudgetUsd === undefined ? 'no daily budget' : `daily budget $${state.limits.dailyBudgetUsd.toFixed(2)}`;
  const cap = state.limits.maxRunning === undefined ? 'no DAN_MAX_RUNNING cap' : `at most ${state.limits.maxRunning} (DAN_MAX_RUNNING)`;
  return { holding: false, text: `no pause; $${state.spentUsd.toFixed(2)} spent today (${budget}); ${state.running} CLI${state.running === 1 ? '' : 's'} running, ${cap}` };
}
