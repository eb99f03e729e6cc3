import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { ASK_USER_TOOL_ID, DELIVERED } from '../../lib/mcp/dan-mcp-server.js';
import { Bus, installationId } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { TEMPLATES_PATH } from '../../lib/runtime/container-spec.js';
import { DockerRuntime, LABELS, createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { isTerminal, type TaskRecord } from '../../lib/task.js';
import { flattenText, ModelServer, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage, removeContainers, removeDanNetwork } from '../helpers/docker.js';
import { LogCapture } from '../helpers/log-capture.js';
import { deleteNetworkKeys, testConfig, uniqueNetwork } from '../helpers/network.js';
import { describeTask, waitForTask } from '../helpers/wait-for-task.js';

// Conversations on the docker runtime (issue 13): agent containers whose CLI runs under its own uid (1001, in the
// agent's group) save each task's session to Redis, and a follow-up or an answer resumed in a container shows the
// model the earlier conversation; a domain's .mcp.json reference reaches the CLI's MCP server from the
// orchestrator's environment, on the agent's stdin, and nowhere else. The real agent image, a Redis container with
// a password, the real claude binary against the scripted model server.

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const BASE_IMAGE = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const REDIS_IMAGE = process.env.DAN_REDIS_IMAGE ?? 'dan-airgap/redis:7';
const API_KEY = `sk-ant-api03-${randomBytes(24).toString('base64url')}-conv`;
const ADMIN_PASSWORD = `admin-${randomBytes(16).toString('hex')}`;
/** The secret the backend domain's .mcp.json references as ${SHOUT_TOKEN}. */
const SHOUT_TOKEN = `shout-${randomBytes(16).toString('hex')}`;
const TEST_LABEL = 'dan.test';

const network = uniqueNetwork('dconv');
const docker: Docker = createDockerClient();
const logs = new LogCapture();
let workspace: string;
let templates: string;
let server: ModelServer;
let redisContainer: { stop(): Promise<unknown> } | undefined;
let config: DanConfig;
let bus: Bus;
let orchestrator: Orchestrator | undefined;
let danEnv: Record<string, string>;

/** Every message text of a model request (what the model was shown of the conversation). */
function conversationText(req: RecordedRequest): string {
  const messages = (req.body as { messages?: Array<{ content: unknown }> }).messages ?? [];
  return messages.map((m) => flattenText(m.content)).join('\n');
}

/** Asks when told to pick, calls the domain's shout tool when told to shout, else echoes the last message. */
function script(req: RecordedRequest): Turn {
  if (req.hasToolResult) return { text: req.toolResults.some((r) => r.text.includes('sha256:')) ? 'The server answered.' : 'I asked; waiting for the answer.' };
  if (req.lastUserText.startsWith('Pick a database')) {
    return { text: 'I need a decision.', tools: [{ name: ASK_USER_TOOL_ID, input: { question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] } }] };
  }
  if (req.lastUserText.startsWith('Shout hello')) return { text: 'Calling it.', tools: [{ name: 'mcp__shout__shout', input: { text: 'hello' } }] };
  return { text: `Echo: ${req.lastUserText.split('\n')[0]}` };
}

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

/** The templates with a shout server in the backend domain, its env naming ${SHOUT_TOKEN}; readable by uid 1001. */
async function templatesWithShout(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-dconv-templates-'));
  await cp(path.join(repoRoot(), 'agents'), dir, { recursive: true });
  const backend = path.join(dir, 'domain-templates', 'backend');
  await cp(path.join(repoRoot(), 'tests/fixtures/shout-mcp-server.mjs'), path.join(backend, 'shout-mcp-server.mjs'));
  const inContainer = `${TEMPLATES_PATH}/domain-templates/backend/shout-mcp-server.mjs`;
  const shout = { command: 'node', args: [inContainer], env: { SHOUT_SUFFIX: 'in a container', SHOUT_DIGEST: '${SHOUT_TOKEN}' } };
  await writeFile(path.join(backend, '.mcp.json'), JSON.stringify({ mcpServers: { shout } }));
  await chmod(dir, 0o755);
  return dir;
}

beforeAll(async () => {
  await ensureTestAgentImage(docker, BASE_IMAGE);
  workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-dconv-ws-'));
  await chown(workspace, 1000, 1000);
  await chmod(workspace, 0o775);
  templates = await templatesWithShout();
  await docker.createNetwork({ Name: network, Driver: 'bridge', Labels: { [LABELS.network]: network } });
  const redis = await startRedis();
  server = await ModelServer.start({ script, host: '0.0.0.0' });
  config = testConfig(network, {
    REDIS_URL: redis.hostUrl,
    DAN_AGENT_REDIS_URL: redis.agentUrl,
    DAN_RUNTIME: 'docker',
    DAN_AGENT_IMAGE: TEST_AGENT_IMAGE,
    DAN_WORKSPACE_VOLUME: workspace,
    DAN_TEMPLATES: templates,
    DAN_TEMPLATES_VOLUME: templates,
    DAN_AGENT_MEMORY_MB: '768',
    DAN_AGENT_CPUS: '0.75',
    DAN_HEARTBEAT_MS: '500',
    DAN_HEARTBEAT_TTL_MS: '3000',
    DAN_REAPER_MS: '300',
    DAN_IDLE_TIMEOUT_MS: '120000',
    DAN_SHUTDOWN_GRACE_MS: '500',
    DAN_LOG_LEVEL: 'info',
  });
  danEnv = { REDIS_URL: redis.hostUrl, DAN_NETWORK: network, DAN_TEMPLATES: templates };
  bus = await Bus.connect(config, { name: `test-${network}` });
  const logger = createLogger({ level: 'info', destination: logs });
  const runtime = await DockerRuntime.create(config, { logger, installation: await installationId(bus.redis, bus.keys) });
  orchestrator = await Orchestrator.start({
    config,
    runtime,
    logger,
    id: `${network}-orch`,
    env: {
      ANTHROPIC_BASE_URL: `http://host.docker.internal:${new URL(server.url).port}`,
      ANTHROPIC_API_KEY: API_KEY,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      SHOUT_TOKEN,
    },
  });
}, 600_000);

afterAll(async () => {
  await orchestrator?.stop('down').catch(() => {});
  await server?.close();
  if (config) await deleteNetworkKeys(config.redisUrl, config.prefix).catch(() => {});
  await bus?.close();
  await redisContainer?.stop().catch(() => {});
  await removeContainers(docker, `${TEST_LABEL}=${network}`);
  await removeDanNetwork(docker, network);
  for (const dir of [workspace, templates]) if (dir) await rm(dir, { recursive: true, force: true });
}, 180_000);

async function waitFor(id: string, check: (r: TaskRecord) => boolean, what: string): Promise<TaskRecord> {
  return waitForTask(bus, id, check, {
    what,
    timeoutMs: 240_000,
    context: async () => `${await describeTask(bus, id)}\n${logs.lines.slice(-20).join('\n')}`,
  });
}

async function send(args: string[]): Promise<string> {
  const sent = await runDan(['send-task', 'backend', ...args], danEnv);
  expect(sent.exitCode, String(sent.stderr)).toBe(0);
  return String(sent.stdout).trim();
}

const logText = async (id: string): Promise<string> => (await bus.logs.history(id)).map((e) => e.entry.text).join('\n');

describe('conversations on the docker runtime', { timeout: 600_000 }, () => {
  it('saves a task\'s session from its container, and a follow-up resumed in a container shows the model the earlier conversation', async () => {
    const a = await send(['Remember the word PELICAN.']);
    const first = await waitFor(a, (r) => isTerminal(r.status), 'the first task to end');
    expect(first.status, await describeTask(bus, a)).toBe('completed');
    expect(first.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await logText(a)).toMatch(new RegExp(`saved session ${first.sessionId} \\(\\d+ KiB gzipped\\) for follow-ups`));
    expect(await bus.redis.exists(bus.keys.taskSession(a))).toBe(1);

    const b = await send(['Which word did I ask you to remember?', '--continue', a]);
    const done = await waitFor(b, (r) => isTerminal(r.status), 'the follow-up to end');
    expect(done, await describeTask(bus, b)).toMatchObject({ status: 'completed', follows: a, sessionId: first.sessionId, result: 'Echo: Which word did I ask you to remember?' });
    expect(await logText(b)).toContain(`resuming session ${first.sessionId} of task ${a}`);
    const followUp = server.requests.find((r) => !r.side && r.lastUserText.startsWith('Which word'));
    expect(followUp, 'the follow-up reached the model').toBeDefined();
    expect(conversationText(followUp!)).toContain('Echo: Remember the word PELICAN.');
  });

  it('a run in a container that asks waits in needs_input; dan answer resumes it in a container and it completes', async () => {
    const id = await send(['Pick a database for the app']);
    const asked = await waitFor(id, (r) => r.status === 'needs_input' || isTerminal(r.status), 'the question');
    expect(asked, await describeTask(bus, id)).toMatchObject({ status: 'needs_input', question: { question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] } });

    const answered = await runDan(['answer', id, 'Postgres, please'], danEnv);
    expect(answered.exitCode, String(answered.stderr)).toBe(0);
    const done = await waitFor(id, (r) => isTerminal(r.status), 'the answered task to end');
    expect(done, await describeTask(bus, id)).toMatchObject({ status: 'completed', attempts: 2, result: 'Echo: Postgres, please' });
    const resumed = server.requests.find((r) => !r.side && r.lastUserText === 'Postgres, please');
    expect(resumed, 'the answer reached the model as the next user message').toBeDefined();
    expect(conversationText(resumed!)).toContain('Pick a database for the app');
    expect(conversationText(resumed!)).toContain(DELIVERED);
  });

  it("a domain's .mcp.json reference reaches its server in the container from the orchestrator's environment, and no container config, Redis key or log holds it", async () => {
    const id = await send(['Shout hello']);
    const done = await waitFor(id, (r) => isTerminal(r.status), 'the task to end');
    expect(done, await describeTask(bus, id)).toMatchObject({ status: 'completed', result: 'The server answered.' });
    const digest = createHash('sha256').update(SHOUT_TOKEN).digest('hex');
    const shouted = server.requests.flatMap((r) => r.toolResults.map((t) => t.text)).find((t) => t.startsWith('HELLO'));
    expect(shouted).toBe(`HELLO (in a container) sha256:${digest}`);

    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.network}=${network}`, `${LABELS.role}=domain`] } });
    expect(containers.length).toBeGreaterThan(0);
    for (const { Id } of containers) {
      expect(JSON.stringify(await docker.getContainer(Id).inspect())).not.toContain(SHOUT_TOKEN);
      const output = await docker.getContainer(Id).logs({ stdout: true, stderr: true, follow: false });
      expect(output.toString('utf8')).not.toContain(SHOUT_TOKEN);
    }
    expect(logs.lines.join('\n')).not.toContain(SHOUT_TOKEN);
    // Every value under the network's prefix, sessions unzipped.
    const keys = await bus.redis.keys(`${config.prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const type = await bus.redis.type(key);
      const dump =
        type === 'string'
          ? await bus.redis.getBuffer(key).then((b) => (key.endsWith(':session') && b ? gunzipSync(b).toString('utf8') : String(b)))
          : type === 'hash'
            ? JSON.stringify(await bus.redis.hgetall(key))
            : type === 'stream'
              ? JSON.stringify(await bus.redis.xrange(key, '-', '+'))
              : type === 'list'
                ? JSON.stringify(await bus.redis.lrange(key, 0, -1))
                : type === 'set'
                  ? JSON.stringify(await bus.redis.smembers(key))
                  : type === 'zset'
                    ? JSON.stringify(await bus.redis.zrange(key, '0', '-1'))
                    : '';
      expect(dump.includes(SHOUT_TOKEN), key).toBe(false);
    }
  });
});
