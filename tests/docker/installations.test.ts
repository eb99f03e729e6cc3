import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DanConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/log.js';
import { Bus, installationId } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { DockerRuntime, LABELS, createDockerClient, type AgentSpec, type Docker } from '../../lib/runtime/index.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { containerExists, removeDanNetwork } from '../helpers/docker.js';
import { deleteNetworkKeys, eventually, testConfig, uniqueNetwork } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';

// Issue 16, item 4: two installations on one host that both chose the same network name (each with its own
// Redis) must never list, stop, reap or remove each other's containers. Real Docker engine, real Redis servers.
// The containers run the base image with `sleep`: what is under test is which containers a runtime acts on.

const image = process.env.DAN_TEST_IMAGE ?? process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const network = uniqueNetwork('inst');
const docker: Docker = createDockerClient();
const settings = { DAN_RUNTIME: 'docker', DAN_AGENT_MEMORY_MB: '128', DAN_AGENT_CPUS: '0.25', DAN_MIN_AGENTS_PER_DOMAIN: '0' };

interface Installation {
  config: DanConfig;
  bus: Bus;
  id: string;
  runtime: DockerRuntime;
}

let otherRedis: RedisServer;
let a: Installation;
let b: Installation;

const spec = (agentId: string): AgentSpec => ({ agentId, role: 'domain', domain: 'backend', env: {} });

async function install(config: DanConfig): Promise<Installation> {
  const bus = await Bus.connect(config, { name: 'installations-test' });
  const id = await installationId(bus.redis, bus.keys);
  const runtime = await DockerRuntime.create(config, { installation: id, image, cmd: ['sleep', '300'] });
  return { config, bus, id, runtime };
}

async function isRunning(ref: string): Promise<boolean> {
  return (await docker.getContainer(ref).inspect()).State.Running;
}

beforeAll(async () => {
  if (!(await docker.getImage(image).inspect().then(() => true, () => false))) {
    execFileSync(path.join(repoRoot(), 'scripts/airgap-images.sh'), ['--base-only'], { env: { ...process.env, DAN_BASE_IMAGE: image }, stdio: 'inherit' });
  }
  otherRedis = await RedisServer.start();
  a = await install(testConfig(network, settings));
  b = await install(testConfig(network, { ...settings, REDIS_URL: otherRedis.url() }));
}, 300_000);

afterAll(async () => {
  for (const inst of [a, b]) {
    await inst?.runtime.close();
    if (inst) await deleteNetworkKeys(inst.config.redisUrl, inst.config.prefix).catch(() => undefined);
    await inst?.bus.close();
  }
  await removeDanNetwork(docker, network);
  await otherRedis?.stop();
}, 120_000);

describe('two installations with the same network name on one host', { timeout: 180_000 }, () => {
  it('get an id each, made once in their own Redis', async () => {
    expect(a.id).not.toBe(b.id);
    expect(await installationId(a.bus.redis, a.bus.keys)).toBe(a.id);
    expect(await a.bus.redis.get(`${network}:installation`)).toBe(a.id);
  });

  it("never list, stop, reap or remove each other's containers; dan down removes only its own", async () => {
    const theirs = await b.runtime.spawn(spec('b-running'));
    const theirsExited = await b.runtime.spawn(spec('b-exited'));
    await docker.getContainer(theirsExited.ref).kill();
    const ours = await a.runtime.spawn(spec('a-orphan'));
    expect((await docker.getContainer(theirs.ref).inspect()).Config.Labels).toMatchObject({ [LABELS.network]: network, [LABELS.installation]: b.id });

    // list: each sees only its own, though both carry dan.network=<network>.
    expect((await a.runtime.list()).map((h) => h.agentId)).toEqual(['a-orphan']);
    expect((await b.runtime.list()).map((h) => h.agentId).sort()).toEqual(['b-exited', 'b-running']);
    // stop / remove by the other's agent id: a no-op.
    await a.runtime.stop('b-running', { timeoutMs: 1000 });
    await a.runtime.remove('b-exited');
    expect(await isRunning(theirs.ref)).toBe(true);
    expect(await containerExists(docker, theirsExited.ref)).toBe(true);

    // The leader's cleanup: A's orphan (never registered) is removed; B's running and exited containers, which
    // A's registry does not know either, are not.
    const orchestrator = await Orchestrator.start({ config: a.config, runtime: a.runtime, logger: silentLogger(), env: {}, startupTimeoutMs: 500 });
    try {
      await eventually(async () => !(await containerExists(docker, ours.ref)), { what: "A's reaper to remove its orphan", timeoutMs: 60_000 });
    } finally {
      await orchestrator.stop('stopped');
    }
    expect(await isRunning(theirs.ref)).toBe(true);
    expect(await containerExists(docker, theirsExited.ref)).toBe(true);

    // dan down of A (the real CLI): removes A's container, not B's.
    const again = await a.runtime.spawn(spec('a-again'));
    const down = await runDan(['down', '--timeout', '2000'], { REDIS_URL: a.config.redisUrl, DAN_NETWORK: network, DAN_RUNTIME: 'docker', DAN_AGENT_IMAGE: image });
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(String(down.stdout)).toContain('removed 1 container');
    expect(await containerExists(docker, again.ref)).toBe(false);
    expect(await isRunning(theirs.ref)).toBe(true);
    expect(await containerExists(docker, theirsExited.ref)).toBe(true);

    // B's own runtime still acts on them.
    expect(await b.runtime.stopAll({ timeoutMs: 1000 })).toBe(2);
    expect(await containerExists(docker, theirs.ref)).toBe(false);
  });
});
