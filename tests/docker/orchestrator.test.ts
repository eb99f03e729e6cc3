import { execFileSync } from 'node:child_process';
import { chown, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { Bus, installationId } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { AgentRegistry, type AgentRecord } from '../../lib/registry/index.js';
import { DockerRuntime, LABELS, createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { isTerminal, taskSpecSchema, type LogEntry, type TaskRecord, type TaskSpecInput } from '../../lib/task.js';
import { conversationRequests, isPlanningRequest, ModelServer, writeFileScenario, type TurnChooser } from '../fixtures/model-server.js';
import { probeOutputs, probingPlanner, templatesWithPlannerBash } from '../fixtures/planner-probe.js';
import { runDan } from '../helpers/cli.js';
import { TEST_AGENT_IMAGE, containerExists, ensureTestAgentImage, removeContainers, removeDanNetwork } from '../helpers/docker.js';
import { LogCapture } from '../helpers/log-capture.js';
import { deleteNetworkKeys, eventually, testConfig, uniqueNetwork } from '../helpers/network.js';
import { describeTask, waitForTask } from '../helpers/wait-for-task.js';

// The orchestrator on the Docker runtime, end to end: an Orchestrator in this process spawns containers of the
// real agent image; inside each, `dan agent` runs the real claude binary against the scripted model server on
// this host (reached as host.docker.internal) and a Redis container on the network's Docker network.

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true'; // Ryuk cannot be pulled here: afterAll cleans up by label
const AGENT_IMAGE = TEST_AGENT_IMAGE;
const BASE_IMAGE = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const REDIS_IMAGE = process.env.DAN_REDIS_IMAGE ?? 'dan-airgap/redis:7';
const API_KEY = 'sk-ant-api03-docker-orchestrator-test-0000000000';
/** The network's Redis password: a credential no planner run may find. */
const REDIS_PASSWORD = 'docker-orchestrator-redis-pass-5b1e';
/** What `.env` gave the orchestrator's own environment: no planner run may find it either. */
const DOTENV_SECRET = 'dotenv-secret-only-the-orchestrator-has-0d7c';
/** Labels what this file starts besides agents (Redis, the foreign container), for cleanup. */
const TEST_LABEL = 'dan.test';

const network = uniqueNetwork('dorch');
const docker: Docker = createDockerClient();
let workspace: string;
let server: ModelServer;
let script: TurnChooser = writeFileScenario();
let redisContainer: { stop(): Promise<unknown> } | undefined;
let config: DanConfig;
let bus: Bus;
let foreignId: string;
/** The settings of this file's network, as environment variables (for orchestrators and the CLI). */
let settings: Record<string, string> = {};
const logs = new LogCapture();
const orchestrators: Orchestrator[] = [];

/** Rebuilds the tests' agent image from this tree when it is missing or older than the sources it is made of. */
async function ensureAgentImage(): Promise<void> {
  await ensureTestAgentImage(docker, BASE_IMAGE);
}

/** The Docker network, made here (labelled as the runtime would) so Redis can join it before any agent. */
async function ensureNetwork(): Promise<void> {
  await docker.createNetwork({ Name: network, Driver: 'bridge', Labels: { [LABELS.network]: network } });
}

/** Redis on the network's Docker network (agents reach it by name) and mapped to this host (for the test). */
async function startRedis(): Promise<{ hostUrl: string; agentUrl: string }> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const name = `${network}-redis`;
  const container = await new GenericContainer(REDIS_IMAGE)
    .withName(name)
    .withNetworkMode(network)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--requirepass', REDIS_PASSWORD])
    .withLabels({ [TEST_LABEL]: network })
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  redisContainer = container;
  const auth = `:${REDIS_PASSWORD}@`;
  return { hostUrl: `redis://${auth}${container.getHost()}:${container.getMappedPort(6379)}`, agentUrl: `redis://${auth}${name}:6379` };
}

/** A container dan did not make: no dan.network label, on the same Docker network. It must survive everything. */
async function startForeign(): Promise<string> {
  const container = await docker.createContainer({
    name: `${network}-foreign`,
    Image: BASE_IMAGE,
    Cmd: ['sleep', '600'],
    Labels: { [TEST_LABEL]: network, [LABELS.role]: 'domain', [LABELS.agentId]: 'backend-foreign0' },
    HostConfig: { Init: true, NetworkMode: network },
  });
  await container.start();
  return container.id;
}

/** Agent containers of the network, as Docker lists them (running only, unless `all`). */
async function agentContainers(all = false): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all, filters: { label: [`${LABELS.network}=${network}`, `${LABELS.role}=domain`] } });
}

async function startOrchestrator(id: string, extra: Record<string, string> = {}): Promise<{ orchestrator: Orchestrator; runtime: DockerRuntime }> {
  const own = testConfig(network, { ...settings, ...extra });
  const logger = createLogger({ level: 'info', destination: logs }).child({ orchestrator: id });
  const runtime = await DockerRuntime.create(own, { logger, installation: await installationId(bus.redis, bus.keys) });
  const modelEnv = {
    ANTHROPIC_BASE_URL: `http://host.docker.internal:${new URL(server.url).port}`,
    ANTHROPIC_API_KEY: API_KEY,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DAN_TEST_DOTENV_SECRET: DOTENV_SECRET,
  };
  const orchestrator = await Orchestrator.start({ config: own, runtime, logger, env: modelEnv, id });
  orchestrators.push(orchestrator);
  return { orchestrator, runtime };
}


function registry(): AgentRegistry {
  return new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
}

async function liveAgents(): Promise<AgentRecord[]> {
  return (await registry().list()).filter((a) => a.role === 'domain' && a.alive);
}

async function submit(description: string, spec: Partial<TaskSpecInput> = {}): Promise<TaskRecord> {
  return bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 120, maxAttempts: 3, ...spec }));
}

function recentLogs(): string {
  return logs.lines.slice(-20).join('\n');
}

async function waitFor(id: string, check: (r: TaskRecord) => boolean, what: string, timeoutMs = 90_000): Promise<TaskRecord> {
  return waitForTask(bus, id, check, { what, timeoutMs, intervalMs: 200, context: async () => `${await describeTask(bus, id)}\n${recentLogs()}` });
}

const waitForEnd = (id: string, timeoutMs?: number) => waitFor(id, (r) => isTerminal(r.status), 'the task to end', timeoutMs);

async function entries(id: string): Promise<LogEntry[]> {
  return (await bus.logs.history(id)).map((e) => e.entry);
}

const statusTrail = (list: LogEntry[]): string[] => list.filter((e) => e.type === 'status').map((e) => e.status!);

/** Stops an orchestrator of a test and every agent container of the network, so the next test starts from none. */
async function finish(orchestrator: Orchestrator): Promise<void> {
  await orchestrator.stop('down');
  await eventually(async () => (await agentContainers(true)).length === 0, { what: 'no agent container left', timeoutMs: 60_000 });
}

beforeAll(async () => {
  await ensureAgentImage();
  workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-dorch-ws-'));
  await chown(workspace, 1000, 1000); // agents run as uid 1000; a bind mount keeps the host's ownership
  await ensureNetwork();
  const redis = await startRedis();
  server = await ModelServer.start({ script: (req) => script(req), host: '0.0.0.0' });
  settings = {
    REDIS_URL: redis.hostUrl,
    DAN_AGENT_REDIS_URL: redis.agentUrl,
    DAN_RUNTIME: 'docker',
    DAN_AGENT_IMAGE: AGENT_IMAGE,
    DAN_WORKSPACE_VOLUME: workspace,
    DAN_AGENT_MEMORY_MB: '768',
    DAN_AGENT_CPUS: '0.75',
    // Containers on 2 cores: liveness timings with room for a busy machine.
    DAN_HEARTBEAT_MS: '500',
    DAN_HEARTBEAT_TTL_MS: '3000',
    DAN_REAPER_MS: '300',
    DAN_IDLE_TIMEOUT_MS: '3000',
    DAN_SHUTDOWN_GRACE_MS: '500',
    DAN_LOG_LEVEL: 'info',
  };
  config = testConfig(network, settings);
  bus = await Bus.connect(config, { name: `test-${network}` });
  foreignId = await startForeign();
}, 600_000);

afterAll(async () => {
  for (const orchestrator of orchestrators) await orchestrator.stop('down').catch(() => {});
  await server?.close();
  if (config) await deleteNetworkKeys(config.redisUrl, config.prefix).catch(() => {});
  await bus?.close();
  await redisContainer?.stop().catch(() => {});
  await removeContainers(docker, `${TEST_LABEL}=${network}`); // Redis and the foreign container, on the network
  await removeDanNetwork(docker, network);
  // Files the agents (uid 1000) wrote: removable by root, which CI is.
  if (workspace) await rm(workspace, { recursive: true, force: true });
  // The orchestrators' own CLI config dirs (their planner's), under <tmp>/dan/<network>/.
  await rm(path.join(os.tmpdir(), 'dan', network), { recursive: true, force: true });
}, 180_000);

describe('orchestrator on the docker runtime', { timeout: 180_000 }, () => {
  it('spawns a locked-down container for a backend task; the agent registers, runs claude and writes into the workspace', async () => {
    script = writeFileScenario();
    const { orchestrator } = await startOrchestrator('dorch-1');
    expect(await agentContainers(true)).toEqual([]);
    const task = await submit('Create the file from-container.txt');

    const active = await waitFor(task.id, (r) => r.status === 'active', 'an agent container to take the task');
    const agentId = active.agent!;
    const [container] = (await agentContainers(true)).filter((c) => c.Labels[LABELS.agentId] === agentId);
    expect(container, `a container for ${agentId}`).toBeDefined();
    const info = await docker.getContainer(container!.Id).inspect();
    expect(info.Name).toBe(`/${network}-backend-${agentId.slice('backend-'.length)}`);
    expect(info.Config.Image).toBe(AGENT_IMAGE);
    // Root with SETUID/SETGID/KILL only; the entrypoint drops to uid 1000 and the CLI runs as uid 1001.
    expect(info.Config.User).toBe('0:0');
    expect(info.HostConfig.CapAdd).toEqual(['SETUID', 'SETGID', 'KILL']);
    expect(info.Config.Labels).toMatchObject({ [LABELS.network]: network, [LABELS.role]: 'domain', [LABELS.domain]: 'backend', [LABELS.agentId]: agentId });
    expect(info.HostConfig.Memory).toBe(768 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(750_000_000);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.Mounts).toEqual([expect.objectContaining({ Type: 'bind', Source: workspace, Destination: '/workspace' })]);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([network]);
    // Its Redis URL and the model key came on stdin: none in the container's config.
    expect(info.Config.Env).toEqual(expect.arrayContaining(['DAN_SECRETS=stdin', 'DAN_WORKSPACE=/workspace', `AGENT_ID=${agentId}`]));
    expect((info.Config.Env ?? []).filter((kv) => /^(REDIS_URL|ANTHROPIC_API_KEY)=/.test(kv))).toEqual([]);
    // The image's HEALTHCHECK: the agent rewrites its health file on every heartbeat.
    const inContainer = (...cmd: string[]) => execFileSync('docker', ['exec', container!.Id, ...cmd], { encoding: 'utf8' }).trim();
    await eventually(() => Number(inContainer('cat', '/tmp/dan-alive')) > 0, { what: 'the health file', timeoutMs: 30_000 });
    expect(inContainer('/app/scripts/healthcheck.sh')).toBe('ok');

    const done = await waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 1, agent: agentId });
    expect(done.result).toContain('Done: wrote from-container.txt');
    expect(await registry().get(agentId)).toMatchObject({ role: 'domain', domain: 'backend', runtime: 'docker' });
    const file = path.join(workspace, 'from-container.txt');
    expect(await readFile(file, 'utf8')).toContain('Create the file from-container.txt');
    expect((await stat(file)).uid).toBe(1000);
    expect(orchestrator.stats.spawned).toBe(1);
    await finish(orchestrator);
  });

  it('removes a container killed mid-task, keeping its last log lines, and a new container completes the task', async () => {
    let hung = 0;
    script = (req) => (!req.hasToolResult && hung++ === 0 ? { hang: true } : writeFileScenario()(req));
    const before = conversationRequests(server.requests).length;
    const { orchestrator } = await startOrchestrator('dorch-2');
    const task = await submit('Create the file after-kill.txt');
    const active = await waitFor(task.id, (r) => r.status === 'active', 'an agent container to take the task');
    await eventually(() => conversationRequests(server.requests).length > before, { what: 'the model to be called', timeoutMs: 60_000 });
    const victim = active.agent!;
    const [container] = (await agentContainers()).filter((c) => c.Labels[LABELS.agentId] === victim);
    await docker.getContainer(container!.Id).kill();

    const done = await waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
    expect(done.agent).not.toBe(victim);
    expect(await containerExists(docker, container!.Id)).toBe(false);
    const dead = await registry().get(victim);
    expect(dead?.status).toBe('dead');
    expect(dead?.lastLogs).toContain('agent ready');
    expect(orchestrator.stats.reaped).toBeGreaterThanOrEqual(1);
    const trail = await entries(task.id);
    expect(statusTrail(trail)).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    expect(trail.filter((e) => e.type === 'result')).toHaveLength(1);
    expect(await readFile(path.join(workspace, 'after-kill.txt'), 'utf8')).toContain('after-kill.txt');
    expect(await containerExists(docker, foreignId)).toBe(true);
    await finish(orchestrator);
  });

  it('scales to 3 containers for 6 waiting tasks, and back to 0 containers after the idle timeout', async () => {
    script = (req) => (req.hasToolResult ? writeFileScenario()(req) : { ...writeFileScenario()(req), delayMs: 2000 });
    const tasks = [];
    for (let i = 1; i <= 6; i++) tasks.push(await submit(`Create the file scaled-${i}.txt`));
    const { orchestrator } = await startOrchestrator('dorch-3', { DAN_MAX_AGENTS_PER_DOMAIN: '3' });
    let max = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        max = Math.max(max, (await agentContainers()).length);
        await sleep(200);
      }
    })();

    // Stopped and joined however the waits end: a failed wait must not leave it polling Docker through the tests
    // that follow.
    try {
      const done = await Promise.all(tasks.map((t) => waitForEnd(t.id, 150_000)));
      expect(done.map((d) => d.status)).toEqual(Array(6).fill('completed'));
      expect(new Set(done.map((d) => d.agent)).size).toBe(3);
      await eventually(async () => (await liveAgents()).length === 0 && (await agentContainers(true)).length === 0, {
        what: 'every agent to exit idle and its container to be removed',
        timeoutMs: 60_000,
      });
    } finally {
      sampling = false;
      await sampler;
    }
    expect(max).toBe(3);
    expect(orchestrator.stats.spawned).toBe(3);
    for (let i = 1; i <= 6; i++) expect(await readFile(path.join(workspace, `scaled-${i}.txt`), 'utf8')).toContain(`scaled-${i}.txt`);
    await finish(orchestrator);
  });

  it('plans a goal in a planner container of its own: locked down, no Redis, no socket, no .env, the workspace read-only; the plan comes back and runs', async () => {
    // A test-only permission file lets the planner run Bash: the container, not the CLI's rules, is under test.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-dorch-templates-'));
    const templates = await templatesWithPlannerBash(dir);
    await chown(templates, 1000, 1000).catch(() => undefined);
    const planner = probingPlanner();
    const worker = writeFileScenario();
    script = (req) => (isPlanningRequest(req) ? { ...planner(req), ...(req.hasToolResult ? { delayMs: 0 } : { delayMs: 2000 }) } : worker(req));
    const { orchestrator } = await startOrchestrator('dorch-plan', { DAN_TEMPLATES: templates, DAN_TEMPLATES_VOLUME: templates });
    try {
      const goal = await bus.submit(taskSpecSchema.parse({ domain: 'main', description: 'Create user registration with an API endpoint and a form component', timeoutS: 120, maxAttempts: 3 }));

      // The planner's container while it runs (its first model turn waits 2 s).
      const plannerFilter = { label: [`${LABELS.network}=${network}`, `${LABELS.role}=planner`] };
      await eventually(async () => (await docker.listContainers({ all: true, filters: plannerFilter })).length > 0, { what: 'a planner container', timeoutMs: 60_000, intervalMs: 100 });
      const [listed] = await docker.listContainers({ all: true, filters: plannerFilter });
      const info = await docker.getContainer(listed!.Id).inspect();
      // Root with SETUID, SETGID and KILL only: the image's entrypoint drops to uid 1000 at once, as for an agent.
      expect(info.Config.User).toBe('0:0');
      expect(info.HostConfig.CapAdd?.sort()).toEqual(['KILL', 'SETGID', 'SETUID']);
      expect(info.Config.Labels).toMatchObject({ [LABELS.role]: 'planner', [LABELS.domain]: 'planner' });
      expect(info.Config.Labels[LABELS.installation]).toBe(await installationId(bus.redis, bus.keys));
      expect(info.Config.Env.some((e) => e.startsWith('REDIS_URL='))).toBe(false);
      expect(info.Config.Env.join('\n')).not.toContain(REDIS_PASSWORD);
      expect(info.Config.Env.join('\n')).not.toContain(DOTENV_SECRET);
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.Privileged).toBe(false);
      expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
      expect(info.HostConfig.Memory).toBe(768 * 1024 * 1024);
      expect(info.Mounts.map((m) => [m.Destination, m.RW]).sort()).toEqual([['/templates', false], ['/workspace', false]]);

      const done = await waitForEnd(goal.id, 150_000);
      expect(done.status, await describeTask(bus, goal.id)).toBe('completed');
      expect(JSON.parse(done.plan!)).toMatchObject({ source: 'model' });

      // What the injected probe returned to the model.
      const [probe, ...more] = probeOutputs(server.requests);
      expect(more).toEqual([]);
      expect(probe, 'the probe ran (Bash was allowed by the test permission file)').toMatch(/^== done$/m);
      expect(probe).toMatch(/^== environ of \d+: .*dan\.js planner $/m);
      expect(probe).toMatch(/^== environ of 1$/m);
      expect(probe).not.toContain(REDIS_PASSWORD);
      expect(probe).not.toContain('REDIS_URL');
      expect(probe).not.toContain(DOTENV_SECRET);
      expect(probe).toMatch(/== socket\n(.*No such file or directory\n){2}/);
      expect(probe).toMatch(/== dotenv\n\(end of dotenv\)/);
      expect(probe).toMatch(/touch: cannot touch '\/workspace\/planner-was-here': Read-only file system/);
      expect(probe).not.toContain('WROTE-THE-WORKSPACE');
      // The planner's events are in the goal's log, and its container is gone.
      expect((await entries(goal.id)).some((e) => e.text.includes('look around') || JSON.stringify(e.data ?? {}).includes('look around'))).toBe(true);
      expect(await docker.listContainers({ all: true, filters: plannerFilter })).toEqual([]);
    } finally {
      await finish(orchestrator);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('`dan down --runtime docker` stops the orchestrator and leaves no container of the network, but the foreign one', async () => {
    script = () => ({ hang: true });
    const before = conversationRequests(server.requests).length;
    const { orchestrator } = await startOrchestrator('dorch-4');
    const task = await submit('Create the file never.txt');
    await waitFor(task.id, (r) => r.status === 'active', 'an agent container to take the task');
    await eventually(() => conversationRequests(server.requests).length > before, { what: 'the model to be called', timeoutMs: 60_000 });
    expect((await agentContainers()).length).toBe(1);

    const down = await runDan(['down', '--runtime', 'docker', '--timeout', '20000'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DAN_NETWORK: network,
      ...settings,
    });
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(String(down.stdout)).toMatch(/^network "[^"]+": stopped 1 orchestrator and 1 agent; removed [01] containers?;/m);
    expect(await orchestrator.exited).toBe('down');
    expect(await agentContainers(true)).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABELS.network}=${network}`] } })).toEqual([]);
    expect((await docker.getContainer(foreignId).inspect()).State.Running).toBe(true);
    expect(await registry().ids()).toEqual([]);
    // The busy agent handed its task back on the way out.
    expect(await bus.tasks.get(task.id)).toMatchObject({ status: 'queued', attempts: 1 });
  });
});
