import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentRegistry } from '../../lib/registry/index.js';
import { eventually } from '../helpers/network.js';
import { killQuietly } from '../helpers/processes.js';
import { audit, report, statuses, submitTasks, waitAllTerminal, waitQueuesEmpty } from './harness.js';
import { StandInNetwork } from './stand-in-network.js';

// Two `dan orchestrator` processes on one network: the leader is SIGKILLed mid-run. The standby must take the
// lease within one lease TTL (plus its renewal interval), and between them nothing may be reaped twice or
// spawned beyond the limits (which is what two orchestrators acting at once would do).

const TTL_MS = 2000;
const PER_DOMAIN = 2;
const TIMINGS = {
  DAN_HEARTBEAT_MS: '300',
  DAN_HEARTBEAT_TTL_MS: String(TTL_MS), // also the leader lease's TTL
  DAN_REAPER_MS: '300',
  DAN_IDLE_TIMEOUT_MS: '60000',
  DAN_SHUTDOWN_GRACE_MS: '1000',
};

interface LogLine {
  msg?: string;
  time?: number;
  agentId?: string;
}

describe('the leader orchestrator killed mid-run', () => {
  let network: StandInNetwork;

  beforeAll(async () => {
    network = await StandInNetwork.open({
      label: 'chaos-leader',
      workspace: { minMs: 100, maxMs: 400 },
      settings: { ...TIMINGS, DAN_MAX_AGENTS: '6', DAN_MAX_AGENTS_PER_DOMAIN: String(PER_DOMAIN) },
    });
  });

  afterAll(async () => {
    await network?.close({ down: true, graceMs: 10_000 });
  });

  it('the standby takes over within one lease TTL; nothing is reaped twice or spawned beyond the limits', async () => {
    const { net, ws } = network;
    const a = network.start(['orchestrator'], { AGENT_ID: 'orchestrator-a' });
    await eventually(async () => (await net.redis.get(net.bus.keys.leader)) === 'orchestrator-a', { what: 'A to lead', timeoutMs: 30_000 });
    const b = network.start(['orchestrator'], { AGENT_ID: 'orchestrator-b' });
    const registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: TTL_MS });
    await eventually(async () => (await registry.ids()).includes('orchestrator-b'), { what: 'B to register', timeoutMs: 30_000 });

    const ids = await submitTasks(net.bus, 90);
    // Sample the registry all along: more live agents in a domain than its limit means two spawned for it.
    const most = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const live = (await registry.list()).filter((x) => x.role === 'domain' && x.alive);
        for (const domain of new Set(live.map((x) => x.domain))) {
          most.set(domain, Math.max(most.get(domain) ?? 0, live.filter((x) => x.domain === domain).length));
        }
        await sleep(150);
      }
    })();

    // Kill A once it is busy and every agent it spawned has registered (a process runtime knows only its own
    // children, so one still starting when A dies is invisible to B until it registers).
    await eventually(
      async () => {
        const done = (await statuses(net.redis, net.config.prefix, ids)).filter((s) => s === 'completed').length;
        const spawned = (a.logged('spawned an agent') as LogLine[]).map((l) => l.agentId!);
        const registered = new Set(await registry.ids());
        return done >= 15 && spawned.length > 0 && spawned.every((id) => registered.has(id));
      },
      { what: 'A to be busy with registered agents', timeoutMs: 90_000, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nA:\n${a.tail()}`);
    });
    // One agent dies with the leader: its reaping falls to B.
    const victim = (await registry.list()).find((x) => x.role === 'domain' && x.alive && x.pid);
    a.kill('SIGKILL');
    const killedAt = Date.now();
    if (victim?.pid) killQuietly(victim.pid);
    await eventually(async () => (await net.redis.get(net.bus.keys.leader)) === 'orchestrator-b', {
      what: 'B to take the lease',
      timeoutMs: 30_000,
      intervalMs: 25,
    });
    const takeoverMs = Date.now() - killedAt;
    await a.exited;

    try {
      await waitAllTerminal(net.bus, ids, 180_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nB:\n${b.tail()}`);
    } finally {
      sampling = false;
      await sampler;
    }
    await waitQueuesEmpty(net.bus);
    const result = await audit(net.bus, ids);
    expect(result.problems).toEqual([]);
    if (victim) {
      await eventually(async () => (await net.redis.hget(net.bus.keys.agent(victim.id), 'status')) === 'dead', { what: 'the killed agent to be reaped', timeoutMs: 30_000 });
    }

    // Takeover: the lease outlives its holder by at most one TTL, and B tries every TTL/3. Generous margin.
    expect(takeoverMs).toBeLessThan(TTL_MS + TTL_MS / 3 + 2000);

    const aLines = a.json() as LogLine[];
    const bLines = b.json() as LogLine[];
    const spawns = [...aLines, ...bLines].filter((l) => l.msg === 'spawned an agent').map((l) => l.agentId!);
    const reaps = [...aLines, ...bLines].filter((l) => l.msg === 'reaped a dead agent').map((l) => l.agentId!);
    expect(new Set(spawns).size).toBe(spawns.length);
    expect(new Set(reaps).size).toBe(reaps.length);
    if (victim) expect(reaps).toContain(victim.id);
    // B acted only after it led: nothing spawned or reaped by the standby while A held the lease.
    const bLedAt = bLines.find((l) => l.msg === 'leader: scaling and reaping')?.time;
    expect(bLedAt).toBeGreaterThanOrEqual(killedAt - 50);
    for (const l of bLines.filter((x) => x.msg === 'spawned an agent' || x.msg === 'reaped a dead agent')) expect(l.time).toBeGreaterThanOrEqual(bLedAt!);
    expect(aLines.some((l) => l.msg === 'leader: scaling and reaping')).toBe(true);
    for (const [domain, n] of most) expect(n, `live agents of ${domain} at once`).toBeLessThanOrEqual(PER_DOMAIN);

    report('leader SIGKILL', {
      tasks: ids.length,
      ...result.byStatus,
      takeoverMs,
      leaseTtlMs: TTL_MS,
      spawnedByA: aLines.filter((l) => l.msg === 'spawned an agent').length,
      spawnedByB: bLines.filter((l) => l.msg === 'spawned an agent').length,
      reapedByB: bLines.filter((l) => l.msg === 'reaped a dead agent').length,
      mostLivePerDomain: Object.fromEntries(most),
      ranTwiceOrMore: (await ws.duplicates()).size,
    });
  }, 300_000);
});
