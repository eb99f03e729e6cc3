import { describe, expect, it } from 'vitest';
import { decideScaling, type DomainLoad, type ScalingLimits } from '../../lib/orchestrator/scaling.js';

const limits: ScalingLimits = { tasksPerAgent: 1, minPerDomain: 0, maxPerDomain: 3, maxAgents: 8 };

/** A domain's load; anything not given is zero. */
const load = (domain: string, fields: Partial<Omit<DomainLoad, 'domain'>> = {}): DomainLoad => ({
  domain,
  waiting: 0,
  active: 0,
  live: 0,
  starting: 0,
  ...fields,
});

/** Just the spawns, by domain: what a reader of a scaling decision cares about. */
const spawns = (loads: DomainLoad[], overrides: Partial<ScalingLimits> = {}): Record<string, number> =>
  Object.fromEntries(decideScaling(loads, { ...limits, ...overrides }).map((d) => [d.domain, d.spawn]));

describe('decideScaling (DESIGN.md, A task\'s life, step 2)', () => {
  it('gives a waited-on domain (review) with work and no agent one agent even when the cap is reached', () => {
    const full = [load('backend', { active: 2, live: 2 }), load('review', { waiting: 2 })];
    expect(spawns(full, { maxAgents: 2 })).toEqual({ backend: 0, review: 0 });
    expect(spawns(full, { maxAgents: 2, waitedOn: ['review'] })).toEqual({ backend: 0, review: 1 });
    // Never beyond one, and not when it has an agent already.
    expect(spawns([load('backend', { active: 2, live: 2 }), load('review', { waiting: 2, live: 1 })], { maxAgents: 2, waitedOn: ['review'] })).toEqual({ backend: 0, review: 0 });
  });

  it('wants ceil((waiting + active) / tasksPerAgent) agents per domain', () => {
    expect(decideScaling([load('backend', { waiting: 1 })], limits)).toEqual([{ domain: 'backend', wanted: 1, present: 0, spawn: 1 }]);
    expect(decideScaling([load('backend', { waiting: 2, active: 1 })], limits)[0]).toMatchObject({ wanted: 3, spawn: 3 });
    expect(decideScaling([load('backend', { waiting: 3 })], { ...limits, tasksPerAgent: 2 })[0]).toMatchObject({ wanted: 2, spawn: 2 });
    expect(decideScaling([load('backend', { waiting: 4 })], { ...limits, tasksPerAgent: 2 })[0]).toMatchObject({ wanted: 2, spawn: 2 });
    expect(decideScaling([load('backend', { waiting: 5 })], { ...limits, tasksPerAgent: 2 })[0]).toMatchObject({ wanted: 3, spawn: 3 });
  });

  it('spawns nothing for a domain with no work and no minimum', () => {
    expect(decideScaling([load('backend')], limits)).toEqual([{ domain: 'backend', wanted: 0, present: 0, spawn: 0 }]);
  });

  it('treats a tasksPerAgent below 1 as 1', () => {
    expect(decideScaling([load('backend', { waiting: 2 })], { ...limits, tasksPerAgent: 0 })[0]).toMatchObject({ wanted: 2, spawn: 2 });
  });

  it('keeps minPerDomain agents even with no work', () => {
    expect(spawns([load('backend'), load('frontend', { live: 1 })], { minPerDomain: 2 })).toEqual({ backend: 2, frontend: 1 });
  });

  it('never wants more than maxPerDomain agents for a domain', () => {
    expect(decideScaling([load('backend', { waiting: 6 })], limits)[0]).toMatchObject({ wanted: 3, spawn: 3 });
    expect(decideScaling([load('backend', { waiting: 100 })], { ...limits, maxPerDomain: 1 })[0]).toMatchObject({ wanted: 1, spawn: 1 });
    expect(decideScaling([load('backend', { waiting: 100 })], { ...limits, maxPerDomain: 0 })[0]).toMatchObject({ wanted: 0, spawn: 0 });
  });

  it('counts live and starting agents as present, so a cycle never spawns twice for the same work', () => {
    expect(decideScaling([load('backend', { waiting: 3, live: 1 })], limits)[0]).toMatchObject({ present: 1, spawn: 2 });
    expect(decideScaling([load('backend', { waiting: 3, starting: 2 })], limits)[0]).toMatchObject({ present: 2, spawn: 1 });
    expect(decideScaling([load('backend', { waiting: 3, live: 1, starting: 2 })], limits)[0]).toMatchObject({ present: 3, spawn: 0 });
  });

  it('never stops anything: more agents than wanted is spawn 0, not a negative number', () => {
    expect(decideScaling([load('backend', { live: 5 })], limits)[0]).toEqual({ domain: 'backend', wanted: 0, present: 5, spawn: 0 });
    expect(decideScaling([load('backend', { waiting: 1, live: 2, starting: 2 })], limits)[0]).toMatchObject({ spawn: 0 });
  });

  it('never goes past the global cap, counting agents already present in every domain', () => {
    const loads = [load('backend', { waiting: 3 }), load('frontend', { waiting: 3 }), load('devops', { waiting: 3 })];
    const total = (overrides: Partial<ScalingLimits>, ls = loads) => decideScaling(ls, { ...limits, ...overrides }).reduce((s, d) => s + d.spawn, 0);
    expect(total({ maxAgents: 8 })).toBe(8);
    expect(total({ maxAgents: 4 })).toBe(4);
    expect(total({ maxAgents: 0 })).toBe(0);
    const busy = [load('backend', { waiting: 3, live: 2 }), load('frontend', { waiting: 3, starting: 1 }), load('devops', { waiting: 3 })];
    expect(total({ maxAgents: 5 }, busy)).toBe(2);
  });

  it('spawns nothing, and nothing negative, when more agents are present than the global cap allows', () => {
    const decisions = decideScaling([load('backend', { waiting: 5, live: 4 }), load('frontend', { waiting: 5, live: 4 })], { ...limits, maxPerDomain: 10, maxAgents: 3 });
    expect(decisions.map((d) => d.spawn)).toEqual([0, 0]);
  });

  it('hands a short global budget out fairly, one agent at a time, the busiest domain first', () => {
    const loads = [load('devops', { waiting: 1 }), load('frontend', { waiting: 2 }), load('backend', { waiting: 3 })];
    // Budget 1: the busiest domain gets it.
    expect(spawns(loads, { maxAgents: 1 })).toEqual({ devops: 0, frontend: 0, backend: 1 });
    // Budget 2: one each for the two busiest, rather than two for the busiest.
    expect(spawns(loads, { maxAgents: 2 })).toEqual({ devops: 0, frontend: 1, backend: 1 });
    // Budget 4: every domain gets one, then the busiest a second.
    expect(spawns(loads, { maxAgents: 4 })).toEqual({ devops: 1, frontend: 1, backend: 2 });
    // Budget 5: a domain that wants no more drops out of the round.
    expect(spawns(loads, { maxAgents: 5 })).toEqual({ devops: 1, frontend: 2, backend: 2 });
  });

  it('breaks ties between equally busy domains by name, so the decision is stable', () => {
    const loads = [load('frontend', { waiting: 2 }), load('backend', { waiting: 2 })];
    expect(spawns(loads, { maxAgents: 1 })).toEqual({ frontend: 0, backend: 1 });
    expect(spawns([...loads].reverse(), { maxAgents: 1 })).toEqual({ frontend: 0, backend: 1 });
  });

  it('keeps the order of the loads in its answer', () => {
    const loads = [load('zeta', { waiting: 1 }), load('alpha', { waiting: 5 })];
    expect(decideScaling(loads, limits).map((d) => d.domain)).toEqual(['zeta', 'alpha']);
  });

  it('returns nothing for no domains', () => {
    expect(decideScaling([], limits)).toEqual([]);
  });
});
