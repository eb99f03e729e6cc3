import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { ModelServer, scenario } from '../fixtures/model-server.js';
import { repoRoot } from '../helpers/cli.js';
import { uniqueNetwork } from '../helpers/network.js';

/**
 * A newcomer's first hour (#17), as the README tells it, on a fresh clone of this repository: the first set-up
 * command (`scripts/setup-dev.sh && docker compose up -d`) with no registry reachable (the air-gapped path, which
 * setup-dev.sh takes by itself), a task sent and completed, a domain added with `dan domain new` taking a task at
 * once, and `docker compose down` leaving nothing of the network behind.
 *
 * Isolated from the machine's own dan: its own compose project, network, Redis port and agent image tag (given in
 * the environment, which wins over .env as compose and build-image.sh read it), and npm's global folder in a
 * temporary directory, so `npm link` does not replace a user's `dan`.
 */

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
if (!compose && process.env.CI === 'true') throw new Error('the newcomer test must run in CI: no Docker engine or compose answers');
if (!compose) console.warn('[newcomer] not run: no Docker engine, or neither `docker compose` nor `docker-compose` answers');

const network = uniqueNetwork('newcomer');
const image = `dan-agent:${network}`;
let clone = '';
let npmPrefix = '';
let redisPort = 0;
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

const docker = (args: string[]): Promise<Result> => execa('docker', args, { reject: false, timeout: 120_000 });
const explain = (r: Result): string => `exit ${r.exitCode}\n--- stdout\n${String(r.stdout).slice(-4000)}\n--- stderr\n${String(r.stderr).slice(-4000)}`;

/** The newcomer's shell in the clone: only what a user's shell has, plus this run's isolation. */
function shellEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'DOCKER_HOST', 'LANG'];
  const env: Record<string, string> = {};
  for (const name of keep) if (process.env[name]) env[name] = process.env[name]!;
  return {
    ...env,
    PATH: `${path.join(npmPrefix, 'bin')}:${env.PATH ?? ''}`,
    PWD: clone,
    NO_COLOR: '1',
    npm_config_prefix: npmPrefix,
    ANTHROPIC_API_KEY: 'sk-dan-newcomer-not-a-real-key',
    ANTHROPIC_BASE_URL: `http://host.docker.internal:${new URL(model!.url).port}`,
    COMPOSE_PROJECT_NAME: network.replace(/[^a-z0-9_-]/g, ''),
    DAN_NETWORK: network,
    DAN_REDIS_PORT: String(redisPort),
    DAN_AGENT_IMAGE: image,
  };
}

const sh = (cmd: string, args: string[], timeoutMs = 600_000, extra: Record<string, string> = {}): Promise<Result> =>
  execa(cmd, args, { cwd: clone, env: { ...shellEnv(), ...extra }, extendEnv: false, reject: false, timeout: timeoutMs, all: true });
const runCompose = (args: string[]): Promise<Result> => sh(compose![0]!, [...compose!.slice(1), ...args], 300_000);

/** `dan` as the newcomer types it: the command npm link put on PATH, reaching the compose Redis through .env's password. */
async function dan(args: string[], timeoutMs = 300_000): Promise<Result> {
  const password = /^REDIS_PASSWORD=(.*)$/m.exec(await readFile(path.join(clone, '.env'), 'utf8'))?.[1] ?? '';
  return sh('dan', args, timeoutMs, { REDIS_URL: `redis://:${password}@127.0.0.1:${redisPort}` });
}

async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const label of [`dan.network=${network}`, `com.docker.compose.project=${shellEnv().COMPOSE_PROJECT_NAME}`]) {
    found.push(...String((await docker(['ps', '-aq', '--filter', `label=${label}`])).stdout).split('\n').filter(Boolean).map((id) => `container ${id}`));
    found.push(...String((await docker(['volume', 'ls', '-q', '--filter', `label=${label}`])).stdout).split('\n').filter(Boolean).map((v) => `volume ${v}`));
  }
  if ((await docker(['network', 'inspect', network])).exitCode === 0) found.push(`network ${network}`);
  return found;
}

afterAll(async () => {
  if (clone && compose) await runCompose(['down', '--volumes', '--remove-orphans', '--timeout', '20']);
  for (const item of await leftovers()) {
    const [kind, id] = item.split(' ');
    await docker(kind === 'container' ? ['rm', '-f', id!] : [kind!, 'rm', id!]);
  }
  await docker(['image', 'rm', '-f', image]);
  await model?.close();
  for (const dir of [clone, npmPrefix]) if (dir) await rm(dir, { recursive: true, force: true });
}, 300_000);

describe.skipIf(!compose)("a newcomer's first hour, as the README says it", () => {
  it('two set-up commands on a fresh clone with no registry, a task, a domain of their own, and down leaves nothing', { timeout: 1_500_000 }, async () => {
    onTestFailed(async () => {
      const logs = await runCompose(['logs', '--no-color', '--tail', '60']);
      console.error(`[newcomer] compose logs:\n${String(logs.stdout).slice(-6000)}`);
    });
    model = await ModelServer.start({ script: scenario('auto'), host: '0.0.0.0' });
    redisPort = await freePort();
    const parent = await mkdtemp(path.join(os.tmpdir(), 'dan-newcomer-'));
    clone = path.join(parent, 'dan');
    npmPrefix = await mkdtemp(path.join(os.tmpdir(), 'dan-newcomer-npm-'));
    const cloned = await execa('git', ['clone', '-q', repoRoot(), clone], { reject: false });
    expect(cloned.exitCode, explain(cloned)).toBe(0);

    // 1. scripts/setup-dev.sh && docker compose up -d
    const setup = await sh('scripts/setup-dev.sh', [], 1_200_000);
    expect(setup.exitCode, explain(setup)).toBe(0);
    const env = await readFile(path.join(clone, '.env'), 'utf8');
    const pulls = (await docker(['pull', '-q', 'redis:7-alpine'])).exitCode === 0;
    if (!pulls) expect(env).toMatch(/^DAN_REDIS_IMAGE=dan-airgap\/redis:7$/m); // written by setup-dev.sh, not by hand
    expect(String(setup.all)).toMatch(/npm link: dan is on PATH/);
    // npm ci left the committed lock as it was.
    expect(String((await sh('git', ['status', '--porcelain'])).stdout)).toBe('');
    const up = await runCompose(['up', '-d', '--no-build']);
    expect(up.exitCode, explain(up)).toBe(0);

    // 2. a task, as the walk-through sends it
    const sent = await dan(['send-task', 'backend', 'Write the file hello.txt with a friendly greeting', '--wait']);
    expect(sent.exitCode, explain(sent)).toBe(0);
    expect(String(sent.stdout)).toMatch(/\nresult\n/);
    expect(await readFile(path.join(clone, 'workspace', 'hello.txt'), 'utf8')).toContain('hello.txt');

    // 3. a domain of their own: one command, no rebuild, no restart; its writes are allowed
    const made = await dan(['domain', 'new', 'data']);
    expect(made.exitCode, explain(made)).toBe(0);
    const data = await dan(['send-task', 'data', 'Write the file data.txt listing three datasets', '--wait', '--strict']);
    expect(data.exitCode, explain(data)).toBe(0);
    expect(await readFile(path.join(clone, 'workspace', 'data.txt'), 'utf8')).toContain('data.txt');

    // 4. docker compose down: nothing of the network is left
    const down = await runCompose(['down', '--volumes']);
    expect(down.exitCode, explain(down)).toBe(0);
    expect(await leftovers()).toEqual([]);
  });
});
