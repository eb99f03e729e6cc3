import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Bus, type Redis } from '../../lib/messaging/index.js';
import { AgentRegistry, Heartbeat, LeaderLease, Reaper, type AgentRecord, type RegisterInput } from '../../lib/registry/index.js';
import { releaseAgentTasks } from '../../lib/orchestrator/index.js';
import { taskSpecSchema, type DanEvent } from '../../lib/task.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';

// The test network's timing (tests/helpers/network.ts): heartbeat every 200 ms, TTL 1000 ms.
let net: TestNetwork;
let registry: AgentRegistry;
const stoppers: Array<() => unknown> = [];
const extraBuses: Bus[] = [];

beforeEach(async () => {
  net = await openNetwork({}, 'reg');
  registry = registryOn(net.redis);
});

afterEach(async () => {
  for (const stop of stoppers.splice(0)) await stop();
  for (const bus of extraBuses.splice(0)) await bus.close();
  await net.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function registryOn(redis: Redis, ttlMs = net.config.heartbeatTtlMs): AgentRegistry {
  return new AgentRegistry(redis, net.bus.keys, { heartbeatTtlMs: ttlMs });
}

/** Another process's connection to the same network. */
async function otherConnection(name: string): Promise<Redis> {
  const bus = await Bus.connect(net.config, { name: `${net.network}-${name}` });
  extraBuses.push(bus);
  return bus.redis;
}

const agent = (id: string, domain = 'backend'): RegisterInput => ({ id, role: 'domain', domain, runtime: 'process', ref: `pid:${id}`, host: 'test' });

function heartbeatFor(id: string, reg = registry): Heartbeat {
  const hb = new Heartbeat(reg, id, { intervalMs: net.config.heartbeatMs });
  stoppers.push(() => hb.stop());
  hb.start();
  return hb;
}

function lease(redis: Redis, holder: string, options: { ttlMs: number; renewMs?: number }): LeaderLease {
  const l = new LeaderLease(redis, net.bus.keys, holder, options);
  stoppers.push(() => l.stop());
  return l;
}

async function expiredIncludes(...ids: string[]): Promise<boolean> {
  const expired = await registry.expired();
  return ids.every((id) => expired.includes(id));
}

describe('agent registry', () => {
  it('lists a registered agent as alive, with its record, and announces it', async () => {
    const events: DanEvent[] = [];
    net.bus.events().on('event', (e) => events.push(e));
    await net.bus.events().subscribeEvents();

    await registry.register({ ...agent('a1'), pid: 4242 });
    expect(await registry.ids()).toEqual(['a1']);
    const [record] = await registry.list();
    expect(record).toMatchObject({ id: 'a1', role: 'domain', domain: 'backend', runtime: 'process', ref: 'pid:a1', pid: 4242, status: 'idle', alive: true, taskIds: [] });
    expect(await registry.expired()).toEqual([]);
    await eventually(() => events.length === 1, { what: 'the registered event' });
    expect(events[0]).toMatchObject({ kind: 'agent', id: 'a1', domain: 'backend', status: 'registered' });
  });

  it('records what an agent is doing', async () => {
    await registry.register(agent('a1'));
    await registry.setState('a1', 'busy', ['T1', 'T2'], 4);
    expect(await registry.get('a1')).toMatchObject({ status: 'busy', taskIds: ['T1', 'T2'], tasksDone: 4 });
  });

  it('keeps a heartbeating agent alive well past its TTL', async () => {
    await registry.register(agent('a1'));
    heartbeatFor('a1');
    const until = Date.now() + 3 * net.config.heartbeatTtlMs;
    while (Date.now() < until) {
      expect(await registry.expired()).toEqual([]);
      expect((await registry.get('a1'))?.alive).toBe(true);
      await sleep(250);
    }
  });

  it('lists an agent that stopped heartbeating as expired once its TTL has passed', async () => {
    await registry.register(agent('a1'));
    await registry.register(agent('a2'));
    const hb1 = heartbeatFor('a1');
    heartbeatFor('a2');
    await sleep(net.config.heartbeatMs * 2);
    hb1.stop(); // the process froze or died: no more renewals

    await eventually(() => expiredIncludes('a1'), { timeoutMs: 15_000, what: 'a1 to expire' });
    expect(await registry.expired()).toEqual(['a1']);
    const byId = Object.fromEntries((await registry.list()).map((a) => [a.id, a.alive]));
    expect(byId).toEqual({ a1: false, a2: true });
  });

  it('removes a deregistered agent from the live set and keeps its record as stopped', async () => {
    await registry.register(agent('a1'));
    await registry.deregister('a1', 'backend');

    expect(await registry.ids()).toEqual([]);
    expect(await registry.list()).toEqual([]);
    expect(await registry.expired()).toEqual([]);
    expect(await net.redis.exists(net.bus.keys.heartbeat('a1'))).toBe(0);
    const hash = await net.redis.hgetall(net.bus.keys.agent('a1'));
    expect(hash).toMatchObject({ id: 'a1', status: 'stopped', tasks: '' });
    expect(await net.redis.ttl(net.bus.keys.agent('a1'))).toBeGreaterThan(0);
    // A stopped agent is not reaped, and may not come back by heartbeating.
    expect(await new Reaper(registry).reapOnce()).toEqual([]);
    expect(await registry.heartbeat('a1')).toBe(false);
  });
});

describe('reaper', () => {
  it('reaps each dead agent once and hands it to every handler once, in order', async () => {
    const events: DanEvent[] = [];
    net.bus.events().on('event', (e) => events.push(e));
    await net.bus.events().subscribeEvents();
    for (const id of ['dead1', 'dead2', 'alive']) await registry.register(agent(id));
    await registry.setState('dead1', 'busy', ['T1']);
    heartbeatFor('alive');
    await eventually(() => expiredIncludes('dead1', 'dead2'), { timeoutMs: 15_000, what: 'two agents to expire' });

    const calls: string[] = [];
    const reaper = new Reaper(registry)
      .onReap(async (a) => {
        calls.push(`free tasks of ${a.id}: ${a.taskIds.join(',') || '-'}`);
      })
      .onReap(async (a) => {
        calls.push(`remove ${a.id} (${a.status})`);
      });
    const reaped = await reaper.reapOnce();

    expect(reaped.map((a) => a.id).sort()).toEqual(['dead1', 'dead2']);
    expect(calls.sort()).toEqual(['free tasks of dead1: T1', 'free tasks of dead2: -', 'remove dead1 (dead)', 'remove dead2 (dead)']);
    expect(calls.indexOf('free tasks of dead1: T1')).toBeLessThan(calls.indexOf('remove dead1 (dead)'));
    expect(await reaper.reapOnce()).toEqual([]);
    expect(calls).toHaveLength(4);

    expect(await registry.ids()).toEqual(['alive']);
    expect(await net.redis.hget(net.bus.keys.agent('dead1'), 'status')).toBe('dead');
    expect(await net.redis.ttl(net.bus.keys.agent('dead1'))).toBeGreaterThan(0);
    await eventually(() => events.filter((e) => e.status === 'dead').length === 2, { what: 'two dead events' });
  });

  it('reports a failing handler and still runs the others', async () => {
    await registry.register(agent('a1'));
    await eventually(() => expiredIncludes('a1'), { timeoutMs: 15_000, what: 'a1 to expire' });
    const errors: Array<[string, string]> = [];
    const ran: string[] = [];
    const reaper = new Reaper(registry, (error, a) => errors.push([error.message, a.id]))
      .onReap(async () => {
        throw new Error('container already gone');
      })
      .onReap(async (a) => {
        ran.push(a.id);
      });
    expect((await reaper.reapOnce()).map((a) => a.id)).toEqual(['a1']);
    expect(errors).toEqual([['container already gone', 'a1']]);
    expect(ran).toEqual(['a1']);
  });

  it("finishes a reap that did not finish: the agent's tasks are released by the next cycle, of this reaper or another", async () => {
    const { id: taskId } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'held', timeoutS: 60, maxAttempts: 3 }));
    await registry.register(agent('a1'));
    await registry.setState('a1', 'busy', [taskId]);
    await net.bus.tasks.transition(taskId, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1' } });
    await eventually(() => expiredIncludes('a1'), { timeoutMs: 15_000, what: 'a1 to expire' });
    // The first reaper reaps a1, then fails before its tasks are released (Redis refused, or it died there).
    const first = new Reaper(registry, () => {}, { resumeAfterMs: 0 }).onReap(async () => {
      throw new Error('died between the reap and the release');
    });
    expect((await first.reapOnce()).map((a) => a.id)).toEqual(['a1']);
    expect(await registry.ids()).toEqual([]);
    expect(await net.bus.tasks.get(taskId)).toMatchObject({ status: 'active', agent: 'a1' });

    // Another reaper (a new leader) resumes it: the agent is not live any more, but its release is still due.
    const resumed: boolean[] = [];
    const second = new Reaper(registryOn(await otherConnection('second')), () => {}, { resumeAfterMs: 0 }).onReap(async (a, again) => {
      resumed.push(again);
      await releaseAgentTasks(net.bus, a, 'died');
    });
    expect(await second.reapOnce()).toEqual([]);
    expect(resumed).toEqual([true]);
    expect(await net.bus.tasks.get(taskId)).toMatchObject({ status: 'queued', attempts: 1 });
    // Done once is done: the next cycle has nothing to resume.
    await second.reapOnce();
    expect(resumed).toEqual([true]);
    expect(await net.redis.scard(net.bus.keys.toRelease)).toBe(0);
  });

  it('acts on each dead agent exactly once when reapers on separate connections race', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) await registry.register(agent(id, i % 2 === 0 ? 'backend' : 'frontend'));
    await eventually(() => expiredIncludes(...ids), { timeoutMs: 15_000, what: 'every agent to expire' });

    const handled: Array<[string, string]> = [];
    const reapers = await Promise.all(
      ['r1', 'r2', 'r3'].map(async (name) =>
        new Reaper(registryOn(await otherConnection(name))).onReap(async (a) => {
          handled.push([a.id, name]);
          await new Promise((r) => setImmediate(r)); // let the other reapers run in between
        }),
      ),
    );
    const results = await Promise.all(reapers.map((r) => r.reapOnce()));

    const reapedIds = results.flat().map((a: AgentRecord) => a.id);
    expect(reapedIds.sort()).toEqual(ids);
    expect(handled.map(([id]) => id).sort()).toEqual(ids);
    expect(await registry.ids()).toEqual([]);
  });
});

describe('heartbeat of a reaped agent', () => {
  it('returns false, does not revive the agent, and the Heartbeat emits "reaped" once', async () => {
    await registry.register(agent('a1'));
    await eventually(() => expiredIncludes('a1'), { timeoutMs: 15_000, what: 'a1 to expire' });
    expect((await new Reaper(registry).reapOnce()).map((a) => a.id)).toEqual(['a1']);

    expect(await registry.heartbeat('a1')).toBe(false);
    expect(await net.redis.exists(net.bus.keys.heartbeat('a1'))).toBe(0);
    expect(await registry.ids()).toEqual([]);

    const hb = heartbeatFor('a1');
    let reapedEvents = 0;
    hb.on('reaped', () => reapedEvents++);
    await eventually(() => reapedEvents === 1, { what: "the 'reaped' event" });
    await sleep(net.config.heartbeatMs * 3);
    expect(reapedEvents).toBe(1);
    expect(hb.isReaped).toBe(true);
  });

  it('returns true for an agent that is alive', async () => {
    await registry.register(agent('a1'));
    expect(await registry.heartbeat('a1')).toBe(true);
    expect(await net.redis.pttl(net.bus.keys.heartbeat('a1'))).toBeGreaterThan(0);
  });
});

describe('the health file (DAN_HEALTH_FILE)', () => {
  it('is rewritten on every successful renewal, and no longer once the agent is reaped', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-health-'));
    stoppers.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'alive');
    await registry.register(agent('a1'));
    const hb = new Heartbeat(registry, 'a1', { intervalMs: net.config.heartbeatMs, healthFile: file });
    stoppers.push(() => hb.stop());
    hb.start();

    const stamps = new Set<string>();
    await eventually(async () => stamps.add(await readFile(file, 'utf8').catch(() => '')).size >= 4, { what: 'three renewals to rewrite the file' });
    const latest = Number((await readFile(file, 'utf8')).trim());
    expect(Date.now() - latest).toBeLessThan(net.config.heartbeatTtlMs * 10);

    // Reaped: the renewals fail, so the file ages and a HEALTHCHECK on it fails.
    await net.redis.del(net.bus.keys.heartbeat('a1'));
    await new Reaper(registry).reapOnce();
    await eventually(() => hb.isReaped, { what: 'the heartbeat to learn it was reaped' });
    const last = await readFile(file, 'utf8');
    await sleep(net.config.heartbeatMs * 3);
    expect(await readFile(file, 'utf8')).toBe(last);
  });
});

describe('leader lease', () => {
  it('elects exactly one leader among two candidates', async () => {
    const [ra, rb] = [await otherConnection('cand-a'), await otherConnection('cand-b')];
    const a = lease(ra, 'orch-a', { ttlMs: 3000 });
    const b = lease(rb, 'orch-b', { ttlMs: 3000 });
    a.start();
    b.start();
    await eventually(() => a.isLeader || b.isLeader, { what: 'a leader' });
    for (let i = 0; i < 15; i++) {
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      expect(await net.redis.get(net.bus.keys.leader)).toBe(a.isLeader ? 'orch-a' : 'orch-b');
      await sleep(100);
    }
  });

  it('lets the standby take over within about one TTL once the leader stops renewing', async () => {
    const ttlMs = 2000;
    // A leader that took the lease and then died: it never renews and never releases.
    const dead = lease(await otherConnection('dead-leader'), 'orch-dead', { ttlMs });
    expect(await dead.tryAcquire()).toBe(true);

    const standby = lease(await otherConnection('standby'), 'orch-standby', { ttlMs });
    let acquired = 0;
    standby.on('acquired', () => acquired++);
    expect(await standby.tryAcquire()).toBe(false);
    standby.start();

    await eventually(() => standby.isLeader, { timeoutMs: 10 * ttlMs, what: 'the standby to lead' });
    expect(acquired).toBe(1);
    expect(await net.redis.get(net.bus.keys.leader)).toBe('orch-standby');
  });

  it('hands over at once on release, long before the TTL would lapse', async () => {
    const ttlMs = 60_000;
    const a = lease(await otherConnection('cand-a'), 'orch-a', { ttlMs, renewMs: 100 });
    const b = lease(await otherConnection('cand-b'), 'orch-b', { ttlMs, renewMs: 100 });
    a.start();
    await eventually(() => a.isLeader, { what: 'a to lead' });
    b.start();
    await sleep(300);
    expect(b.isLeader).toBe(false);

    await a.stop();
    await a.stop(); // safe twice
    expect(a.isLeader).toBe(false);
    await eventually(() => b.isLeader, { timeoutMs: 10_000, what: 'b to lead after the release' });
    expect(await net.redis.get(net.bus.keys.leader)).toBe('orch-b');
  });

  it('does not lead, nor keep the lease, once stopped, even if it was stopped while taking it', async () => {
    const ttlMs = 60_000;
    const quitter = lease(await otherConnection('quitter'), 'orch-quitter', { ttlMs });
    const acquired: string[] = [];
    quitter.on('acquired', () => acquired.push('acquired'));
    quitter.start(); // its first attempt is on the wire …
    await quitter.stop(); // … when it is told to stop
    await sleep(200);

    expect(quitter.isLeader).toBe(false);
    expect(acquired).toEqual([]);
    // So a standby takes over at once rather than a TTL later.
    const standby = lease(await otherConnection('standby'), 'orch-standby', { ttlMs });
    expect(await standby.tryAcquire()).toBe(true);
  });

  it("emits 'lost' when another holder has taken the lease", async () => {
    const ttlMs = 300;
    // A leader that paused (a long GC, a frozen container) past its TTL.
    const paused = lease(await otherConnection('paused'), 'orch-paused', { ttlMs });
    const lost: string[] = [];
    paused.on('lost', (reason) => lost.push(reason));
    expect(await paused.tryAcquire()).toBe(true);
    expect(paused.isLeader).toBe(true);

    const other = lease(await otherConnection('other'), 'orch-other', { ttlMs: 60_000 });
    await eventually(() => other.tryAcquire(), { timeoutMs: 10_000, what: 'the other to take the lapsed lease' });

    expect(await paused.tryAcquire()).toBe(false);
    expect(paused.isLeader).toBe(false);
    // It stepped down by its own deadline, before the key could expire and the other take it.
    expect(lost).toEqual(['lease not renewed before its local deadline']);
    expect(await net.redis.get(net.bus.keys.leader)).toBe('orch-other');
  });
});
