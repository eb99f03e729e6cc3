import { constants as fs, existsSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { describeAccess, readAccessState } from '../../lib/access-state.js';
import { accessMethod, NO_ACCESS } from '../../lib/access.js';
import type { DanConfig } from '../../lib/config.js';
import { domainTemplateDir, listDomains, mainTemplateDir } from '../../lib/domains.js';
import { ConfigError, redactUrl } from '../../lib/errors.js';
import { connectRedis, Keys, roleUser, RunGate, urlPassword, whoAmI, type Redis } from '../../lib/messaging/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { Git, integrationBranch } from '../../lib/workspace/index.js';
import { clientConfig, configFrom, parseFlag, type ConnectionFlags } from '../context.js';
import { c } from '../output.js';

/** One finding of `dan doctor`: what was checked, what was found, and how to fix it when it is not ok. */
export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  found: string;
  fix?: string;
}

const runtimeSchema = z.enum(['process', 'docker'], { error: 'must be process or docker' });
/** How long one probe (Redis, Docker, the claude binary) may take before it counts as failed. */
const PROBE_TIMEOUT_MS = 5000;
/** BullMQ refuses Redis below 5.0.0 and recommends 6.2.0 or later. */
const REDIS_MINIMUM = [5, 0, 0];
const REDIS_RECOMMENDED = [6, 2, 0];

const ok = (name: string, found: string): Check => ({ name, status: 'ok', found });
const warn = (name: string, found: string, fix: string): Check => ({ name, status: 'warn', found, fix });
const fail = (name: string, found: string, fix: string): Check => ({ name, status: 'fail', found, fix });
const message = (error: unknown): string => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

/** Rejects with a timeout error unless `promise` settles within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function versionBelow(version: string, minimum: number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < minimum.length; i++) {
    if ((parts[i] ?? 0) !== minimum[i]) return (parts[i] ?? 0) < minimum[i]!;
  }
  return false;
}

/**
 * How this network is run, so that each fix matches it: `compose` (the compose file's Redis and orchestrator:
 * a `.env` from setup-dev.sh or .env.example names REDIS_PASSWORD / COMPOSE_PROJECT_NAME, or this is dan's own
 * image), `dan up` (a Redis on this machine, which `dan up` starts), or `external` (a Redis elsewhere).
 * Decided from the configuration and the role, never from /.dockerenv, which dev containers and CI machines have too.
 */
export interface NetworkSetup {
  kind: 'compose' | 'dan up' | 'external';
  /** Whether this process runs inside dan's image (DAN_IN_CONTAINER, which the image and the docker runtime set). */
  inContainer: boolean;
}

export function networkSetup(config: DanConfig, env: NodeJS.ProcessEnv): NetworkSetup {
  const set = (name: string): boolean => (env[name] ?? '') !== '';
  const inContainer = env.DAN_IN_CONTAINER === '1';
  if (inContainer || set('REDIS_PASSWORD') || set('COMPOSE_PROJECT_NAME')) return { kind: 'compose', inContainer };
  const host = new URL(config.redisUrl).hostname;
  return { kind: ['localhost', '127.0.0.1', '::1', '[::1]'].includes(host) ? 'dan up' : 'external', inContainer };
}

/** What to do when Redis does not answer, for the way the network is run. */
function redisFix(setup: NetworkSetup, url: string): string {
  switch (setup.kind) {
    case 'compose':
      return setup.inContainer
        ? "Redis is compose's `redis` service: on the host, `docker compose start redis` (docker-compose with v1), then `docker compose ps`"
        : "start compose's Redis: `docker compose start redis` (docker-compose with v1), or `docker compose up -d`; `docker compose ps` shows its health; run dan from the folder that holds .env";
    case 'dan up':
      return '`dan up` starts a local redis-server here (apt-get install redis-server if it is missing), or point REDIS_URL / --redis-url at yours';
    case 'external':
      return `check that Redis runs at ${url} and that REDIS_URL's password is right, or point REDIS_URL / --redis-url at yours`;
  }
}

/**
 * Redis: reachable, its version, no eviction (BullMQ loses jobs otherwise), append-only file on. Read with the admin
 * REDIS_URL when it has a password (CONFIG GET needs it), else with what the CLI uses (DAN_CLIENT_REDIS_URL alone).
 */
async function checkRedis(given: DanConfig, setup: NetworkSetup): Promise<Check[]> {
  const config = urlPassword(given.redisUrl) === undefined ? clientConfig(given) : given;
  const url = redactUrl(config.redisUrl);
  let redis: Redis;
  try {
    redis = await connectRedis(config.redisUrl, { mode: 'cli', name: 'dan-doctor' });
  } catch (error) {
    // ioredis's own "Connection is closed." says nothing a user can act on; a DNS or TLS error does.
    const cause = (error as { cause?: unknown }).cause;
    const why = cause && !/connection is closed/i.test(message(cause)) ? ` (${message(cause)})` : '';
    return [fail('redis', `cannot reach ${url}${why}`, redisFix(setup, url))];
  }
  try {
    const info = await redis.info('server');
    const version = /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown';
    const checks: Check[] = [];
    if (version !== 'unknown' && versionBelow(version, REDIS_MINIMUM)) {
      checks.push(fail('redis', `Redis ${version} at ${url}: too old for the task queue (BullMQ needs 5.0 or later)`, 'upgrade Redis to 7'));
    } else if (version !== 'unknown' && versionBelow(version, REDIS_RECOMMENDED)) {
      checks.push(warn('redis', `Redis ${version} at ${url}`, 'upgrade to Redis 6.2 or later (BullMQ recommends it)'));
    } else {
      checks.push(ok('redis', `Redis ${version} at ${url}`));
    }
    const orchestrators = (await new AgentRegistry(redis, new Keys(config.prefix), { heartbeatTtlMs: config.heartbeatTtlMs }).list()).filter(
      (a) => a.role === 'main' && a.alive,
    );
    checks.push(
      orchestrators.length > 0
        ? ok('orchestrator', `${orchestrators.length} running on network "${config.network}" (${orchestrators.map((o) => o.id).join(', ')})`)
        : warn(
            'orchestrator',
            `none running on network "${config.network}": tasks stay queued until one runs`,
            setup.kind === 'compose' ? 'docker compose up -d (docker compose logs orchestrator says why one stopped)' : 'dan up (or docker compose up -d)',
          ),
    );
    checks.push(await configCheck(redis, 'redis eviction', 'maxmemory-policy', 'noeviction', (value) =>
      value === 'noeviction'
        ? ok('redis eviction', 'maxmemory-policy noeviction')
        : warn(
            'redis eviction',
            `maxmemory-policy ${value}: under memory pressure Redis may evict queued tasks and records`,
            'redis-cli CONFIG SET maxmemory-policy noeviction (and maxmemory-policy noeviction in redis.conf)',
          ),
    ));
    checks.push(await memoryCheck(redis));
    checks.push(await rolesCheck(redis, config));
    checks.push(await limitsCheck(redis, config));
    checks.push(await configCheck(redis, 'redis persistence', 'appendonly', 'yes', (value) =>
      value === 'yes'
        ? ok('redis persistence', 'append-only file on')
        : warn(
            'redis persistence',
            'append-only file off: tasks and records since the last snapshot are lost if Redis restarts',
            'redis-cli CONFIG SET appendonly yes (and appendonly yes in redis.conf)',
          ),
    ));
    return checks;
  } finally {
    redis.disconnect();
  }
}

/**
 * Limits (issue 12): a token or the network paused after a usage or rate limit, the daily budget reached (tasks
 * wait: a warning, with when they go on), else today's spend and the CLIs running.
 */
async function limitsCheck(redis: Redis, config: DanConfig): Promise<Check> {
  const { holding, text } = describeAccess(await readAccessState(new RunGate(redis, new Keys(config.prefix))));
  return holding
    ? warn('limits', text, 'tasks wait and go on by themselves at that time (no attempt is used); raise DAN_DAILY_BUDGET_USD and restart the orchestrator to spend more today; replace a bad token in CLAUDE_CODE_OAUTH_TOKEN (claude setup-token)')
    : ok('limits', text);
}

/** Commands the role users must be refused (ACL DRYRUN, Redis 7): a check that each role is what it should be. */
const ROLE_REFUSED: string[][] = [['FLUSHALL'], ['CONFIG', 'GET', 'requirepass'], ['KEYS', '*'], ['ACL', 'LIST'], ['SHUTDOWN'], ['SET', 'another-network:x', '1']];

/** The user the CLI's commands and `dan serve` connect as (bin/context.ts, clientConfig), or why they cannot. */
async function cliUser(config: DanConfig, me: string): Promise<{ user: string } | { error: string }> {
  const url = clientConfig(config).redisUrl;
  if (url === config.redisUrl) return { user: me };
  try {
    const client = await connectRedis(url, { mode: 'cli', name: 'dan-doctor:client' });
    try {
      return { user: (await whoAmI(client)) ?? 'default' };
    } finally {
      client.disconnect();
    }
  } catch (error) {
    return { error: message((error as { cause?: unknown }).cause ?? error) };
  }
}

/**
 * Redis roles (docs/SECURITY.md): which user this process and the CLI's commands connect as, and whether the role
 * users exist and are refused admin commands. A Redis without a password has no users to tell apart: said plainly.
 */
async function rolesCheck(redis: Redis, config: DanConfig): Promise<Check> {
  const name = 'redis roles';
  if (urlPassword(config.redisUrl) === undefined) {
    return warn(
      name,
      'Redis has no password: there are no roles, every process that reaches it (agents included) can do anything, FLUSHALL too; agents still get the URL on stdin, not in their environment',
      'give Redis a password (compose does: REDIS_PASSWORD in .env; `dan up` does when it starts its own redis-server, so stop this one; for your own, --requirepass and the password in REDIS_URL)',
    );
  }
  const me = (await whoAmI(redis)) ?? 'default';
  const agentUser = roleUser(config.network, 'agent');
  const clientUser = roleUser(config.network, 'client');
  let rules: unknown;
  try {
    rules = await redis.call('ACL', 'GETUSER', agentUser);
  } catch (error) {
    // Not an admin (the client role, a managed Redis): it cannot look at other users, which is as it should be.
    return ok(name, `connected as ${me} (what the CLI uses), which cannot inspect the agents' user (${message(error)})`);
  }
  if (rules === null) {
    return warn(name, `connected as ${me}; no user ${agentUser} yet: agents would get this credential`, 'start an orchestrator (dan up, docker compose up -d): it creates the role users');
  }
  const cli = await cliUser(config, me);
  if ('error' in cli) {
    return fail(name, `connected as ${me}; the CLI cannot connect as ${clientUser} (${cli.error})`, 'restart an orchestrator: it sets the role users again (ACL SETUSER); or check DAN_CLIENT_REDIS_URL');
  }
  const widened: string[] = [];
  for (const user of [agentUser, clientUser]) {
    for (const command of ROLE_REFUSED) {
      try {
        if (String(await redis.call('ACL', 'DRYRUN', user, ...command)) === 'OK') widened.push(`${user} may run ${command[0]!}`);
      } catch {
        // Redis before 7 has no DRYRUN, and a user that does not exist says so: the rules were set by dan, trust them.
      }
    }
  }
  if (widened.length > 0) {
    return fail(name, `connected as ${me}; ${widened.join(', ')}`, 'restart an orchestrator: it sets the role users again (ACL SETUSER)');
  }
  const refused = `refused ${ROLE_REFUSED.map((c) => c[0]).join(', ')} and other networks' keys`;
  return cli.user === clientUser
    ? ok(name, `connected as ${me}; the CLI and dan serve connect as ${clientUser}, agents as ${agentUser}, both ${refused}`)
    : warn(name, `connected as ${me}; the CLI connects as ${cli.user}, not as ${clientUser}; agents connect as ${agentUser}, ${refused}`, `give the CLI the admin REDIS_URL (it derives the client role's), or DAN_CLIENT_REDIS_URL with the ${clientUser} user`);
}

/** Where the CLI runs relative to its agent: its own uid (docker runtime), or the agent's (process runtime). */
function cliIsolationCheck(config: DanConfig): Check {
  const name = 'cli isolation';
  if (config.runtime === 'docker') {
    return ok(name, 'agents run as uid 1000 and their CLI as uid 1001 with no capabilities: its tools cannot read the agent\'s memory, environment or Redis credential');
  }
  const uid = process.getuid?.() ?? -1;
  return warn(
    name,
    `process runtime: the CLI runs as the agent's own uid (${uid}), so a tool of the CLI can read the agent's memory and with it its Redis credential`,
    'run agents in containers (DAN_RUNTIME=docker, or compose): there the CLI has a uid of its own',
  );
}

/** Share of `maxmemory` in use from which `dan doctor` warns: past it, a burst of work can fill Redis. */
export const MEMORY_WARN_SHARE = 0.8;

const mb = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MB`;

/**
 * Redis memory against its `maxmemory`. With noeviction, a full Redis refuses writes, heartbeats included, and
 * every agent would be reaped: no limit at all, or one 80% used, is a warning.
 */
async function memoryCheck(redis: Redis): Promise<Check> {
  const name = 'redis memory';
  try {
    const info = await redis.info('memory');
    const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
    const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1]);
    if (!Number.isFinite(used) || !Number.isFinite(max)) return warn(name, 'INFO memory did not say used_memory and maxmemory', 'check Redis by hand: redis-cli INFO memory');
    if (max === 0) {
      return warn(name, `${mb(used)} used, no maxmemory: Redis grows until the machine runs out`, 'set maxmemory (compose and `dan up` use DAN_REDIS_MAXMEMORY, default 1gb)');
    }
    const share = used / max;
    const found = `${mb(used)} of ${mb(max)} maxmemory used (${Math.round(share * 100)}%)`;
    return share >= MEMORY_WARN_SHARE
      ? warn(name, found, 'raise maxmemory (DAN_REDIS_MAXMEMORY) or keep ended tasks for fewer days (DAN_RETENTION_DAYS); a full Redis refuses heartbeats and results')
      : ok(name, found);
  } catch (error) {
    return warn(name, `cannot read INFO memory: ${message(error)}`, 'check Redis memory by hand: redis-cli INFO memory');
  }
}

/** Reads one Redis setting; a Redis that forbids CONFIG (managed services often do) is a warning, not a failure. */
async function configCheck(redis: Redis, name: string, key: string, wanted: string, judge: (value: string) => Check): Promise<Check> {
  try {
    const reply = (await redis.config('GET', key)) as string[];
    if (reply.length < 2) return warn(name, `cannot read ${key} (CONFIG GET returned nothing)`, `make sure ${key} is ${wanted}`);
    return judge(String(reply[1]));
  } catch (error) {
    return warn(name, `cannot read ${key}: ${message(error)}`, `make sure ${key} is ${wanted} in your Redis settings`);
  }
}

/** Docker: the engine and, for the docker runtime, the agent image. Required only for the docker runtime. */
async function checkDocker(config: DanConfig): Promise<Check[]> {
  const required = config.runtime === 'docker';
  const { createDockerClient } = await import('../../lib/runtime/index.js');
  let version: string;
  let docker: ReturnType<typeof createDockerClient>;
  try {
    docker = createDockerClient(); // DOCKER_HOST (and its TLS settings) as dockerode reads them
    const answer = await within(docker.version(), PROBE_TIMEOUT_MS, 'the Docker engine');
    version = answer.Version;
  } catch (error) {
    const found = `no Docker engine answers${process.env.DOCKER_HOST ? ` at ${process.env.DOCKER_HOST}` : ''} (${message(error)})`;
    const fix = 'start the engine (`dockerd`, or Docker Desktop) or set DOCKER_HOST';
    if (!required) return [ok('docker', `not needed by the process runtime; ${found}`)];
    return [fail('docker', found, fix), fail('agent image', `cannot look for ${config.images.agent} without an engine`, fix)];
  }
  if (!required) return [ok('docker', `Docker ${version} (not needed by the process runtime)`)];
  const checks = [ok('docker', `Docker ${version}`)];
  try {
    const image = await docker.getImage(config.images.agent).inspect();
    checks.push(ok('agent image', `${config.images.agent} (${image.Id.replace(/^sha256:/, '').slice(0, 12)}, built ${image.Created.slice(0, 19).replace('T', ' ')})`));
  } catch (error) {
    const missing = (error as { statusCode?: number }).statusCode === 404;
    checks.push(
      fail(
        'agent image',
        missing ? `${config.images.agent} is not here` : `cannot inspect ${config.images.agent}: ${message(error)}`,
        'build it with scripts/build-image.sh (or docker build -f Dockerfile.agent -t dan-agent:latest .), or set DAN_AGENT_IMAGE',
      ),
    );
  }
  return checks;
}

/** The Claude Code CLI agents run: `--version` of DAN_CLAUDE_BIN. In the docker runtime the image has its own. */
async function checkClaude(config: DanConfig): Promise<Check> {
  // Loaded here, like the runtime above: every other command starts without it.
  const { execa } = await import('execa');
  try {
    const result = await execa(config.claudeBin, ['--version'], {
      timeout: PROBE_TIMEOUT_MS * 3,
      env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
      stdin: 'ignore',
    });
    return ok('claude', `${result.stdout.trim().split('\n')[0]} at ${config.claudeBin}`);
  } catch (error) {
    const found = `${config.claudeBin} does not run: ${message((error as { shortMessage?: string }).shortMessage ?? error)}`;
    const fix = 'npm install (the CLI comes with @anthropic-ai/claude-code), or set DAN_CLAUDE_BIN to a claude binary';
    return config.runtime === 'docker' ? warn('claude', `${found} (agents use the image's own)`, fix) : fail('claude', found, fix);
  }
}

/** How agents reach a model: which one method is in use (lib/access.ts), never a secret. */
function checkModelAccess(env: NodeJS.ProcessEnv): Check {
  const access = accessMethod(env);
  if (!access) return fail('api key', NO_ACCESS.found, NO_ACCESS.fix);
  if (access.problem) return fail('api key', `${access.detail}: ${access.problem.found}`, access.problem.fix);
  if (access.note) return warn('api key', `${access.detail}; ${access.note}`, 'unset ANTHROPIC_API_KEY to use the subscription');
  return ok('api key', access.detail);
}

/** The templates: domains found (a domain is a folder), and the main orchestrator's instructions. */
async function checkTemplates(config: DanConfig): Promise<Check> {
  const dir = config.templatesDir;
  const domains = listDomains(dir);
  if (domains.length === 0) {
    return fail('templates', `no domains in ${path.join(dir, 'domain-templates')}`, 'set DAN_TEMPLATES to a folder with domain-templates/<domain>/CLAUDE.md');
  }
  const exists = (file: string) => access(file).then(() => true, () => false);
  const bare: string[] = [];
  for (const domain of domains) if (!(await exists(path.join(domainTemplateDir(dir, domain), 'CLAUDE.md')))) bare.push(domain);
  const found = `${domains.length} domain${domains.length === 1 ? '' : 's'} in ${dir}: ${domains.join(', ')}`;
  if (bare.length > 0) return warn('templates', `${found}; without CLAUDE.md: ${bare.join(', ')}`, 'give each domain folder a CLAUDE.md with its instructions');
  if (!(await exists(path.join(mainTemplateDir(dir), 'CLAUDE.md')))) {
    return warn('templates', `${found}; no main-orchestrator/CLAUDE.md`, 'add main-orchestrator/CLAUDE.md: the orchestrator plans `main` tasks with it');
  }
  return ok('templates', found);
}

/** The shared workspace: the process runtime's directory, or the docker runtime's bind-mounted directory. */
async function checkWorkspace(config: DanConfig, env: NodeJS.ProcessEnv, setup: NetworkSetup): Promise<Check> {
  // Compose bind-mounts ./workspace (DAN_WORKSPACE_VOLUME=${PWD}/workspace in docker-compose.yml): on the host,
  // that folder is what its agents get, not the volume the docker runtime uses by default.
  if (config.runtime === 'docker' && setup.kind === 'compose' && !setup.inContainer && (env.DAN_WORKSPACE_VOLUME ?? '') === '') {
    config = { ...config, workspaceVolume: path.resolve('workspace') };
  }
  if (config.runtime === 'docker' && !path.isAbsolute(config.workspaceVolume)) {
    return ok('workspace', `Docker volume ${config.workspaceVolume} (created and given to uid 1000 when the runtime starts)`);
  }
  // Inside dan's image (the compose orchestrator) the host path DAN_WORKSPACE_VOLUME is not visible: the same
  // directory is mounted here at DAN_WORKSPACE, with the host's ownership, so that is what is checked.
  const viaMount = config.runtime === 'docker' && setup.inContainer && config.workspace !== config.workspaceVolume;
  const dir = config.runtime === 'docker' && !viaMount ? config.workspaceVolume : config.workspace;
  const shown = viaMount ? `${config.workspaceVolume} (mounted here at ${dir})` : dir;
  let info;
  try {
    info = await stat(dir);
  } catch {
    // Docker refuses to bind-mount a missing path; the process runtime creates its directory when it starts.
    if (viaMount) return fail('workspace', `${shown} is not mounted`, `mount ${config.workspaceVolume} at ${dir} (docker-compose.yml does)`);
    return config.runtime === 'docker'
      ? fail('workspace', `${dir} does not exist`, `mkdir -p ${dir} && chown 1000:1000 ${dir}, or set DAN_WORKSPACE_VOLUME`)
      : warn('workspace', `${dir} does not exist`, `mkdir -p ${dir} (\`dan up\` creates it too), or set DAN_WORKSPACE`);
  }
  if (!info.isDirectory()) return fail('workspace', `${dir} is not a directory`, 'set DAN_WORKSPACE to a directory');
  if (config.runtime === 'docker') {
    // Agents run as uid 1000 and a bind mount keeps the host's ownership.
    const writable = info.uid === 1000 || (info.mode & 0o002) !== 0;
    return writable
      ? ok('workspace', `${shown} (bind mount, writable by uid 1000)`)
      : fail('workspace', `${shown} is owned by uid ${info.uid}: agents (uid 1000) cannot write there`, viaMount ? `chown -R 1000:1000 ${config.workspaceVolume} on the host` : `chown -R 1000:1000 ${dir}`);
  }
  try {
    await access(dir, fs.W_OK);
  } catch {
    return fail('workspace', `${dir} is not writable by this user`, `chown -R $(id -u) ${dir}, or set DAN_WORKSPACE`);
  }
  return ok('workspace', `${dir} (writable)`);
}

/** The workspace as dan's git repository (DESIGN.md, Workspaces), where this process can see it. */
async function checkRepository(config: DanConfig, env: NodeJS.ProcessEnv): Promise<Check> {
  if (config.workspaceMode === 'shared') return ok('repository', 'DAN_WORKSPACE_MODE=shared: agents share the workspace folder, no git');
  if (config.gitRemote) return checkRemote(config, env);
  const viaMount = config.runtime === 'docker' && env.DAN_IN_CONTAINER === '1';
  if (config.runtime === 'docker' && !viaMount && !path.isAbsolute(config.workspaceVolume)) {
    return ok('repository', `in the Docker volume ${config.workspaceVolume}: the first agent makes it a git repository`);
  }
  const dir = config.runtime === 'docker' && !viaMount ? config.workspaceVolume : config.workspace;
  const git = new Git({ bin: config.gitBin, env });
  try {
    await git.run('/', ['--version']);
  } catch (error) {
    return fail('repository', `cannot run ${config.gitBin}: ${message(error)}`, 'install git (apt-get install git), or set DAN_GIT_BIN');
  }
  if (!(await stat(path.join(dir, '.git')).catch(() => undefined))) {
    return ok('repository', `${dir} is not a git repository yet: the network makes it one when it starts, its files the base commit (or: dan workspace init)`);
  }
  try {
    const branch = await integrationBranch(git, dir);
    const branches = (await git.text(dir, ['for-each-ref', '--format=%(refname)', 'refs/heads/dan/'])).split('\n').filter((l) => l.length > 0).length;
    const locks = ['index.lock', 'HEAD.lock'].filter((f) => existsSync(path.join(dir, '.git', f)));
    if (locks.length > 0) return warn('repository', `${dir}: a git lock file is left (${locks.join(', ')})`, 'the next merge removes it; or, if no git runs there: rm ' + locks.map((f) => path.join(dir, '.git', f)).join(' '));
    return ok('repository', `${dir}: merges into ${branch}; ${branches} task branch${branches === 1 ? '' : 'es'}`);
  } catch (error) {
    return fail('repository', message(error), `check out a branch in ${dir}: git -C ${dir} switch <branch>`);
  }
}

/** DAN_GIT_REMOTE as agents will use it: reachable, and its integration branch (or empty: the first agent seeds it). */
async function checkRemote(config: DanConfig, env: NodeJS.ProcessEnv): Promise<Check> {
  const remote = config.gitRemote!;
  const git = new Git({ bin: config.gitBin, env });
  const out = await git.run('/', ['ls-remote', '--symref', remote, 'HEAD', 'refs/heads/dan/*'], { ok: [0, 2, 128] }).catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: message(error) }));
  if (out.exitCode !== 0 && out.exitCode !== 2) {
    const said = out.stderr.trim().split('\n').find((l) => /^(fatal|error):/.test(l)) ?? out.stderr.trim().split('\n')[0];
    return fail('repository', `cannot reach DAN_GIT_REMOTE ${remote}: ${said}`, 'check the URL and that its server runs (compose: docker compose --profile remote up -d)');
  }
  const branch = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out.stdout)?.[1];
  if (!branch) return ok('repository', `${remote} is empty: the first agent seeds it with a base commit (or: dan workspace push <dir>)`);
  const branches = out.stdout.split('\n').filter((l) => /\trefs\/heads\/dan\//.test(l)).length;
  return ok('repository', `${remote}: merges into ${branch}; ${branches} task branch${branches === 1 ? '' : 'es'}`);
}

/** Every check, in the order a user fixes things. */
export async function runChecks(config: DanConfig, env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const setup = networkSetup(config, env);
  const [redis, docker, claude, templates, workspace, repository] = await Promise.all([
    checkRedis(config, setup),
    checkDocker(config),
    checkClaude(config),
    checkTemplates(config),
    checkWorkspace(config, env, setup),
    checkRepository(config, env),
  ]);
  return [...redis, ...docker, claude, cliIsolationCheck(config), checkModelAccess(env), templates, workspace, repository];
}

const LABEL = { ok: 'ok', warn: 'warn', fail: 'FAIL' } as const;
const PAINT = { ok: c.green, warn: c.yellow, fail: c.red } as const;

/** `ok   redis         Redis 7.0.15 at redis://localhost:6379` and, when not ok, `→ the fix`. */
export function formatCheck(check: Check): string {
  const fix = check.fix && check.status !== 'ok' ? c.gray(` → ${check.fix}`) : '';
  const found = check.found.replace(/\s*\n\s*/g, ' ');
  return `${PAINT[check.status](LABEL[check.status].padEnd(5))}${check.name.padEnd(18)}${found}${fix}`;
}

/** `dan doctor`: is this machine ready to run a network? One line per check; exit 1 when any fails. */
export function registerDoctorCommand(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('doctor')
      .description('check what dan needs: Redis, Docker and the agent image, the claude CLI, a model key, templates, workspace')
      .option('--runtime <runtime>', 'check for this runtime: process | docker (default DAN_RUNTIME)')
      .option('--json', 'print JSON'),
  ).action(async (flags: ConnectionFlags & { runtime?: string; json?: boolean }) => {
    const runtime = flags.runtime === undefined ? undefined : parseFlag(runtimeSchema, flags.runtime, '--runtime');
    let checks: Check[];
    try {
      checks = await runChecks(configFrom(flags, { DAN_RUNTIME: runtime }));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      checks = [fail('config', error.message, `fix or unset ${error.variable}`)];
    }
    const healthy = !checks.some((check) => check.status === 'fail');
    if (flags.json) console.log(JSON.stringify({ ok: healthy, checks }, null, 2));
    else console.log(checks.map(formatCheck).join('\n'));
    process.exitCode = healthy ? 0 : 1;
  });
}
