import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { Bus, installationId, rolePassword } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { LABELS, SwarmRuntime, createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { isTerminal, taskSpecSchema } from '../../lib/task.js';
import { ModelServer, type TurnChooser } from '../fixtures/model-server.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage, removeContainers } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { LogCapture } from '../helpers/log-capture.js';
import { deleteNetworkKeys, testConfig, uniqueNetwork } from '../helpers/network.js';
import { ensureSwarm, gatewayAddress, leaveSwarm, removeSwarmNetwork } from '../helpers/swarm.js';
import { describeTask, waitForTask } from '../helpers/wait-for-task.js';

// The swarm runtime (issue 14): on a single-node Swarm (made here when the engine is in none, and left only then),
// the orchestrator spawns a domain agent as a Swarm service from the real agent image; it registers, runs a task
// with the real claude binary against the scripted model server, and is removed with its secret. No credential in
// the service's spec, the agent runs as uid 1000 and the CLI as 1001, which cannot read the secret file.

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const BASE_IMAGE = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const REDIS_IMAGE = process.env.DAN_REDIS_IMAGE ?? 'dan-airgap/redis:7';
const API_KEY = `sk-ant-api03-${randomBytes(24).toString('base64url')}-swarm`;
const ADMIN_PASSWORD = `admin-${randomBytes(16).toString('hex')}`;
const TEST_LABEL = 'dan.test';

const network = uniqueNetwork('swarm');
const docker: Docker = createDockerClient();
const logs = new LogCapture();
let didInit = false;
let workspace: string;
let server: ModelServer;
let redisContainer: { stop(): Promise<unknown> } | undefined;
let config: DanConfig;
let bus: Bus;
let runtime: SwarmRuntime;
let orchestrator: Orchestrator | undefined;
/** What the Bash tool printed, as the CLI sent it back to the model. */
const toolOutputs: string[] = [];

/** Who the CLI is, and whether it can read the agent's secrets file. */
const PROBE = `node -e 'const fs = require("fs"); let r; try { fs.readFileSync("/run/secrets/dan-agent-secrets"); r = "readable"; } catch (e) { r = e.code; } console.log("cli uid=" + process.getuid() + " secrets-file=" + r)'`;

const script: TurnChooser = (req) => {
  if (req.hasToolResult) {
    toolOutputs.push(...req.toolResults.map((r) => r.text));
    return { text: 'Probed.' };
  }
  return { text: 'Probing.', tools: [{ name: 'Bash', input: { command: PROBE, description: 'who am I' } }] };
};

async function startRedis(): Promise<{ hostUrl: string; agentUrl: string }> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const name = `${network}-redis`;
  const container = await new GenericContainer(REDIS_IMAGE)
    .withName(name)
    .withNetworkMode(network)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--requirepass', ADMIN_PASSWORD])
    .withLabels({ [TEST_LABEL]: network })
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  redisContainer = container;
  return { hostUrl: `redis://:${ADMIN_PASSWORD}@${container.getHost()}:${container.getMappedPort(6379)}`, agentUrl: `redis://:${ADMIN_PASSWORD}@${name}:6379` };
}

beforeAll(async () => {
  didInit = ensureSwarm();
  await ensureTestAgentImage(docker, BASE_IMAGE);
  workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-swarm-ws-'));
  await chown(workspace, 1000, 1000);
  await chmod(workspace, 0o775);
  // The overlay network first: the test's Redis container joins it (attachable), as the runtime would make it.
  await docker.createNetwork({ Name: network, Driver: 'overlay', Attachable: true, Labels: { [LABELS.network]: network } });
  const redis = await startRedis();
  server = await ModelServer.start({ script: (req) => script(req), host: '0.0.0.0' });
  config = testConfig(network, {
    REDIS_URL: redis.hostUrl,
    DAN_AGENT_REDIS_URL: redis.agentUrl,
    DAN_RUNTIME: 'swarm',
    DAN_AGENT_IMAGE: TEST_AGENT_IMAGE,
    DAN_WORKSPACE_VOLUME: workspace,
    DAN_AGENT_MEMORY_MB: '768',
    DAN_AGENT_CPUS: '0.75',
    DAN_HEARTBEAT_MS: '500',
    DAN_HEARTBEAT_TTL_MS: '3000',
    DAN_REAPER_MS: '300',
    DAN_IDLE_TIMEOUT_MS: '120000',
    DAN_SHUTDOWN_GRACE_MS: '500',
    DAN_PERMISSION_MODE: 'bypassPermissions',
    DAN_LOG_LEVEL: 'info',
  });
  bus = await Bus.connect(config, { name: `test-${network}` });
  const logger = createLogger({ level: 'info', destination: logs });
  runtime = await SwarmRuntime.create(config, { logger, installation: await installationId(bus.redis, bus.keys) });
  // Tasks on an overlay network reach this host at docker_gwbridge's gateway: Swarm has no host-gateway alias.
  const gateway = await gatewayAddress(docker);
  orchestrator = await Orchestrator.start({
    config,
    runtime,
    logger,
    id: `${network}-orch`,
    env: { ANTHROPIC_BASE_URL: `http://${gateway}:${new URL(server.url).port}`, ANTHROPIC_API_KEY: API_KEY, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
  });
}, 600_000);

afterAll(async () => {
  await orchestrator?.stop('down').catch(() => {});
  await server?.close();
  if (config) await deleteNetworkKeys(config.redisUrl, config.prefix).catch(() => {});
  await bus?.close();
  await redisContainer?.stop().catch(() => {});
  await removeContainers(docker, `${TEST_LABEL}=${network}`);
  await removeSwarmNetwork(docker, network).catch((error: unknown) => console.warn(`[swarm test] cleanup: ${(error as Error).message}`));
  if (workspace) await rm(workspace, { recursive: true, force: true });
  leaveSwarm(didInit);
}, 180_000);

const secretsOf = async () => docker.listSecrets({ filters: { label: [`${LABELS.network}=${network}`] } });

describe('the swarm runtime', { timeout: 400_000 }, () => {
  it('runs a domain agent as a Swarm service that registers and completes a task, with no credential in its spec', async () => {
    const task = await bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'Who am I?', timeoutS: 120, maxAttempts: 1 }));
    const done = await waitForTask(bus, task.id, (r) => isTerminal(r.status), {
      what: 'the task to end',
      timeoutMs: 300_000,
      context: async () => `${await describeTask(bus, task.id)}\n${logs.lines.slice(-20).join('\n')}\n${(await Promise.all((await runtime.list()).map((h) => runtime.logs(h.agentId, { tail: 20 })))).join('\n')}`,
    });
    expect(done, await describeTask(bus, task.id)).toMatchObject({ status: 'completed', result: 'Probed.' });

    // The agent registered through Redis from its service's task, and the runtime lists it as running.
    const registered = (await new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs }).list()).filter((a) => a.role === 'domain' && a.alive);
    expect(registered.map((a) => a.domain)).toEqual(['backend']);
    const handles = await runtime.list();
    expect(handles).toMatchObject([{ agentId: registered[0]!.id, role: 'domain', domain: 'backend', runtime: 'swarm', running: true }]);

    // The service: one replica that never restarts, no credential anywhere in its spec, secrets from a file.
    const service = (await docker.getService(handles[0]!.ref).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Env: string[] }; RestartPolicy: { Condition: string } } } };
    expect(service.Spec.TaskTemplate.RestartPolicy.Condition).toBe('none');
    const env = service.Spec.TaskTemplate.ContainerSpec.Env;
    expect(env.filter((kv) => /^(REDIS_URL|ANTHROPIC_API_KEY|ANTHROPIC_AUTH_TOKEN)=/.test(kv))).toEqual([]);
    expect(env).toContain('DAN_SECRETS=file:/run/secrets/dan-agent-secrets');
    const spec = JSON.stringify(service);
    for (const secret of [API_KEY, ADMIN_PASSWORD, rolePassword(ADMIN_PASSWORD, network, 'agent')]) expect(spec.includes(secret)).toBe(false);
    expect((await secretsOf()).map((s) => s.Spec?.Labels?.[LABELS.agentId])).toEqual([registered[0]!.id]);

    // Non-root: the agent's node process runs as uid 1000; the CLI as 1001, which cannot read the secrets file.
    const tasks = (await docker.listTasks({ filters: { service: [handles[0]!.ref] } })) as Array<{ Status: { ContainerStatus: { ContainerID: string } } }>;
    const top = (await docker.getContainer(tasks[0]!.Status.ContainerStatus.ContainerID).top({ ps_args: '-o pid,uid,comm' })) as { Titles: string[]; Processes: string[][] };
    const uid = top.Titles.indexOf('UID');
    const nodes = top.Processes.filter((p) => p.at(-1) === 'node');
    expect(nodes.length).toBeGreaterThan(0);
    for (const p of nodes) expect(p[uid]).toBe('1000');
    expect(toolOutputs.join('\n')).toContain('cli uid=1001 secrets-file=EACCES');
    expect(logs.lines.join('\n')).not.toContain(API_KEY);
    expect(await runtime.logs(registered[0]!.id, { tail: 500 })).not.toContain(ADMIN_PASSWORD);
  });

  it('stops the agent: no service, task or secret of the network is left', async () => {
    expect((await runtime.list()).length).toBeGreaterThan(0);
    await orchestrator!.stop('down');
    orchestrator = undefined;
    expect(await runtime.list()).toEqual([]);
    expect(await docker.listServices({ filters: { label: [`${LABELS.network}=${network}`] } })).toEqual([]);
    expect(await secretsOf()).toEqual([]);
    // The task's container goes a moment after its service.
    await eventually(async () => (await docker.listContainers({ all: true, filters: { label: [`${LABELS.network}=${network}`, `${LABELS.role}=domain`] } })).length === 0, {
      timeoutMs: 60_000,
      what: 'the agent container to be gone',
    });
  });
});
