import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runDan } from '../helpers/cli.js';
import { createRedis, ensureRoleUsers, Keys, roleUrl, roleUser, RunGate } from '../../lib/messaging/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { deleteNetworkKeys, redisUrl, uniqueNetwork } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';

// `dan doctor` as a user runs it: the real CLI against the test Redis, the repository's claude binary and
// templates, a temporary workspace. Docker is only needed by the docker runtime, so these checks never ask
// for an engine: an unreachable one is a closed port on loopback.

const SECRET = 'sk-ant-api03-doctor-never-prints-this-0123456789';
let workspace: string;

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The environment of a healthy process-runtime machine; `extra` on top ('' unsets a variable). */
const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  REDIS_URL: redisUrl(),
  DAN_NETWORK: uniqueNetwork('doctor'),
  DAN_RUNTIME: 'process',
  DAN_WORKSPACE: workspace,
  DAN_CLAUDE_BIN: '',
  DAN_TEMPLATES: '',
  ANTHROPIC_API_KEY: SECRET,
  ANTHROPIC_AUTH_TOKEN: '',
  ANTHROPIC_BASE_URL: '',
  CLAUDE_CODE_USE_BEDROCK: '',
  CLAUDE_CODE_USE_VERTEX: '',
  CLAUDE_CODE_OAUTH_TOKEN: '',
  GOOGLE_APPLICATION_CREDENTIALS: '',
  AWS_PROFILE: '',
  ...extra,
});

interface Report {
  ok: boolean;
  checks: { name: string; status: 'ok' | 'warn' | 'fail'; found: string; fix?: string }[];
}

async function doctor(args: string[], extra: Record<string, string> = {}) {
  const result = await runDan(['doctor', ...args], env(extra));
  const stdout = String(result.stdout);
  const stderr = String(result.stderr);
  expect(`${stdout}\n${stderr}`).not.toContain(SECRET);
  return { exitCode: result.exitCode, stdout, stderr, lines: stdout.split('\n').filter((l) => l.length > 0) };
}

async function doctorJson(args: string[], extra: Record<string, string> = {}): Promise<{ exitCode: number | undefined; report: Report }> {
  const result = await doctor(['--json', ...args], extra);
  return { exitCode: result.exitCode, report: JSON.parse(result.stdout) as Report };
}

const line = (lines: string[], name: string): string | undefined => lines.find((l) => l.slice(5).startsWith(`${name} `));

beforeAll(async () => {
  workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-doctor-ws-'));
});

afterAll(async () => {
  await rm(workspace, { recursive: true, force: true });
});

describe('dan doctor', () => {
  it('on a healthy machine prints one line per check, none FAIL, and exits 0', async () => {
    const { exitCode, lines, stderr } = await doctor([]);
    expect(exitCode, `${lines.join('\n')}\n${stderr}`).toBe(0);
    for (const name of ['redis', 'redis eviction', 'redis memory', 'redis persistence', 'docker', 'claude', 'api key', 'templates', 'workspace']) {
      expect(line(lines, name), `a line for ${name} in:\n${lines.join('\n')}`).toBeDefined();
    }
    expect(lines.every((l) => /^(ok|warn|FAIL) /.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('FAIL'))).toBe(false);
    expect(line(lines, 'redis')).toMatch(/^ok +redis +Redis \d+\.\d+\.\d+ at redis:\/\//);
    expect(line(lines, 'claude')).toMatch(/^ok +claude +\d+\.\d+\.\d+ \(Claude Code\) at .*node_modules\/\.bin\/claude$/);
    expect(line(lines, 'api key')).toMatch(/^ok +api key +ANTHROPIC_API_KEY is set$/);
    expect(line(lines, 'templates')).toMatch(/backend.*frontend/);
    expect(line(lines, 'workspace')).toBe(`ok   workspace         ${workspace} (writable)`);
  });

  it('names the Redis URL it cannot reach in a FAIL line with the fix, hides its password, and exits 1', async () => {
    const port = await closedPort();
    const { exitCode, lines } = await doctor([], { REDIS_URL: `redis://:hunter2@127.0.0.1:${port}` });
    expect(exitCode).toBe(1);
    const redis = line(lines, 'redis');
    // The line names the URL and the real reason the connection failed.
    expect(redis).toMatch(
      new RegExp(`^FAIL redis +cannot reach redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\) → \`dan up\` starts a local redis-server here .*REDIS_URL`),
    );
    expect(lines.join('\n')).not.toContain('hunter2');
    // The other checks still run and report.
    expect(line(lines, 'claude')).toMatch(/^ok /);
    expect(line(lines, 'redis eviction')).toBeUndefined();
  });

  it('warns when Redis has no maxmemory, and when 80% of it is used; says ok below that', async () => {
    // A Redis of its own: the shared one's settings are not this test's to change.
    const server = await RedisServer.start();
    const redis = createRedis(server.url(), { name: 'doctor-memory' });
    try {
      const memory = async () => (await doctorJson([], { REDIS_URL: server.url() })).report.checks.find((c) => c.name === 'redis memory');
      expect(await memory()).toMatchObject({ status: 'warn', found: expect.stringMatching(/no maxmemory/) });
      // What it holds: what it used before, plus the value (the writing connection's query buffer is freed later).
      const before = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
      await redis.set('doctor-fill', 'x'.repeat(2_000_000));
      const used = before + Number(await redis.memory('USAGE', 'doctor-fill'));
      await redis.config('SET', 'maxmemory', String(used * 4));
      expect(await memory()).toMatchObject({ status: 'ok', found: expect.stringMatching(/ of [\d.]+ MB maxmemory used \(\d+%\)$/) });
      // What it holds is 90% of the new limit (doctor only reads, so a nearly full Redis serves it).
      await redis.config('SET', 'maxmemory', String(Math.round(used / 0.9)));
      const full = await memory();
      expect(full).toMatchObject({ status: 'warn', fix: expect.stringMatching(/DAN_RETENTION_DAYS/) });
      expect(Number(/\((\d+)%\)/.exec(full!.found)?.[1])).toBeGreaterThanOrEqual(80);
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });

  it('says plainly that a Redis without a password has no roles, and that the process runtime shares the uid with the CLI', async () => {
    const { report } = await doctorJson([]);
    expect(report.checks.find((c) => c.name === 'redis roles')).toMatchObject({ status: 'warn', found: expect.stringMatching(/^Redis has no password: there are no roles/) });
    expect(report.checks.find((c) => c.name === 'cli isolation')).toMatchObject({ status: 'warn', found: expect.stringMatching(/the CLI runs as the agent's own uid/) });
  });

  it("reports the users it and the CLI connect as, and checks that the role users are refused admin commands", async () => {
    const password = 'doctor-admin-password';
    const server = await RedisServer.start({ password });
    const network = uniqueNetwork('doctor');
    const admin = createRedis(server.url(), { name: 'doctor-roles' });
    try {
      const roles = async (url: string) => (await doctorJson([], { REDIS_URL: url, DAN_NETWORK: network })).report.checks.find((c) => c.name === 'redis roles');
      expect(await roles(server.url())).toMatchObject({ status: 'warn', found: `connected as default; no user ${roleUser(network, 'agent')} yet: agents would get this credential` });
      await ensureRoleUsers(admin, server.url(), network);
      expect(await roles(server.url())).toMatchObject({
        status: 'ok',
        found: `connected as default; the CLI and dan serve connect as ${roleUser(network, 'client')}, agents as ${roleUser(network, 'agent')}, both refused FLUSHALL, CONFIG, KEYS, ACL, SHUTDOWN, SET and other networks' keys`,
      });
      // As the client role (what `dan status` uses): it cannot look at the agents' user, as it should not.
      const client = await roles(roleUrl(server.url(), server.url(), network, 'client')!);
      expect(client).toMatchObject({ status: 'ok', found: expect.stringMatching(new RegExp(`^connected as ${roleUser(network, 'client')} \\(what the CLI uses\\), which cannot inspect`)) });
      // A role user someone widened is a failure.
      await admin.call('ACL', 'SETUSER', roleUser(network, 'client'), '+config|get');
      expect(await roles(server.url())).toMatchObject({ status: 'fail', found: `connected as default; ${roleUser(network, 'client')} may run CONFIG` });
      await admin.call('ACL', 'SETUSER', roleUser(network, 'agent'), '+flushall');
      expect(await roles(server.url())).toMatchObject({ status: 'fail', found: expect.stringMatching(new RegExp(`${roleUser(network, 'agent')} may run FLUSHALL, ${roleUser(network, 'client')} may run CONFIG$`)) });
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });

  it('names the orchestrators that run on the network', async () => {
    const network = uniqueNetwork('doctor');
    const redis = createRedis(redisUrl(), { name: 'doctor-test' });
    const registry = new AgentRegistry(redis, new Keys(`${network}:`), { heartbeatTtlMs: 30_000 });
    try {
      await registry.register({ id: 'orchestrator-test1', role: 'main', domain: 'main', runtime: 'process' });
      const { report } = await doctorJson([], { DAN_NETWORK: network });
      expect(report.checks.find((c) => c.name === 'orchestrator')).toMatchObject({
        status: 'ok',
        found: `1 running on network "${network}" (orchestrator-test1)`,
      });
    } finally {
      await deleteNetworkKeys(redisUrl(), `${network}:`);
      redis.disconnect();
    }
  });

  it("says which token is paused until when after a usage limit, and when the daily budget holds tasks", async () => {
    const network = uniqueNetwork('doctor');
    const redis = createRedis(redisUrl(), { name: 'doctor-test' });
    const gate = new RunGate(redis, new Keys(`${network}:`));
    try {
      const fresh = (await doctorJson([], { DAN_NETWORK: network })).report.checks.find((c) => c.name === 'limits');
      expect(fresh).toMatchObject({ status: 'ok', found: 'no pause; $0.00 spent today (no daily budget); 0 CLIs running, no DAN_MAX_RUNNING cap' });

      const until = Date.UTC(2031, 0, 1, 14, 5);
      await gate.pause('token:1', { kind: 'usage_limit', resetsAt: until, message: "You've hit your session limit" });
      await gate.pause('token:2', { kind: 'unauthorized', message: 'Failed to authenticate' });
      await gate.publishLimits({ dailyBudgetUsd: 1 });
      await gate.addSpend('backend', 1.25);
      const held = (await doctorJson([], { DAN_NETWORK: network })).report.checks.find((c) => c.name === 'limits');
      // A reset years ahead is believed for a week at most: only the form of the time is certain.
      expect(held).toMatchObject({ status: 'warn', found: expect.stringMatching(/^subscription token #1 paused until \d\d:\d\d UTC \(usage limit\); subscription token #2 is bad: the API rejected it \(401\), not used until \d\d:\d\d UTC; daily budget reached: \$1\.25 of \$1\.00 spent today \(DAN_DAILY_BUDGET_USD\)/) });
    } finally {
      await deleteNetworkKeys(redisUrl(), `${network}:`);
      redis.disconnect();
    }
  });

  it('prints a JSON report with --json', async () => {
    const { exitCode, report } = await doctorJson([]);
    expect(exitCode).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(['redis', 'orchestrator', 'redis eviction', 'redis memory', 'redis roles', 'limits', 'redis persistence', 'docker', 'claude', 'cli isolation', 'api key', 'templates', 'workspace', 'repository']);
    // A fresh network has no orchestrator: tasks would stay queued, and doctor says so.
    expect(report.checks[1]).toMatchObject({ name: 'orchestrator', status: 'warn', fix: 'dan up (or docker compose up -d)' });
    expect(report.checks[1]!.found).toMatch(/^none running on network "dan-doctor-/);
    expect(report.checks.every((c) => c.status !== 'fail')).toBe(true);
    expect(report.checks.filter((c) => c.status === 'warn').every((c) => typeof c.fix === 'string' && c.fix.length > 0)).toBe(true);

    // --redis-url wins over the (healthy) REDIS_URL.
    const port = await closedPort();
    const failing = await doctorJson(['--redis-url', `redis://127.0.0.1:${port}`]);
    expect(failing.exitCode).toBe(1);
    expect(failing.report.ok).toBe(false);
    expect(failing.report.checks[0]).toMatchObject({
      name: 'redis',
      status: 'fail',
      found: `cannot reach redis://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port})`,
    });
  });

  it('fails without any way to reach a model, and accepts a base URL for a local endpoint instead of a key', async () => {
    const none = await doctor([], { ANTHROPIC_API_KEY: '' });
    expect(none.exitCode).toBe(1);
    expect(line(none.lines, 'api key')).toMatch(/^FAIL api key +no way to reach a model: none of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN,.* → export ANTHROPIC_API_KEY=/);

    const local = await doctor([], { ANTHROPIC_API_KEY: '', ANTHROPIC_BASE_URL: 'http://proxy-user:proxy-pass@127.0.0.1:4010' });
    expect(local.exitCode).toBe(0);
    expect(line(local.lines, 'api key')).toBe('ok   api key           no key, but ANTHROPIC_BASE_URL http://proxy-user:***@127.0.0.1:4010 (a local or proxied endpoint)');

    const token = await doctor([], { ANTHROPIC_API_KEY: '', ANTHROPIC_AUTH_TOKEN: SECRET });
    expect(token.exitCode).toBe(0);
    expect(line(token.lines, 'api key')).toMatch(/ANTHROPIC_AUTH_TOKEN is set$/);
  });

  it('accepts a subscription token pool, Bedrock or Vertex, and says which is in use without a secret', async () => {
    const pool = await doctor([], { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: `${SECRET}-a,${SECRET}-b`, DAN_AGENTS_PER_TOKEN: '3' });
    expect(pool.exitCode).toBe(0);
    expect(line(pool.lines, 'api key')).toMatch(/^ok +api key +subscription: CLAUDE_CODE_OAUTH_TOKEN holds 2 tokens, at most 3 agents each$/);

    const both = await doctor([], { CLAUDE_CODE_OAUTH_TOKEN: `${SECRET}-a` });
    expect(line(both.lines, 'api key')).toMatch(/^warn +api key +ANTHROPIC_API_KEY is set; ANTHROPIC_API_KEY wins over CLAUDE_CODE_OAUTH_TOKEN/);

    const bedrock = await doctor([], { ANTHROPIC_API_KEY: '', CLAUDE_CODE_USE_BEDROCK: '1', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIADOCTORTEST', AWS_SECRET_ACCESS_KEY: SECRET });
    expect(bedrock.exitCode).toBe(0);
    expect(line(bedrock.lines, 'api key')).toMatch(/^ok +api key +Amazon Bedrock \(CLAUDE_CODE_USE_BEDROCK\) in eu-west-1 with AWS_ACCESS_KEY_ID$/);
    const noRegion = await doctor([], { ANTHROPIC_API_KEY: '', CLAUDE_CODE_USE_BEDROCK: '1', AWS_REGION: '', AWS_BEARER_TOKEN_BEDROCK: SECRET });
    expect(noRegion.exitCode).toBe(1);
    expect(line(noRegion.lines, 'api key')).toMatch(/^FAIL api key .*AWS_REGION is not.* → export AWS_REGION=/);

    const keyFile = path.join(workspace, 'vertex-key.json');
    await writeFile(keyFile, '{}');
    const vertex = await doctor([], { ANTHROPIC_API_KEY: '', CLAUDE_CODE_USE_VERTEX: '1', ANTHROPIC_VERTEX_PROJECT_ID: 'proj-1', CLOUD_ML_REGION: 'us-east5', GOOGLE_APPLICATION_CREDENTIALS: keyFile });
    expect(vertex.exitCode).toBe(0);
    expect(line(vertex.lines, 'api key')).toMatch(/^ok +api key +Google Vertex AI \(CLAUDE_CODE_USE_VERTEX\), project proj-1 in us-east5 with GOOGLE_APPLICATION_CREDENTIALS$/);
  });

  it('refuses a credentials file that does not exist and a malformed token list, in one line', async () => {
    const missing = await doctor([], { CLAUDE_CODE_USE_VERTEX: '1', ANTHROPIC_VERTEX_PROJECT_ID: 'p', CLOUD_ML_REGION: 'r', GOOGLE_APPLICATION_CREDENTIALS: path.join(workspace, 'no-such-key.json') });
    expect(missing.exitCode).toBe(1);
    expect(line(missing.lines, 'config')).toMatch(/^FAIL config +GOOGLE_APPLICATION_CREDENTIALS=".*no-such-key.json" does not exist/);
    const malformed = await doctor([], { CLAUDE_CODE_OAUTH_TOKEN: `${SECRET},,other-token` });
    expect(malformed.exitCode).toBe(1);
    expect(line(malformed.lines, 'config')).toMatch(/^FAIL config +CLAUDE_CODE_OAUTH_TOKEN=\(hidden\) is invalid: must be one token, or several separated by commas/);
  });

  it('fails when the claude binary does not run, naming it', async () => {
    const missing = path.join(workspace, 'no-such-claude');
    const { exitCode, lines } = await doctor([], { DAN_CLAUDE_BIN: missing });
    expect(exitCode).toBe(1);
    expect(line(lines, 'claude')).toMatch(new RegExp(`^FAIL claude +${missing} does not run: .* → npm install .*DAN_CLAUDE_BIN`));
  });

  it('fails when the templates hold no domain', async () => {
    const { exitCode, lines } = await doctor([], { DAN_TEMPLATES: workspace });
    expect(exitCode).toBe(1);
    expect(line(lines, 'templates')).toMatch(new RegExp(`^FAIL templates +no domains in ${workspace}/domain-templates → set DAN_TEMPLATES`));
  });

  it('warns, without failing, when the workspace does not exist yet', async () => {
    const later = path.join(workspace, 'not-yet');
    const { exitCode, lines } = await doctor([], { DAN_WORKSPACE: later });
    expect(exitCode).toBe(0);
    expect(line(lines, 'workspace')).toMatch(new RegExp(`^warn workspace +${later} does not exist → mkdir -p ${later}`));
  });

  it('needs Docker only for the docker runtime: an unreachable engine fails it, and only it', async () => {
    const dockerHost = `tcp://127.0.0.1:${await closedPort()}`;
    const processRuntime = await doctor([], { DOCKER_HOST: dockerHost });
    expect(processRuntime.exitCode).toBe(0);
    expect(line(processRuntime.lines, 'docker')).toMatch(/^ok +docker +not needed by the process runtime; no Docker engine answers/);
    expect(line(processRuntime.lines, 'agent image')).toBeUndefined();

    const docker = await doctor(['--runtime', 'docker'], { DOCKER_HOST: dockerHost });
    expect(docker.exitCode).toBe(1);
    expect(line(docker.lines, 'docker')).toMatch(new RegExp(`^FAIL docker +no Docker engine answers at ${dockerHost} .* → start the engine`));
    expect(line(docker.lines, 'agent image')).toMatch(/^FAIL agent image +cannot look for dan-agent:latest without an engine/);
  });

  it('for the docker runtime, fails a bind-mounted workspace that uid 1000 cannot write to, or that is missing', async () => {
    const dir = await mkdtemp(path.join(workspace, 'bind-'));
    await chmod(dir, 0o755);
    // DAN_RUNTIME=docker here (the test above used --runtime): the same checks either way.
    const noEngine = { DOCKER_HOST: `tcp://127.0.0.1:${await closedPort()}`, DAN_WORKSPACE_VOLUME: dir, DAN_RUNTIME: 'docker' };
    const owner = (await stat(dir)).uid;
    const locked = await doctor([], noEngine);
    expect(line(locked.lines, 'workspace')).toMatch(
      owner === 1000 ? /^ok / : new RegExp(`^FAIL workspace +${dir} is owned by uid ${owner}: agents \\(uid 1000\\) cannot write there → chown -R 1000:1000 ${dir}$`),
    );

    await chmod(dir, 0o777);
    const open = await doctor([], noEngine);
    expect(line(open.lines, 'workspace')).toBe(`ok   workspace         ${dir} (bind mount, writable by uid 1000)`);

    const missing = await doctor([], { ...noEngine, DAN_WORKSPACE_VOLUME: `${dir}-gone` });
    expect(line(missing.lines, 'workspace')).toMatch(new RegExp(`^FAIL workspace +${dir}-gone does not exist → mkdir -p ${dir}-gone && chown 1000:1000`));

    // Inside the compose orchestrator the host path is not visible; the same directory is mounted at DAN_WORKSPACE.
    const hostPath = '/srv/not-on-this-machine/workspace';
    const inContainer = { ...noEngine, DAN_IN_CONTAINER: '1', DAN_WORKSPACE_VOLUME: hostPath, DAN_WORKSPACE: dir };
    expect(line((await doctor([], inContainer)).lines, 'workspace')).toBe(
      `ok   workspace         ${hostPath} (mounted here at ${dir}) (bind mount, writable by uid 1000)`,
    );
    const unmounted = await doctor([], { ...inContainer, DAN_WORKSPACE: `${dir}-gone` });
    expect(line(unmounted.lines, 'workspace')).toBe(
      `FAIL workspace         ${hostPath} (mounted here at ${dir}-gone) is not mounted → mount ${hostPath} at ${dir}-gone (docker-compose.yml does)`,
    );
  });

  it("matches each fix to how the network is run: compose's Redis, dan up's, or one elsewhere", async () => {
    const port = await closedPort();
    const local = await doctor([], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(line(local.lines, 'redis')).toBe(
      `FAIL redis             cannot reach redis://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}) → \`dan up\` starts a local redis-server here (apt-get install redis-server if it is missing), or point REDIS_URL / --redis-url at yours`,
    );
    // A .env from setup-dev.sh names the compose Redis's password: compose runs this network.
    const compose = await doctor([], { REDIS_URL: `redis://:pw@127.0.0.1:${port}`, REDIS_PASSWORD: 'pw' });
    expect(line(compose.lines, 'redis')).toMatch(/→ start compose's Redis: `docker compose start redis` \(docker-compose with v1\), or `docker compose up -d`/);
    expect(compose.stdout).not.toMatch(/docker run|redis:7/);
    const elsewhere = await doctor([], { REDIS_URL: 'redis://redis.invalid:6379' });
    expect(line(elsewhere.lines, 'redis')).toMatch(/→ check that Redis runs at redis:\/\/redis\.invalid:6379/);
  });

  it('on a host (even one with /.dockerenv) checks ./workspace, as compose bind-mounts it, never /workspace', async () => {
    const noEngine = { DOCKER_HOST: `tcp://127.0.0.1:${await closedPort()}`, DAN_RUNTIME: 'docker', DAN_WORKSPACE: '', DAN_WORKSPACE_VOLUME: '' };
    const compose = await doctor([], { ...noEngine, REDIS_PASSWORD: 'pw' });
    // runDan runs in the repository, whose ./workspace compose mounts into its agents.
    expect(line(compose.lines, 'workspace')).toMatch(new RegExp(`^(ok|FAIL) +workspace +${path.join(repoRoot(), 'workspace')} `));
    const processRuntime = await doctor([], { DAN_WORKSPACE: '' });
    expect(line(processRuntime.lines, 'workspace')).not.toMatch(/ \/workspace/);
    expect(line(processRuntime.lines, 'workspace')).toMatch(new RegExp(`${path.join(repoRoot(), 'workspace')}`));
  });

  it('reports a bad setting as a FAIL line naming the variable', async () => {
    const { exitCode, lines } = await doctor([], { DAN_HEARTBEAT_MS: 'soon' });
    expect(exitCode).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^FAIL config +DAN_HEARTBEAT_MS="soon" is invalid: .* → fix or unset DAN_HEARTBEAT_MS$/);
  });

  it('rejects an unknown runtime as bad input (exit 2)', async () => {
    const { exitCode, stderr } = await doctor(['--runtime', 'kubernetes']);
    expect(exitCode).toBe(2);
    expect(stderr).toMatch(/--runtime must be process or docker/);
  });
});
