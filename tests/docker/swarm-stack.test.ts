import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bus } from '../../lib/messaging/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { deleteNetworkKeys, testConfig, uniqueNetwork } from '../helpers/network.js';
import { ensureSwarm, leaveSwarm } from '../helpers/swarm.js';

// deploy/stack.yml (issue 14): `docker stack deploy` on a single-node Swarm (made here when the engine is in none,
// and left only then) brings up Redis and the orchestrator (DAN_RUNTIME=swarm) with their secrets as Swarm secrets;
// the orchestrator registers in Redis; `docker stack rm` leaves no service, network or secret of the stack.

const run = promisify(execFile);
const BASE_IMAGE = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const REDIS_IMAGE = process.env.DAN_REDIS_IMAGE ?? 'dan-airgap/redis:7';
const PASSWORD = randomBytes(24).toString('hex');
const network = uniqueNetwork('stack');
const stack = network;
const docker: Docker = createDockerClient();
let didInit = false;
let secretsDir: string;
let env: NodeJS.ProcessEnv;
let redisPort: number;
let bus: Bus | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const stackLabel = { label: [`com.docker.stack.namespace=${stack}`] };
const leftovers = async () => ({
  services: (await docker.listServices({ filters: stackLabel })).map((s) => s.Spec?.Name),
  secrets: (await docker.listSecrets({ filters: stackLabel })).map((s) => s.Spec?.Name),
  networks: (await docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network).map((n) => n.Name),
});

beforeAll(async () => {
  didInit = ensureSwarm();
  await ensureTestAgentImage(docker, BASE_IMAGE);
  secretsDir = await mkdtemp(path.join(os.tmpdir(), 'dan-stack-secrets-'));
  await writeFile(path.join(secretsDir, 'redis-password'), `${PASSWORD}\n`, { mode: 0o600 });
  await writeFile(path.join(secretsDir, 'secrets.json'), `${JSON.stringify({ REDIS_URL: `redis://:${PASSWORD}@redis:6379` })}\n`, { mode: 0o600 });
  redisPort = await freePort();
  const { stdout: node } = await run('docker', ['node', 'inspect', 'self', '--format', '{{.Description.Hostname}}']);
  env = {
    ...process.env,
    DAN_NETWORK: network,
    DAN_AGENT_IMAGE: TEST_AGENT_IMAGE,
    DAN_REDIS_IMAGE: REDIS_IMAGE,
    DAN_REDIS_PORT: String(redisPort),
    DAN_REDIS_NODE: node.trim(),
    DOCKER_GID: String((await stat('/var/run/docker.sock')).gid),
    DAN_SECRETS_DIR: secretsDir,
  };
}, 600_000);

afterAll(async () => {
  if (bus) {
    await deleteNetworkKeys(`redis://:${PASSWORD}@127.0.0.1:${redisPort}`, `${network}:`).catch(() => {});
    await bus.close();
  }
  await run('docker', ['stack', 'rm', stack], { env }).catch(() => undefined);
  await eventually(async () => (await leftovers()).networks.length === 0, { timeoutMs: 120_000, intervalMs: 1000, what: 'the stack network to go' }).catch(() => undefined);
  // Volumes outlive `docker stack rm` on purpose (Redis's data); the test's go.
  for (const volume of [`${stack}_redis-data`, `${network}-workspace`]) {
    await eventually(() => docker.getVolume(volume).remove().then(() => true, (error: { statusCode?: number }) => (error.statusCode === 404 ? true : Promise.reject(error))), {
      timeoutMs: 60_000,
      intervalMs: 1000,
      what: `volume ${volume} to be removable`,
    }).catch((error: unknown) => console.warn(`[stack test] ${(error as Error).message}`));
  }
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  leaveSwarm(didInit);
}, 300_000);

describe('deploy/stack.yml', { timeout: 400_000 }, () => {
  it('deploys Redis and an orchestrator that registers, with no credential in either service spec', async () => {
    await run('docker', ['stack', 'deploy', '-c', path.join(repoRoot(), 'deploy', 'stack.yml'), stack], { env });
    const config = testConfig(network, { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${redisPort}` });
    bus = await eventually(() => Bus.connect(config, { name: `test-${network}` }), { timeoutMs: 180_000, intervalMs: 1000, what: 'Redis of the stack to answer' });
    const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: 30_000 });
    const main = await eventually(async () => (await registry.list()).find((a) => a.role === 'main' && a.alive), {
      timeoutMs: 180_000,
      intervalMs: 1000,
      what: 'the orchestrator to register',
    });
    expect(main.role).toBe('main');
    for (const service of await docker.listServices({ filters: stackLabel })) {
      expect(JSON.stringify(service.Spec).includes(PASSWORD), service.Spec?.Name).toBe(false);
    }
    expect((await leftovers()).secrets.sort()).toEqual([`${stack}_dan_redis_password`, `${stack}_dan_secrets`]);
  });

  it('dan down, then docker stack rm, leaves no service, network or secret of the stack', async () => {
    const config = testConfig(network, { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${redisPort}`, DAN_AGENT_REDIS_URL: `redis://:${PASSWORD}@redis:6379` });
    // An agent service on the network, as the orchestrator spawns them: `dan down` must remove it first. A real
    // agent: Swarm acts on the image's health check, which wants a dan process.
    const { SwarmRuntime } = await import('../../lib/runtime/index.js');
    const { installationId } = await import('../../lib/messaging/index.js');
    const swarm = await SwarmRuntime.create({ ...config, images: { ...config.images, agent: TEST_AGENT_IMAGE } }, {
      installation: await installationId(bus!.redis, bus!.keys),
      prepareWorkspace: false,
    });
    await swarm.spawn({ agentId: 'backend-stacktest', role: 'domain', domain: 'backend', env: {} });
    await bus?.close();
    bus = undefined;
    const down = await runDan(['down'], { REDIS_URL: config.redisUrl, DAN_NETWORK: network, DAN_RUNTIME: 'swarm' });
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(await swarm.list()).toEqual([]);
    await run('docker', ['stack', 'rm', stack], { env });
    const left = await eventually(async () => {
      const now = await leftovers();
      return now.services.length + now.secrets.length + now.networks.length === 0 ? now : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000, what: 'the stack to be gone' });
    expect(left).toEqual({ services: [], secrets: [], networks: [] });
    expect(await docker.listSecrets({ filters: { label: [`dan.network=${network}`] } })).toEqual([]);
  });
});
