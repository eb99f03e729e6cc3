import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentRegistry } from '../../lib/registry/index.js';
import { runDan } from '../helpers/cli.js';
import type { DanProcess } from '../helpers/dan-process.js';
import { eventually } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';
import { audit, report, statuses, submitTasks, waitAllTerminal, waitQueuesEmpty } from './harness.js';
import { StandInNetwork } from './stand-in-network.js';

// Redis itself SIGKILLed mid-run and started again on its append-only file (appendfsync everysec, as `dan up`
// runs it). Everything else is a real process that nobody restarts: `dan orchestrator` (this test's child) and
// the `dan agent` processes it spawns. They must reconnect on their own, and every task must still end.

const TIMINGS = {
  DAN_HEARTBEAT_MS: '500',
  // Longer than the outage, so a live agent is not taken for dead just because Redis was away.
  DAN_HEARTBEAT_TTL_MS: '5000',
  DAN_REAPER_MS: '500',
  DAN_IDLE_TIMEOUT_MS: '60000',
  DAN_SHUTDOWN_GRACE_MS: '1000',
};
const ORCHESTRATOR = 'orchestrator-redis-chaos';

describe('Redis SIGKILLed and restarted mid-run', () => {
  let redis: RedisServer;
  let network: StandInNetwork;
  let orchestrator: DanProcess;

  beforeAll(async () => {
    redis = await RedisServer.start({ appendOnly: true });
    network = await StandInNetwork.open({
      label: 'chaos-redis',
      workspace: { minMs: 100, maxMs: 400 },
      settings: { ...TIMINGS, DAN_MAX_AGENTS: '6', DAN_MAX_AGENTS_PER_DOMAIN: '2' },
      redisUrl: redis.url(),
    });
    network.redis.on('error', () => {}); // the test's own connection sees the outage too; it reconnects
    orchestrator = network.start(['orchestrator'], { AGENT_ID: ORCHESTRATOR });
  });

  afterAll(async () => {
    await network?.close({ graceMs: 15_000 });
    await redis?.stop();
  });

  it('every process reconnects by itself and every task still ends', async () => {
    const { bus, ws } = network;
    const before = await submitTasks(bus, 60);
    // Crash once work is well under way, on records written long enough ago to be on disk.
    await eventually(async () => (await statuses(bus.redis, bus.keys.prefix, before)).filter((s) => s === 'completed').length >= 12, {
      what: 'the first tasks to complete',
      timeoutMs: 90_000,
      intervalMs: 200,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\norchestrator:\n${orchestrator.tail()}`);
    });
    const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: 5000 });
    const agentsBefore = new Set((await registry.list()).filter((a) => a.role === 'domain').map((a) => a.id));
    await sleep(1200); // everything up to here is older than one appendfsync interval

    await redis.kill();
    const crashedAt = Date.now();
    await sleep(1000);
    await redis.restart();
    const restartedAt = Date.now();

    // More work after the restart, through the test's own connection (it reconnected too).
    const after = await submitTasks(bus, 30, { label: 'after-restart' });
    const ids = [...before, ...after];
    try {
      await waitAllTerminal(bus, ids, 180_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\norchestrator:\n${orchestrator.tail()}`);
    }
    await waitQueuesEmpty(bus);
    const result = await audit(bus, ids);
    expect(result.problems).toEqual([]);

    // The orchestrator never exited and leads again; agents that were running before the crash finished
    // tasks after it: their connections came back by themselves.
    expect(orchestrator.running).toBe(true);
    await eventually(async () => (await bus.redis.get(bus.keys.leader)) === ORCHESTRATOR, { what: 'the orchestrator to lead again', timeoutMs: 30_000 });
    const finishedAfter = (await bus.tasks.getMany(ids)).filter((r) => (r.finishedAt ?? 0) > restartedAt && r.status === 'completed');
    const survivors = new Set(finishedAfter.map((r) => r.agent).filter((a): a is string => a !== undefined && agentsBefore.has(a)));
    expect(survivors.size).toBeGreaterThan(0);

    // `dan` as a user runs it answers against the restarted server.
    const tasks = await runDan(['tasks', '-n', '5'], { REDIS_URL: redis.url(), DAN_NETWORK: network.net.network, DAN_LOG_LEVEL: 'silent' });
    expect(tasks.exitCode).toBe(0);

    // The outage is in the orchestrator's log as JSON lines, not as raw error dumps between them.
    expect(orchestrator.lines.filter((l) => !l.startsWith('{')), 'non-JSON lines on the orchestrator\'s output').toEqual([]);
    const duplicates = await ws.duplicates();
    const reconnects = orchestrator.json().filter((l) => typeof l.msg === 'string' && /redis|lease|heartbeat/i.test(l.msg) && l.level === 40).length;
    report('redis SIGKILL + restart', {
      tasks: ids.length,
      ...result.byStatus,
      outageMs: restartedAt - crashedAt,
      agentsBeforeCrash: agentsBefore.size,
      agentsThatWorkedOn: survivors.size,
      orchestratorWarnings: reconnects,
      ranTwiceOrMore: duplicates.size,
    });
  }, 300_000);
});
