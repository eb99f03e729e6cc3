import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { Bus, installationId, rolePassword, roleUser } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { DockerRuntime, LABELS, createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { isTerminal, taskSpecSchema } from '../../lib/task.js';
import { ModelServer, type TurnChooser } from '../fixtures/model-server.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage, removeContainers, removeDanNetwork } from '../helpers/docker.js';
import { LogCapture } from '../helpers/log-capture.js';
import { deleteNetworkKeys, testConfig, uniqueNetwork } from '../helpers/network.js';
import { describeTask, waitForTask } from '../helpers/wait-for-task.js';

// Credentials on the docker runtime (docs/SECURITY.md, issue 16 items 2 and 3), with the real agent image, a
// Redis container with a password, and the real claude binary whose scripted model makes it run a Bash tool
// that hunts for the agent's credentials: the agent's /proc/<pid>/environ and memory maps, every process's
// environment, files. The CLI runs as uid 1001 with no capabilities: it finds none of them. And no container's
// config (docker inspect, Docker's config.v2.json on disk) holds a credential.

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const BASE_IMAGE = process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const REDIS_IMAGE = process.env.DAN_REDIS_IMAGE ?? 'dan-airgap/redis:7';
const API_KEY = `sk-ant-api03-${randomBytes(24).toString('base64url')}-creds`;
const ADMIN_PASSWORD = `admin-${randomBytes(16).toString('hex')}`;
const TEST_LABEL = 'dan.test';

const network = uniqueNetwork('dcred');
const docker: Docker = createDockerClient();
const logs = new LogCapture();
let workspace: string;
let server: ModelServer;
let redisContainer: { stop(): Promise<unknown> } | undefined;
let config: DanConfig;
let bus: Bus;
let orchestrator: Orchestrator | undefined;
/** What the Bash tool printed, as the CLI sent it back to the model. */
const toolOutputs: string[] = [];

/**
 * The Bash tool's hunt, as `node -e` (the backend domain allows `Bash(node *)`; what stops it must be the uid, not
 * a permission rule): who am I, with which capabilities; which processes' environ and memory maps can I read, and
 * does any readable environ or file under /tmp and the home hold a Redis URL.
 */
const HUNT_JS = [
  'const fs = require("fs"); const out = [];',
  'out.push("whoami uid=" + process.getuid() + " gid=" + process.getgid());',
  'for (const l of fs.readFileSync("/proc/self/status", "utf8").split("\\n")) if (/^Cap(Prm|Eff|Amb)/.test(l)) out.push(l);',
  'let leak = false;',
  'for (const n of fs.readdirSync("/proc").filter((x) => /^[0-9]+$/.test(x))) {',
  '  let u; try { u = fs.statSync("/proc/" + n).uid; } catch { continue; }',
  '  try { const e = fs.readFileSync("/proc/" + n + "/environ", "utf8"); out.push("environ-readable pid=" + n + " uid=" + u); if (/REDIS_URL=|redis:[/][/]/.test(e)) leak = true; }',
  '  catch { out.push("environ-denied pid=" + n + " uid=" + u); }',
  '  try { fs.readFileSync("/proc/" + n + "/maps", "utf8"); out.push("maps-readable pid=" + n + " uid=" + u); } catch {}',
  '}',
  'out.push(leak ? "redis-url-in-a-readable-environ" : "no-redis-url-in-any-readable-environ");',
  'let found = [];',
  'const walk = (d, depth) => { let es; try { es = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }',
  '  for (const e of es) { const p = d + "/" + e.name; if (e.isDirectory() && depth < 6) walk(p, depth + 1);',
  '    else if (e.isFile()) { try { if (/redis:[/][/]/.test(fs.readFileSync(p, "utf8"))) found.push(p); } catch {} } } };',
  'walk("/tmp", 0); walk("/home/agent", 0);',
  'out.push(found.length ? "redis-url-in-files " + found.join(" ") : "no-redis-url-in-files");',
  'console.log(out.join("\\n"));',
].join(' ');
const HUNT = `node -e '${HUNT_JS}'`;

const script: TurnChooser = (req) => {
  if (req.hasToolResult) {
    toolOutputs.push(...req.toolResults.map((r) => r.text));
    return { text: 'Looked around.' };
  }
  return { text: 'Let me look around.', tools: [{ name: 'Bash', input: { command: HUNT, description: 'look for credentials' } }] };
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
  await ensureTestAgentImage(docker, BASE_IMAGE);
  workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-dcred-ws-'));
  await chown(workspace, 1000, 1000);
  // mkdtemp makes it 0700: the CLI (uid 1001, group 1000) must at least pass through it to its worktree.
  await chmod(workspace, 0o775);
  await docker.createNetwork({ Name: network, Driver: 'bridge', Labels: { [LABELS.network]: network } });
  const redis = await startRedis();
  server = await ModelServer.start({ script: (req) => script(req), host: '0.0.0.0' });
  config = testConfig(network, {
    REDIS_URL: redis.hostUrl,
    DAN_AGENT_REDIS_URL: redis.agentUrl,
    DAN_RUNTIME: 'docker',
    DAN_AGENT_IMAGE: TEST_AGENT_IMAGE,
    DAN_WORKSPACE_VOLUME: workspace,
    DAN_AGENT_MEMORY_MB: '768',
    DAN_AGENT_CPUS: '0.75',
    DAN_HEARTBEAT_MS: '500',
    DAN_HEARTBEAT_TTL_MS: '3000',
    DAN_REAPER_MS: '300',
    DAN_IDLE_TIMEOUT_MS: '60000',
    DAN_SHUTDOWN_GRACE_MS: '500',
    // Free rein for the CLI's tools: what stops the hunt must be the uid, not a permission prompt.
    DAN_PERMISSION_MODE: 'bypassPermissions',
    DAN_LOG_LEVEL: 'info',
  });
  bus = await Bus.connect(config, { name: `test-${network}` });
  const logger = createLogger({ level: 'info', destination: logs });
  const runtime = await DockerRuntime.create(config, { logger, installation: await installationId(bus.redis, bus.keys) });
  orchestrator = await Orchestrator.start({
    config,
    runtime,
    logger,
    id: `${network}-orch`,
    env: { ANTHROPIC_BASE_URL: `http://host.docker.internal:${new URL(server.url).port}`, ANTHROPIC_API_KEY: API_KEY, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
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
  if (workspace) await rm(workspace, { recursive: true, force: true });
  await rm(path.join(os.tmpdir(), 'dan', network), { recursive: true, force: true });
}, 180_000);

describe('credentials on the docker runtime', { timeout: 300_000 }, () => {
  it("keeps every credential out of the agent container's config, and the CLI (uid 1001) out of the agent's", async () => {
    const task = await bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'Look for credentials', timeoutS: 120, maxAttempts: 1 }));
    const done = await waitForTask(bus, task.id, (r) => isTerminal(r.status), {
      what: 'the task to end',
      timeoutMs: 180_000,
      context: async () => `${await describeTask(bus, task.id)}\n${logs.lines.slice(-20).join('\n')}`,
    });
    expect(done.status, await describeTask(bus, task.id)).toBe('completed');

    // The agent connected as its role's user (items 2): the registry shows it alive.
    const agents = (await new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs }).list()).filter((a) => a.role === 'domain');
    expect(agents.length).toBeGreaterThan(0);
    const clients = String(await bus.redis.call('CLIENT', 'LIST')).split('\n').filter((l) => l.includes('name=dan-agent:'));
    expect(clients.length).toBeGreaterThan(0);
    for (const line of clients) expect(line).toContain(`user=${roleUser(network, 'agent')}`);

    // Item 3: no credential in any agent container's config, as the API shows it or as Docker keeps it on disk.
    const agentPassword = rolePassword(ADMIN_PASSWORD, network, 'agent');
    const secrets = [API_KEY, ADMIN_PASSWORD, agentPassword];
    const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.network}=${network}`, `${LABELS.role}=domain`] } });
    expect(containers.length).toBeGreaterThan(0);
    for (const { Id } of containers) {
      const info = await docker.getContainer(Id).inspect();
      const env = info.Config.Env ?? [];
      expect(env.filter((kv) => /^(REDIS_URL|ANTHROPIC_API_KEY|ANTHROPIC_AUTH_TOKEN)=/.test(kv))).toEqual([]);
      expect(env).toContain('DAN_SECRETS=stdin');
      const inspected = JSON.stringify(info);
      for (const secret of secrets) expect(inspected.includes(secret)).toBe(false);
      const onDisk = await readFile(path.join('/var/lib/docker/containers', Id, 'config.v2.json'), 'utf8').catch(() => undefined);
      if (onDisk !== undefined) for (const secret of secrets) expect(onDisk.includes(secret)).toBe(false);
    }

    // Item 2: the CLI's hunt. It ran as uid 1001, without capabilities, and read no other uid's environ or maps.
    const output = toolOutputs.join('\n');
    expect(output).toMatch(/whoami uid=1001 gid=1000/);
    expect(output).toMatch(/CapEff:\s*0+\b/);
    expect(output).toMatch(/CapAmb:\s*0+\b/);
    const readable = output.split('\n').filter((l) => /^(environ|maps)-readable /.test(l) && !/ uid=1001$/.test(l));
    expect(readable).toEqual([]);
    expect(output).toMatch(/environ-denied pid=\d+ uid=1000/); // the agent was there, and out of reach
    expect(output).toContain('no-redis-url-in-any-readable-environ');
    expect(output).toContain('no-redis-url-in-files');
    for (const secret of [ADMIN_PASSWORD, agentPassword]) expect(output.includes(secret)).toBe(false);
  });
});
