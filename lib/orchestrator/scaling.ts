/** The scaler's decision, a pure function (DESIGN.md, A task's life, step 2). */

export interface DomainLoad {
  domain: string;
  /** Tasks waiting on the domain's queue. */
  waiting: number;
  /** Tasks taken by an agent (or stalled, awaiting the stalled-job check). */
  active: number;
  /** Registered agents with a live heartbeat. */
  live: number;
  /** Agents started but not registered yet. */
  starting: number;
}

export interface ScalingLimits {
  /** Tasks one agent runs at once. */
  tasksPerAgent: number;
  minPerDomain: number;
  maxPerDomain: number;
  /** Cap on all running domain agents. */
  maxAgents: number;
  /**
   * Domains other agents wait on (the review domain: authors wait for their gates' verdicts). One of them with
   * work and no agent gets one even beyond the cap, or a network full of waiting authors would never move.
   */
  waitedOn?: readonly string[];
}

export interface ScalingDecision {
  domain: string;
  wanted: number;
  present: number;
  spawn: number;
}

/**
 * Per domain, wanted = ceil((waiting + active) / tasksPerAgent), at least `minPerDomain` and at most
 * `maxPerDomain`; spawns what is missing, within the global cap, the busiest domains first. Scaling down is
 * the agents' own idle timeout, so the decision never stops anything.
 */
export function decideScaling(loads: readonly DomainLoad[], limits: ScalingLimits): ScalingDecision[] {
  const perAgent = Math.max(1, limits.tasksPerAgent);
  const decisions = loads.map((load) => {
    const demand = Math.ceil((load.waiting + load.active) / perAgent);
    const wanted = Math.min(limits.maxPerDomain, Math.max(limits.minPerDomain, demand));
    const present = load.live + load.starting;
    return { domain: load.domain, wanted, present, spawn: Math.max(0, wanted - present), waiting: load.waiting };
  });
  let budget = limits.maxAgents - decisions.reduce((sum, d) => sum + d.present, 0);
  const order = [...decisions].sort((a, b) => b.waiting - a.waiting || a.domain.localeCompare(b.domain));
  // Hand the global budget out one agent at a time, round-robin over the busiest first, so one busy
  // domain cannot starve the others.
  const granted = new Map(order.map((d) => [d.domain, 0]));
  let progress = true;
  while (budget > 0 && progress) {
    progress = false;
    for (const d of order) {
      if (budget > 0 && granted.get(d.domain)! < d.spawn) {
        granted.set(d.domain, granted.get(d.domain)! + 1);
        budget -= 1;
        progress = true;
      }
    }
  }
  for (const d of decisions) {
    if (limits.waitedOn?.includes(d.domain) && d.present === 0 && d.waiting > 0 && granted.get(d.domain) === 0) granted.set(d.domain, 1);
  }
  return decisions.map(({ domain, wanted, present }) => ({ domain, wanted, present, spawn: granted.get(domain)! }));
}
