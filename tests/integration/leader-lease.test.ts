import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/log.js';
import { Bus, createRedis, Keys, type Redis } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { LeaderLease } from '../../lib/registry/index.js';
import type { AgentHandle, AgentSpec, Runtime } from '../../lib/runtime/index.js';
import { taskSpecSchema } from '../../lib/task.js';
import { eventually, uniqueNetwork } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';

// The leader lease can never overlap (issue 16, item 9): leadership is judged by a local deadline counted from
// when the renewal was sent, a renewal that hangs fails after a command timeout, and the leader checks the lease
// again before each spawn. Redis is paused for real (SIGSTOP of a redis-server of the test's own), not killed: a
// paused Redis keeps the connection open and answers nothing, which is what a partition or a frozen VM looks like.

describe('the leader lease', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function pausableRedis(): Promise<{ server: RedisServer; pause(): void; resume(): void }> {
    const server = await RedisServer.start();
    let paused = false;
    const resume = () => {
      if (paused) process.kill(server.pid!, 'SIGCONT');
      paused = false;
    };
    cleanups.push(async () => {
      resume();
      await server.stop();
    });
    return {
      server,
      pause: () => {
        process.kill(server.pid!, 'SIGSTOP');
        paused = true;
      },
      resume,
    };
  }

  function connection(url: string, name: string): Redis {
    const redis = createRedis(url, { name, commandTimeoutMs: 200 });
    redis.on('error', () => {});
    cleanups.push(() => redis.disconnect());
    return redis;
  }

  function lease(redis: Redis, keys: Keys, holder: string): LeaderLease {
    const l = new LeaderLease(redis, keys, holder, { ttlMs: 1000, renewMs: 200 });
    l.on('error', () => {});
    cleanups.push(() => l.stop());
    return l;
  }

  it('leads only until the deadline of its last renewal, counted from when it was sent', async () => {
    const { server } = await pausableRedis();
    let clock = 1_000_000;
    const l = new LeaderLease(connection(server.url(), 'lease-clock'), new Keys(`${uniqueNetwork('lease')}:`), 'o1', { ttlMs: 1000, driftMs: 100, now: () => clock });
    cleanups.push(() => l.stop());
    expect(await l.tryAcquire()).toBe(true);
    clock += 899;
    expect(l.isLeader).toBe(true);
    clock += 1; // sent at 1,000,000: the key may expire at 1,001,000 at the earliest; minus the drift margin
    expect(l.isLeader).toBe(false);
  });

  it('steps down while Redis is paused, before a standby can take over, and never overlaps with it', async () => {
    const redis = await pausableRedis();
    const keys = new Keys(`${uniqueNetwork('lease')}:`);
    const a = lease(connection(redis.server.url(), 'lease-a'), keys, 'a');
    const b = lease(connection(redis.server.url(), 'lease-b'), keys, 'b');
    const order: string[] = [];
    a.on('lost', () => order.push('a lost'));
    a.on('acquired', () => order.push(`a acquired${b.isLeader ? ' while b leads' : ''}`));
    b.on('acquired', () => order.push(`b acquired${a.isLeader ? ' while a leads' : ''}`));
    a.start();
    await eventually(() => a.isLeader, { what: 'a to lead' });
    b.start();
    await sleep(400); // b tries a couple of times and is refused
    redis.pause();
    await eventually(() => !a.isLeader, { what: 'a to step down while Redis is paused', timeoutMs: 10_000 });
    expect(b.isLeader).toBe(false);
    redis.resume();
    // Once Redis answers, whichever asks first after the key expired leads; never both.
    await eventually(() => a.isLeader || b.isLeader, { what: 'one of them to lead once Redis answers', timeoutMs: 10_000 });
    await sleep(600);
    expect(order.slice(0, 2)).toEqual(['a acquired', 'a lost']);
    expect(order.filter((o) => o.includes('while'))).toEqual([]);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
  });

  it('spawns nothing more once the lease lapsed during a spawn', async () => {
    const redis = await pausableRedis();
    const network = uniqueNetwork('lease');
    const config = loadConfig({
      REDIS_URL: redis.server.url(),
      DAN_NETWORK: network,
      DAN_HEARTBEAT_MS: '200',
      DAN_HEARTBEAT_TTL_MS: '1000',
      DAN_REAPER_MS: '3600000',
      DAN_MAX_AGENTS_PER_DOMAIN: '3',
      DAN_LOG_LEVEL: 'silent',
    });
    const bus = await Bus.connect(config, { name: 'lease-test' });
    cleanups.push(() => bus.close());
    for (let i = 0; i < 3; i++) await bus.submit(taskSpecSchema.parse({ domain: 'backend', description: `t${i}`, timeoutS: 60, maxAttempts: 3 }));

    // A runtime of the test's own (a seam dan owns): the first spawn is slow, and Redis is cut off meanwhile.
    const spawned: string[] = [];
    const runtime: Runtime = {
      kind: 'process',
      async spawn(spec: AgentSpec): Promise<AgentHandle> {
        spawned.push(spec.agentId);
        if (spawned.length === 1) {
          redis.pause();
          await sleep(1500); // longer than the lease's TTL
        }
        return { agentId: spec.agentId, role: 'domain', domain: spec.domain, runtime: 'process', name: spec.agentId, ref: '0', running: true };
      },
      stop: async () => {},
      remove: async () => {},
      output: async () => null,
      list: async () => [],
      logs: async () => '',
      close: async () => {},
    };
    // Its first cycle runs at once: it takes the lease and starts spawning for the three queued tasks.
    const orchestrator = await Orchestrator.start({ config, runtime, logger: silentLogger(), env: {}, id: 'lease-orchestrator' });
    cleanups.push(() => orchestrator.stop());
    try {
      await eventually(() => spawned.length > 0, { what: 'the first spawn' });
      await eventually(() => !orchestrator.isLeader, { what: 'the orchestrator to step down', timeoutMs: 10_000 });
      await sleep(1500); // the slow spawn returns; the cycle goes on to the next spawn, and must stop there
      expect(spawned).toHaveLength(1);
    } finally {
      redis.resume();
    }
  });
});
