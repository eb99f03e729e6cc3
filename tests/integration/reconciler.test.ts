import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { createRedis } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { ProcessRuntime } from '../../lib/runtime/index.js';
import { newTaskId } from '../../lib/task.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { repoRoot } from '../helpers/cli.js';
import { eventually, testConfig } from '../helpers/network.js';
import { freePort, RedisServer } from '../helpers/redis-server.js';

// Every task heals, whatever failed (issue 16, item 6). Each fault is injected for real, in the agent's task path
// or between the two writes of a send, and the test asserts the task ends: the reconciler in the leader's cycle
// and the task path's catch-all put it back on its way.

const exec = promisify(execFile);

describe('a task whose path hits a fault still ends', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function harness(settings: Record<string, string> = {}, redisUrl?: string): Promise<AgentHarness> {
    const w = await AgentHarness.create('heal', settings, redisUrl);
    cleanups.push(() => w.close());
    return w;
  }

  /** A leader on the harness's network that spawns nothing (the test starts agents itself), its cycle every 200 ms. */
  async function leader(w: AgentHarness): Promise<Orchestrator> {
    const config = testConfig(w.net.network, { REDIS_URL: w.net.config.redisUrl, DAN_MAX_AGENTS: '0', DAN_HEARTBEAT_TTL_MS: w.net.config.heartbeatTtlMs.toString() });
    const runtime = await ProcessRuntime.create(config);
    const orchestrator = await Orchestrator.start({ config, runtime, logger: createLogger({ level: 'info', destination: w.logs }), env: {} });
    cleanups.push(async () => {
      await orchestrator.stop();
      await runtime.close();
    });
    return orchestrator;
  }

  it('a send killed between the record and the enqueue: the reconciler enqueues it again', async () => {
    const w = await harness();
    await leader(w);
    await w.startAgent();
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(repoRoot(), 'tests', 'fixtures', 'send-then-die.ts')], {
      cwd: repoRoot(),
      env: { PATH: process.env.PATH ?? '', REDIS_URL: w.net.config.redisUrl, DAN_NETWORK: w.net.network },
    }).catch((error: { stdout?: string; signal?: string }) => {
      expect(error.signal).toBe('SIGKILL');
      return { stdout: error.stdout ?? '' };
    });
    const id = stdout.trim();
    expect(await w.bus.queues.queue('backend').getJobState(id)).toBe('unknown');
    const done = await w.waitForEnd(id, 40_000);
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(w.logs.messages()).toContain('reconciler: a queued task had no job; enqueued it again');
  });

  it('a key of the wrong type (a dependency that is not a hash): the task ends failed, saying why', async () => {
    const w = await harness();
    await leader(w);
    await w.startAgent();
    const dependency = newTaskId();
    await w.bus.redis.set(w.bus.keys.task(dependency), 'not a hash');
    const task = await w.submit('uses a broken dependency', { dependsOn: [dependency], maxAttempts: 2 });
    const done = await w.waitForEnd(task.id, 40_000);
    // The pipeline fails a task whose stage throws, naming the stage (a Redis error reply included).
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/WRONGTYPE/);
  });

  it('commands denied by ACL while the task runs: the agent leaves, and the task is released and ends', async () => {
    // The agent's Redis user loses EVAL/EVALSHA mid-run: its result script and its hand-back are refused.
    const user = `dan-heal-acl-${newTaskId().slice(-8).toLowerCase()}`;
    const admin = createRedis(testConfig('unused').redisUrl, { name: 'acl-admin' });
    cleanups.push(async () => {
      await admin.acl('DELUSER', user);
      admin.disconnect();
    });
    await admin.acl('SETUSER', user, 'on', '>agent-pass', '~*', '&*', '+@all');
    const w = await harness();
    await leader(w);
    const url = new URL(w.net.config.redisUrl);
    url.username = user;
    url.password = 'agent-pass';
    const open = w.gate();
    await w.startAgent('backend-acl', { REDIS_URL: url.toString() });
    const task = await w.submit('finished by an agent whose user loses its scripts');
    await w.modelCalled();
    await admin.acl('SETUSER', user, '-eval', '-evalsha');
    open();
    await eventually(() => w.logs.messages().includes('could not hand the task back either; this agent leaves so that its task is released'), {
      what: 'the agent to fail its result and its hand-back',
      timeoutMs: 30_000,
    });
    await w.startAgent('backend-admin');
    const done = await w.waitForEnd(task.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
  });

  it('Redis made read-only (REPLICAOF) while the task runs: the task ends once Redis takes writes again', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.stop());
    const w = await harness({ DAN_HEARTBEAT_TTL_MS: '3000' }, server.url());
    await leader(w);
    const open = w.gate();
    await w.startAgent('backend-first');
    const task = await w.submit('finishes while Redis is read-only');
    await w.modelCalled();
    const control = createRedis(server.url(), { name: 'replicaof' });
    cleanups.push(() => control.disconnect());
    await control.replicaof('127.0.0.1', String(await freePort())); // a master that is not there: writes fail READONLY
    open();
    await eventually(() => w.logs.messages().includes('could not hand the task back either; this agent leaves so that its task is released'), {
      what: 'the agent to fail its result and its hand-back',
      timeoutMs: 30_000,
    });
    await sleep(500);
    await control.replicaof('NO', 'ONE');
    await w.startAgent('backend-second');
    const done = await w.waitForEnd(task.id, 60_000);
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(2);
  });
});
