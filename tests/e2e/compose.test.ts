import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa, type Result } from 'execa';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ModelServer, scenario } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage } from '../helpers/docker.js';
import { createDockerClient } from '../../lib/runtime/index.js';
import { eventually, uniqueNetwork } from '../helpers/network.js';

/**
 * The user's first contact, end to end: `docker compose up` (Redis and the orchestrator from docker-compose.yml,
 * driven with whichever of `docker compose` / `docker-compose` this machine has), the `dan` CLI on the host
 * talking to the published Redis, agents spawned as containers on the compose network, the scripted model server
 * on the host reached as host.docker.internal, and `docker compose down` leaving nothing behind.
 *
 * Each run has its own compose project, network (DAN_NETWORK), Redis port, .env and copy of the workspace, and
 * removes them all even when a test fails.
 */

const ROOT = repoRoot();
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

/** `docker compose` (v2) or `docker-compose` (v1), whichever answers; undefined with neither, or no engine. */
function detectCompose(): string[] | undefined {
  const answers = (cmd: string, args: string[]): boolean => {
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (!answers('docker', ['info'])) return undefined;
  if (answers('docker', ['compose', 'version'])) return ['docker', 'compose'];
  if (answers('docker-compose', ['version'])) return ['docker-compose'];
  return undefined;
}

const compose = detectCompose();
// CI installs Docker and compose (scripts/ci-docker.sh): there, their absence is a failure, not a skip.
if (!compose && process.env.CI === 'true') throw new Error('the compose end-to-end test must run in CI: no Docker engine or compose answers');
if (!compose) console.warn('[e2e] not run: no Docker engine, or neither `docker compose` nor `docker-compose` answers');
const network = uniqueNetwork('e2e');
const project = network.replace(/[^a-z0-9_-]/g, '');
const password = randomBytes(16).toString('hex');
const modelKey = 'sk-dan-e2e-not-a-real-key';

let dir = '';
let workspace = '';
let redisPort = 0;
let webPort = 0;
let images = { agent: '', redis: '' };
let model: ModelServer | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

const docker = (args: string[], timeoutMs = 60_000): Promise<Result> => execa('docker', args, { reject: false, timeout: timeoutMs });

async function imageExists(name: string): Promise<boolean> {
  return (await docker(['image', 'inspect', name])).exitCode === 0;
}

/** The first image of `names` that exists here. */
async function firstImage(names: Array<string | undefined>): Promise<string | undefined> {
  for (const name of names) if (name && (await imageExists(name))) return name;
  return undefined;
}

/**
 * The images the network runs: the official or air-gapped base images when present (scripts/ci-docker.sh makes
 * them when not), and the agent image, rebuilt from this checkout (scripts/build-image.sh) when older than it.
 */
async function prepareImages(): Promise<{ agent: string; redis: string }> {
  const env = process.env;
  let base = await firstImage([env.DAN_BASE_IMAGE, 'node:22-bookworm-slim', 'dan-airgap/node:bookworm']);
  let redis = await firstImage([env.DAN_REDIS_IMAGE, 'redis:7-alpine', 'dan-airgap/redis:7']);
  const agent = TEST_AGENT_IMAGE;
  if (!base || !redis) {
    const made = await execa(path.join(ROOT, 'scripts/ci-docker.sh'), { cwd: ROOT, reject: false, timeout: 900_000, env: { DAN_AGENT_IMAGE: agent } });
    if (made.exitCode !== 0) throw new Error(`scripts/ci-docker.sh failed:\n${String(made.stderr).slice(-3000)}`);
    const exported = Object.fromEntries(String(made.stdout).replace(/^export /, '').trim().split(/\s+/).map((pair) => pair.split('=') as [string, string]));
    base = exported.DAN_BASE_IMAGE;
    redis = exported.DAN_REDIS_IMAGE;
  }
  await ensureTestAgentImage(createDockerClient(), base);
  return { agent, redis: redis! };
}

/**
 * Runs compose for this test's project with a controlled environment: only what compose needs from ours, so no
 * variable of the test runner's (REDIS_URL, ANTHROPIC_*) leaks into the file's interpolation or pass-throughs.
 */
function runCompose(args: string[], timeoutMs = 240_000): Promise<Result> {
  const [cmd, ...pre] = compose!;
  const keep = ['PATH', 'HOME', 'DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CONTEXT', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'XDG_RUNTIME_DIR'];
  const env: Record<string, string> = {};
  for (const name of keep) if (process.env[name]) env[name] = process.env[name]!;
  return execa(cmd!, [...pre, '-f', COMPOSE_FILE, '--project-directory', dir, '--env-file', path.join(dir, '.env'), ...args], {
    cwd: dir,
    // PWD is how the compose file finds ./workspace (DAN_WORKSPACE_VOLUME): the temporary copy.
    env: { ...env, PWD: dir, COMPOSE_PROJECT_NAME: project },
    extendEnv: false,
    reject: false,
    timeout: timeoutMs,
  });
}

/** The host CLI against the compose Redis, as a user has it after `cp .env.example .env`. */
function dan(args: string[], timeoutMs?: number, extra: Record<string, string> = {}): Promise<Result> {
  return runDan(args, { REDIS_URL: `redis://:${password}@127.0.0.1:${redisPort}`, DAN_NETWORK: network, DAN_ENV_FILE: '', DAN_LOG_LEVEL: 'silent', ...extra }, { timeoutMs });
}

const json = <T>(result: Result): T => JSON.parse(String(result.stdout)) as T;
const explain = (result: Result): string => `exit ${result.exitCode}\n--- stdout\n${String(result.stdout).slice(-3000)}\n--- stderr\n${String(result.stderr).slice(-3000)}`;

/** Ids of containers matching a label filter, running or not. */
async function containers(label: string): Promise<string[]> {
  const result = await docker(['ps', '-aq', '--filter', `label=${label}`]);
  return String(result.stdout).split('\n').filter(Boolean);
}

/** Shows the orchestrator's and the agents' last lines when a test fails: they say why. */
function dumpLogsOnFailure(): void {
  onTestFailed(async () => {
    const logs = await runCompose(['logs', '--no-color', '--tail', '60'], 60_000);
    console.error(`[e2e] compose logs:\n${String(logs.stdout).slice(-8000)}`);
    for (const id of await containers(`dan.network=${network}`)) {
      const agent = await docker(['logs', '--tail', '30', id]);
      console.error(`[e2e] agent container ${id}:\n${String(agent.stdout).slice(-3000)}${String(agent.stderr).slice(-3000)}`);
    }
  });
}

/** Removes everything this run made; safe to call twice, and after a half-finished start. */
async function cleanup(): Promise<void> {
  if (dir) await runCompose(['down', '--volumes', '--remove-orphans', '--timeout', '20'], 120_000);
  const leftovers = [...(await containers(`dan.network=${network}`)), ...(await containers(`com.docker.compose.project=${project}`))];
  if (leftovers.length > 0) await docker(['rm', '-f', ...new Set(leftovers)]);
  await docker(['network', 'rm', network]);
  const volumes = await docker(['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`]);
  const names = String(volumes.stdout).split('\n').filter(Boolean);
  if (names.length > 0) await docker(['volume', 'rm', '-f', ...names]);
  await model?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}

describe.skipIf(!compose)('docker compose: the network a newcomer starts', () => {
  beforeAll(async () => {
    images = await prepareImages();
    model = await ModelServer.start({ script: scenario('auto'), host: '0.0.0.0' });
    const modelPort = new URL(model.url).port;
    redisPort = await freePort();
    webPort = await freePort();

    dir = await mkdtemp(path.join(os.tmpdir(), 'dan-e2e-'));
    workspace = path.join(dir, 'workspace');
    // The folder as a newcomer's clone has it: what other tests or runs left there (a repository dan made of it,
    // owned by whoever ran them) is not part of it.
    await cp(path.join(ROOT, 'workspace'), workspace, { recursive: true, filter: (source) => !/[/\\]workspace[/\\](\.git|\.dan)([/\\]|$)/.test(source) });
    // Compose mounts ./agents (the templates) read-only into the orchestrator and its agents.
    await cp(path.join(ROOT, 'agents'), path.join(dir, 'agents'), { recursive: true });
    // Agents write as uid 1000 (setup-dev.sh does the same chown).
    if (process.getuid?.() === 0) await chown(workspace, 1000, 1000);
    else await chmod(workspace, 0o777);

    const socketGid = (await stat('/var/run/docker.sock').catch(() => undefined))?.gid ?? 0;
    await writeFile(
      path.join(dir, '.env'),
      [
        `ANTHROPIC_API_KEY=${modelKey}`,
        `ANTHROPIC_BASE_URL=http://host.docker.internal:${modelPort}`,
        `REDIS_PASSWORD=${password}`,
        `REDIS_URL=redis://:${password}@127.0.0.1:${redisPort}`,
        `DOCKER_GID=${socketGid}`,
        `COMPOSE_PROJECT_NAME=${project}`,
        `DAN_NETWORK=${network}`,
        `DAN_REDIS_PORT=${redisPort}`,
        `DAN_WEB_PORT=${webPort}`,
        `DAN_AGENT_IMAGE=${images.agent}`,
        `DAN_REDIS_IMAGE=${images.redis}`,
        'DAN_REAPER_MS=2000',
        '',
      ].join('\n'),
    );

    const up = await runCompose(['up', '-d', '--no-build']);
    if (up.exitCode !== 0) {
      const logs = await runCompose(['logs', '--no-color', '--tail', '50'], 60_000);
      throw new Error(`compose up failed: ${explain(up)}\n--- logs\n${String(logs.stdout)}`);
    }
  }, 900_000);

  afterAll(async () => {
    await cleanup();
  }, 300_000);

  it('the dan CLI on the host finds the compose Redis through .env in the current directory', async () => {
    dumpLogsOnFailure();
    // The CLI run from the directory holding .env, with no REDIS_URL or DAN_NETWORK of its own.
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const agents = await eventually(
      async () => {
        const result = await execa(process.execPath, ['--import', tsx, path.join(ROOT, 'bin/dan.ts'), 'agents', '--json'], {
          cwd: dir,
          env: { REDIS_URL: undefined, DAN_NETWORK: undefined, DAN_ENV_FILE: undefined, NO_COLOR: '1' },
          reject: false,
          timeout: 30_000,
        });
        if (result.exitCode !== 0) throw new Error(explain(result));
        const list = json<Array<{ id: string; role: string; alive: boolean }>>(result);
        return list.some((a) => a.role === 'main' && a.alive) && list;
      },
      { timeoutMs: 90_000, intervalMs: 1000, what: 'the orchestrator to register' },
    );
    expect(agents.filter((a) => a.role === 'main')).toHaveLength(1);
  }, 120_000);

  it('runs a backend task in an agent container: the file lands in ./workspace, logs show the tool, status names the agent', async () => {
    dumpLogsOnFailure();
    const sent = await dan(['send-task', 'backend', 'Write the file hello-e2e.txt with a greeting', '--wait', '--json'], 240_000);
    expect(sent.exitCode, explain(sent)).toBe(0);
    const record = json<{ id: string; status: string; agent: string }>(sent);
    expect(record.status).toBe('completed');
    expect(record.agent).toMatch(/^backend-/);

    expect(await readFile(path.join(workspace, 'hello-e2e.txt'), 'utf8')).toContain('Write the file hello-e2e.txt');

    const logs = await dan(['logs', '--task', record.id, '--no-follow', '-n', '1000']);
    expect(logs.exitCode, explain(logs)).toBe(0);
    // Written in the task's worktree, then merged into ./workspace (checked above).
    expect(String(logs.stdout)).toMatch(/tool_use\s+Write \/workspace\/\.dan\/worktrees\/\w+\/hello-e2e\.txt/);
    expect(String(logs.stdout)).toMatch(/merged dan\/\w+ into main/);

    const status = await dan(['status', record.id]);
    expect(status.exitCode, explain(status)).toBe(0);
    expect(String(status.stdout)).toMatch(/^status\s+completed/m);
    expect(String(status.stdout)).toMatch(new RegExp(`^agent\\s+${record.agent}$`, 'm'));

    const agents = await dan(['agents', '--json']);
    expect(agents.exitCode, explain(agents)).toBe(0);
    expect(json<Array<{ id: string; role: string; domain: string; runtime: string }>>(agents)).toContainEqual(
      expect.objectContaining({ id: record.agent, role: 'domain', domain: 'backend', runtime: 'docker' }),
    );

    // The agent is a container on the compose network: non-root, no Docker socket, the workspace bind-mounted.
    const [id] = await containers(`dan.agent-id=${record.agent}`);
    expect(id, `no container labelled dan.agent-id=${record.agent}`).toBeDefined();
    const [info] = json<Array<{ Config: { User: string; Env: string[]; Labels: Record<string, string> }; HostConfig: { CapAdd?: string[] }; Mounts: Array<{ Source: string; Destination: string; RW: boolean }>; NetworkSettings: { Networks: Record<string, unknown> } }>>(
      await docker(['inspect', id!]),
    );
    // Root with SETUID, SETGID and KILL only: the image's entrypoint drops to uid 1000 at once, and the CLI runs as 1001.
    expect(info!.Config.User).toBe('0:0');
    expect(info!.HostConfig.CapAdd?.sort()).toEqual(['KILL', 'SETGID', 'SETUID']);
    expect(info!.Config.Env.some((e) => e.startsWith('REDIS_URL=') || e.startsWith('ANTHROPIC_API_KEY='))).toBe(false);
    expect(info!.Config.Labels['dan.network']).toBe(network);
    expect(Object.keys(info!.NetworkSettings.Networks)).toEqual([network]);
    // The workspace writable, the templates (./agents, so a new domain needs no rebuild) read-only, nothing else.
    // In any order: docker inspect lists mounts in no set order.
    expect(info!.Mounts.map((m) => [m.Source, m.Destination, m.RW]).sort()).toEqual([
      [path.join(dir, 'agents'), '/templates', false],
      [workspace, '/workspace', true],
    ].sort());
  }, 300_000);

  it('a domain added with `dan domain new` takes tasks at once: no image rebuild, no orchestrator restart', async () => {
    dumpLogsOnFailure();
    const templates = path.join(dir, 'agents');
    const made = await runDan(['domain', 'new', 'data'], { DAN_TEMPLATES: templates, DAN_ENV_FILE: '' });
    expect(made.exitCode, explain(made)).toBe(0);
    const sent = await dan(['send-task', 'data', 'Write the file data-e2e.txt with a greeting', '--wait', '--strict', '--json'], 240_000, { DAN_TEMPLATES: templates });
    expect(sent.exitCode, explain(sent)).toBe(0);
    const record = json<{ status: string; agent: string; warnings?: string[] }>(sent);
    expect(record).toMatchObject({ status: 'completed' });
    expect(record.warnings).toBeUndefined();
    expect(record.agent).toMatch(/^data-/);
    expect(await readFile(path.join(workspace, 'data-e2e.txt'), 'utf8')).toContain('Write the file data-e2e.txt');
  }, 300_000);

  it('plans a main goal into backend and frontend subtasks that both complete', async () => {
    dumpLogsOnFailure();
    const sent = await dan(['send-task', 'main', 'Build a sign-up page with its API', '--wait', '--json'], 300_000);
    expect(sent.exitCode, explain(sent)).toBe(0);
    const parent = json<{ id: string; status: string; children?: string[] }>(sent);
    expect(parent.status).toBe('completed');

    const status = await dan(['status', parent.id, '--json']);
    expect(status.exitCode, explain(status)).toBe(0);
    const children = json<{ children?: string[] }>(status).children ?? [];
    expect(children.length).toBeGreaterThanOrEqual(2);
    const records = await Promise.all(
      children.map(async (child) => {
        const result = await dan(['status', child, '--json']);
        expect(result.exitCode, explain(result)).toBe(0);
        return json<{ id: string; domain: string; status: string }>(result);
      }),
    );
    for (const child of records) expect(child, `subtask ${child.id} (${child.domain})`).toMatchObject({ status: 'completed' });
    expect(new Set(records.map((r) => r.domain))).toEqual(new Set(['backend', 'frontend']));
  }, 360_000);

  it('serves the dashboard and the API on 127.0.0.1:DAN_WEB_PORT, reading the same network', async () => {
    dumpLogsOnFailure();
    const base = `http://127.0.0.1:${webPort}`;
    await eventually(async () => (await fetch(`${base}/readyz`)).ok, { what: 'the web service to be ready', timeoutMs: 60_000 });
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
    const { tasks } = (await (await fetch(`${base}/api/tasks`)).json()) as { tasks: Array<{ domain: string }> };
    expect(tasks.length).toBeGreaterThan(0); // the tasks the tests above sent through the CLI
    const { agents } = (await (await fetch(`${base}/api/agents`)).json()) as { agents: Array<{ role: string }> };
    expect(agents.some((a) => a.role === 'main')).toBe(true);
  });

  it('docker compose down stops the orchestrator and every agent it spawned, and removes the network', async () => {
    dumpLogsOnFailure();
    expect((await containers(`dan.network=${network}`)).length, 'agents still idle before down').toBeGreaterThan(0);

    const down = await runCompose(['down', '--volumes'], 180_000);
    expect(down.exitCode, explain(down)).toBe(0);

    expect(await containers(`dan.network=${network}`)).toEqual([]);
    expect(await containers(`com.docker.compose.project=${project}`)).toEqual([]);
    expect((await docker(['network', 'inspect', network])).exitCode).not.toBe(0);
  }, 240_000);
});
