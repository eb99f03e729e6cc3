import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { modelNameSchema } from './task.js';

/** The package root: where `agents/` and the bundled `claude` binary live (works from `lib/` and `dist/lib/`). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('dan: cannot find the package root');
    dir = parent;
  }
  return dir;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['1', '0', 'true', 'false', 'yes', 'no']).transform((v) => v === '1' || v === 'true' || v === 'yes');

/**
 * Every setting of dan, read from the environment. The names are a contract (DESIGN.md, Configuration):
 * compose files, scripts and tests rely on them. Each key documents its variable and default.
 */
const envSchema = z.object({
  /** @default redis://localhost:6379 */
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://localhost:6379'),
  /** The bus as agents reach it, when that differs from REDIS_URL. @default REDIS_URL */
  DAN_AGENT_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  /**
   * The bus as the `dan` CLI's commands and `dan serve` reach it: the client role's URL (docs/SECURITY.md, Redis
   * roles), for a process that should not hold the admin password. @default the client role derived from REDIS_URL
   */
  DAN_CLIENT_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  /** Network name: Redis key prefix, container label, Docker network. @default dan */
  DAN_NETWORK: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be 1-63 lowercase letters, digits, ".", "_" or "-"')
    .default('dan'),
  /**
   * Where agents run: child processes, containers on one Docker engine, or Swarm services across a Docker Swarm's
   * nodes (README, Across machines). @default process (compose sets docker, deploy/stack.yml swarm)
   */
  DAN_RUNTIME: z.enum(['docker', 'process', 'swarm']).default('process'),
  /** The shared workspace, the agents' working directory. @default ./workspace (/workspace in containers) */
  DAN_WORKSPACE: z.string().min(1).optional(),
  /**
   * git: each task on its own worktree and branch, merged into the workspace's checked-out branch (DESIGN.md,
   * Workspaces); shared: every agent works in the workspace folder itself. @default git
   */
  DAN_WORKSPACE_MODE: z.enum(['git', 'shared']).default('git'),
  /** How many times an agent resolves a merge conflict before the task ends with merge state conflict. @default 2 */
  DAN_MERGE_ATTEMPTS: int(0, 20).default(2),
  /** How many rounds of review a change gets before it fails its gates (issue 15). @default 2 */
  DAN_REVIEW_ROUNDS: int(1, 10).default(2),
  /** The git binary dan runs. @default git */
  DAN_GIT_BIN: z.string().min(1).default('git'),
  /**
   * Workspace by git remote (DESIGN.md, Workspaces): a URL or path git can clone and push to (`git://git:9418/workspace`,
   * `ssh://…`, `/srv/workspace.git`). Each agent then keeps its own clone of it instead of using the shared workspace,
   * pushes its task's branch and publishes merges by plain push. @default unset: the workspace folder is the repository
   */
  DAN_GIT_REMOTE: z
    .string()
    .trim()
    .min(1)
    .max(2000)
    .refine((v) => !/[\s\0]/.test(v) && !v.startsWith('-'), 'must be a git URL or path with no spaces that does not start with "-"')
    .refine((v) => !/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(v), 'must not carry a password: give git its credentials another way (an ssh key, a credential helper)')
    .optional(),
  /** Where an agent keeps its clone of DAN_GIT_REMOTE: `<this>/<agent id>`. @default DAN_WORKSPACE */
  DAN_GIT_CLONE_DIR: z.string().min(1).optional(),
  /** Docker runtime: the volume name or absolute host path mounted at /workspace. @default <network>-workspace */
  DAN_WORKSPACE_VOLUME: z.string().min(1).optional(),
  /**
   * When set, an absolute DAN_WORKSPACE_VOLUME must lie inside this host directory. Unset, any host path is
   * allowed but `/`, system directories and the Docker socket's. @default unset
   */
  DAN_WORKSPACE_ROOT: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /**
   * Docker runtime: an absolute host path of a templates folder, mounted read-only at /templates in agent
   * containers (DAN_TEMPLATES there), so that a domain added on the host reaches them without an image rebuild.
   * Compose sets it to ./agents. @default none: agents use the image's templates
   */
  DAN_TEMPLATES_VOLUME: z.string().regex(/^\//, 'must be an absolute host path').optional(),
  /** Templates folder holding main-orchestrator/ and domain-templates/. @default the package's agents/ */
  DAN_TEMPLATES: z.string().min(1).optional(),
  /** The Claude Code CLI the executor runs. @default the package's own claude */
  DAN_CLAUDE_BIN: z.string().min(1).optional(),
  /**
   * The CLI as spawned agents see it, when that differs (a path inside agent containers, e.g. a wrapper in
   * the workspace: `/workspace/.bin/claude`). @default process runtime: DAN_CLAUDE_BIN; docker: the image's own
   */
  DAN_AGENT_CLAUDE_BIN: z.string().min(1).optional(),
  /**
   * `uid:gid` the agent runs the CLI as (through setpriv, every capability dropped), so that the CLI's tools
   * cannot read the agent's memory or environment. The docker runtime sets it (1001:1000: the agent's group, so
   * both write the worktree); it needs CAP_SETUID/CAP_SETGID, which the image's entrypoint gives agents it starts
   * as root. @default unset: the CLI runs as the agent's own uid
   */
  DAN_CLI_USER: z.string().regex(/^[1-9][0-9]{0,9}:[0-9]{1,10}$/, 'must be uid:gid (numbers; the uid not 0), e.g. 1001:1000').optional(),
  /** Model passed with --model. @default the CLI's default */
  DAN_MODEL: z.string().min(1).optional(),
  /**
   * Subscription tokens (`claude setup-token`), one or several separated by commas: each agent is given one
   * (the least used). A secret: never stored in Redis, never logged. @default none
   */
  CLAUDE_CODE_OAUTH_TOKEN: z
    .string()
    .regex(/^[^,\s]+(,[^,\s]+)*$/, 'must be one token, or several separated by commas, with no spaces and no empty entries')
    .optional(),
  /** `--max-budget-usd` of each run of a task sent without --budget. @default no cap */
  DAN_TASK_BUDGET_USD: z.coerce.number().gt(0, 'must be more than 0 dollars').max(10_000, 'must be at most 10000 dollars').optional(),
  /**
   * The models of the planner's tiers: a subtask it estimates simple (`"model": "small"`) runs on DAN_MODEL_SMALL,
   * a hard one (`"large"`) on DAN_MODEL_LARGE. Unset, a tier runs on the goal's model or the domain's default.
   */
  DAN_MODEL_SMALL: modelNameSchema.optional(),
  DAN_MODEL_LARGE: modelNameSchema.optional(),
  /**
   * CLIs running at once across the network, for plans that allow few concurrent sessions; the leader publishes
   * it in Redis, so raising it needs no agent restarted. @default no cap
   */
  DAN_MAX_RUNNING: int(1, 10_000).optional(),
  /**
   * Dollars the network may spend per UTC day: once today's spend reaches it, queued tasks wait (reason budget)
   * until the next day or until it is raised; running tasks finish. The leader publishes it in Redis. @default no cap
   */
  DAN_DAILY_BUDGET_USD: z.coerce.number().gt(0, 'must be more than 0 dollars').max(1_000_000, 'must be at most 1000000 dollars').optional(),
  /** Set by the orchestrator for a spawned agent: the index of its subscription token in the pool. */
  DAN_TOKEN_INDEX: int(0, 10_000).optional(),
  /** Agents that share one subscription token at most. @default 2 */
  DAN_AGENTS_PER_TOKEN: int(1, 1000).default(2),
  CLAUDE_CODE_USE_BEDROCK: z.string().optional(),
  CLAUDE_CODE_USE_VERTEX: z.string().optional(),
  /** Vertex: the service account file, mounted read-only into agent containers. Must exist. */
  GOOGLE_APPLICATION_CREDENTIALS: z.string().optional(),
  /** Bedrock: a named profile of the AWS credentials file, which is mounted read-only into agent containers. */
  AWS_PROFILE: z.string().optional(),
  /** Bedrock: the AWS credentials file. @default ~/.aws/credentials */
  AWS_SHARED_CREDENTIALS_FILE: z.string().optional(),
  /** Bedrock: the AWS config file (regions, SSO profiles). @default ~/.aws/config, when it exists */
  AWS_CONFIG_FILE: z.string().optional(),
  DAN_AGENT_IMAGE: z.string().min(1).default('dan-agent:latest'),
  DAN_BASE_IMAGE: z.string().min(1).default('node:22-bookworm-slim'),
  DAN_REDIS_IMAGE: z.string().min(1).default('redis:7-alpine'),
  /** @default 5000 */
  DAN_HEARTBEAT_MS: int(50, 3_600_000).default(5000),
  /**
   * A file touched on every successful heartbeat, for a container HEALTHCHECK that needs no Redis
   * (scripts/healthcheck.sh). @default none; the agent image sets /tmp/dan-alive
   */
  DAN_HEALTH_FILE: z.string().min(1).optional(),
  /** @default 30000 */
  DAN_HEARTBEAT_TTL_MS: int(100, 3_600_000).default(30_000),
  /** @default 5000 */
  DAN_REAPER_MS: int(50, 3_600_000).default(5000),
  /** An idle agent exits after this long. @default 300000 */
  DAN_IDLE_TIMEOUT_MS: int(100, 86_400_000).default(300_000),
  /** SIGTERM grace period for the current task before it goes back to the queue. @default 30000 */
  DAN_SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(30_000),
  /** Tasks one agent runs at once. @default 1 */
  DAN_AGENT_CONCURRENCY: int(1, 64).default(1),
  /** @default 8 */
  DAN_MAX_AGENTS: int(0, 1000).default(8),
  /** @default 3 */
  DAN_MAX_AGENTS_PER_DOMAIN: int(0, 1000).default(3),
  /** @default 0 */
  DAN_MIN_AGENTS_PER_DOMAIN: int(0, 1000).default(0),
  /** Agent limits (docker runtime). @default 1024 MiB, 0.5 CPU */
  DAN_AGENT_MEMORY_MB: int(64, 1_048_576).default(1024),
  DAN_AGENT_CPUS: z.coerce.number().min(0.01).max(256).default(0.5),
  /** Default task timeout in seconds. @default 300 */
  DAN_TASK_TIMEOUT_S: int(10, 86_400).default(300),
  /** How many times a task is started before it fails for good. @default 3 */
  DAN_TASK_ATTEMPTS: int(1, 100).default(3),
  /** Subtasks a plan may have. @default 12 */
  DAN_MAX_SUBTASKS: int(1, 100).default(12),
  /** Log entries kept per task stream (approximate). @default 10000 */
  DAN_LOG_MAXLEN: int(100, 10_000_000).default(10_000),
  /**
   * Days an ended task (its record, log stream and index entries; a goal with its subtasks) is kept before the
   * leader removes it. 0 keeps them for ever. Fractions allowed. @default 7
   */
  DAN_RETENTION_DAYS: z.coerce.number().min(0).max(36_500).default(7),
  /**
   * The most bytes (gzipped) of a task's Claude Code session kept in Redis for follow-ups and answers; a larger
   * one is not saved and its follow-up starts a new conversation, saying so. @default 8388608 (8 MiB)
   */
  DAN_SESSION_MAX_BYTES: int(1024, 512 * 1024 * 1024).default(8 * 1024 * 1024),
  /** A task waiting for the user's answer (`needs_input`) longer than this fails with reason `no answer`. @default 86400 */
  DAN_INPUT_TIMEOUT_S: int(1, 365 * 86_400).default(86_400),
  /** `maxmemory` of the Redis `dan up` starts (compose passes the same variable to its Redis). @default 1gb */
  DAN_REDIS_MAXMEMORY: z
    .string()
    .regex(/^[1-9][0-9]*(kb|mb|gb)?$/i, 'must be a size like 512mb or 2gb')
    .default('1gb'),
  /** @default info */
  DAN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Extra permission mode for the CLI (acceptEdits, bypassPermissions …); the domain's settings.json decides otherwise. */
  DAN_PERMISSION_MODE: z.enum(['default', 'acceptEdits', 'bypassPermissions', 'plan', 'dontAsk']).optional(),
  AGENT_ROLE: z.enum(['main', 'domain', 'planner']).optional(),
  AGENT_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be 1-100 letters, digits, ".", "_" or "-"').optional(),
  DOMAIN_TYPE: z.string().min(1).optional(),
  /** Whether the network's agents may use the process runtime's local redis-server fallback. */
  DAN_START_REDIS: bool.default(true),
  /** The orchestrator stops the agents it can reach when it stops on a signal (compose sets 1). @default 0 */
  DAN_STOP_AGENTS_ON_EXIT: bool.default(false),
  /** `dan serve`: the port of the API, dashboard and /metrics. @default 8080 */
  DAN_WEB_PORT: int(0, 65_535).default(8080),
  /** `dan serve`: the address it binds. Anything but loopback needs DAN_API_TOKEN. @default 127.0.0.1 */
  DAN_WEB_HOST: z.string().min(1).default('127.0.0.1'),
  /** `dan serve`: the bearer token every /api call and /metrics must carry. @default none (no auth; loopback only) */
  DAN_API_TOKEN: z.string().min(16, 'must be at least 16 characters').max(512).optional(),
  /**
   * `dan serve`: bind a non-loopback address without a token, for a container whose port is published on the
   * host's loopback only (compose). @default 0
   */
  DAN_WEB_ALLOW_UNAUTHENTICATED: bool.default(false),
});

export type DanEnv = z.infer<typeof envSchema>;

/** Settings whose values are secrets: an error about one names it without its value. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['DAN_API_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN']);

/** Typed configuration of one dan process: parsed once at the entry point, passed down. */
export interface DanConfig {
  redisUrl: string;
  agentRedisUrl: string;
  /** DAN_CLIENT_REDIS_URL, when set: what the CLI's commands and `dan serve` connect with (bin/context.ts, clientConfig). */
  clientRedisUrl: string | undefined;
  network: string;
  /** Redis key prefix, `<network>:` */
  prefix: string;
  runtime: 'docker' | 'process' | 'swarm';
  workspace: string;
  workspaceVolume: string;
  /** DAN_WORKSPACE_MODE: a worktree and branch per task (git) or one shared folder. */
  workspaceMode: 'git' | 'shared';
  mergeAttempts: number;
  /** Rounds of review a change gets (DAN_REVIEW_ROUNDS). */
  reviewRounds: number;
  gitBin: string;
  /** DAN_GIT_REMOTE: the remote repository agents clone, push to and merge into; unset for a local workspace. */
  gitRemote: string | undefined;
  /** The folder agents keep their clones of the remote in (one folder per agent). */
  gitCloneDir: string;
  /** DAN_TEMPLATES_VOLUME: the host templates folder the docker runtime mounts into agents, when set. */
  templatesVolume: string | undefined;
  templatesDir: string;
  claudeBin: string;
  /** DAN_AGENT_CLAUDE_BIN: the CLI spawned agents run, when set. */
  agentClaudeBin: string | undefined;
  /** DAN_CLI_USER: the uid and gid the agent runs the CLI as, when set. */
  cliUser: { uid: number; gid: number } | undefined;
  model: string | undefined;
  /** How many subscription tokens CLAUDE_CODE_OAUTH_TOKEN holds (0 without it); never their values. */
  oauthTokenCount: number;
  /** DAN_TOKEN_INDEX: this agent's subscription token, by index (the record says it; never the value). */
  tokenIndex: number | undefined;
  /** DAN_MODEL_SMALL / DAN_MODEL_LARGE: the models of the planner's small and large tiers. */
  modelTiers: { small: string | undefined; large: string | undefined };
  /** DAN_TASK_BUDGET_USD: the budget of a task sent without one. */
  taskBudgetUsd: number | undefined;
  /** DAN_AGENTS_PER_TOKEN: agents that share one subscription token at most. */
  agentsPerToken: number;
  /** DAN_MAX_RUNNING: CLIs running at once across the network, when capped. */
  maxRunning: number | undefined;
  /** DAN_DAILY_BUDGET_USD: what the network may spend per UTC day, when capped. */
  dailyBudgetUsd: number | undefined;
  /**
   * Credential files of the configured cloud provider, which the docker runtime mounts read-only into agent
   * containers (and points `env` at there): GOOGLE_APPLICATION_CREDENTIALS for Vertex, the AWS credentials and
   * config files for Bedrock with AWS_PROFILE or AWS_SHARED_CREDENTIALS_FILE.
   */
  credentialFiles: CredentialFile[];
  permissionMode: DanEnv['DAN_PERMISSION_MODE'];
  images: { agent: string; base: string; redis: string };
  heartbeatMs: number;
  heartbeatTtlMs: number;
  /** DAN_HEALTH_FILE: touched on every successful heartbeat, when set. */
  healthFile: string | undefined;
  reaperMs: number;
  idleTimeoutMs: number;
  shutdownGraceMs: number;
  agentConcurrency: number;
  maxAgents: number;
  maxAgentsPerDomain: number;
  minAgentsPerDomain: number;
  agentMemoryMb: number;
  agentCpus: number;
  taskTimeoutS: number;
  taskAttempts: number;
  maxSubtasks: number;
  logMaxLen: number;
  /** DAN_RETENTION_DAYS in ms; 0: ended tasks are kept for ever. */
  retentionMs: number;
  /** DAN_SESSION_MAX_BYTES: the cap of a saved session (gzipped). */
  sessionMaxBytes: number;
  /** DAN_INPUT_TIMEOUT_S in ms: how long a `needs_input` task waits for its answer. */
  inputTimeoutMs: number;
  /** DAN_REDIS_MAXMEMORY: the maxmemory of a Redis that `dan up` starts. */
  redisMaxMemory: string;
  logLevel: DanEnv['DAN_LOG_LEVEL'];
  agentRole: DanEnv['AGENT_ROLE'];
  agentId: string | undefined;
  domainType: string | undefined;
  startRedis: boolean;
  /** DAN_STOP_AGENTS_ON_EXIT: on SIGTERM/SIGINT the orchestrator stops its agents too (`docker compose down`). */
  stopAgentsOnExit: boolean;
  /** `dan serve`: DAN_WEB_HOST, DAN_WEB_PORT, DAN_API_TOKEN (a secret: never logged), DAN_WEB_ALLOW_UNAUTHENTICATED. */
  web: { host: string; port: number; apiToken: string | undefined; allowUnauthenticated: boolean };
}

/** A host file holding credentials, mounted read-only into agent containers with `env` naming its place there. */
export interface CredentialFile {
  /** The variable that names the file (the host path outside containers, the mount target inside). */
  env: 'GOOGLE_APPLICATION_CREDENTIALS' | 'AWS_SHARED_CREDENTIALS_FILE' | 'AWS_CONFIG_FILE';
  /** The absolute host path. */
  source: string;
}

/** Overrides from command-line flags; they win over the environment. */
export type ConfigOverrides = Partial<Record<keyof DanEnv, string | number | undefined>>;

/**
 * Reads the configuration once. `env` defaults to `process.env`; pass an object in tests.
 * A bad value throws one ConfigError naming the variable and what is allowed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): DanConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = overrides[key as keyof DanEnv] ?? env[key];
    // An empty variable counts as unset, as in shells and compose files.
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    // A secret's value is never printed, not even a wrong one.
    const shown = SECRET_VARIABLES.has(variable) ? '(hidden)' : JSON.stringify(raw[variable] ?? '');
    throw new ConfigError(variable, `${variable}=${shown} is invalid: ${issue.message}`);
  }
  const e = parsed.data;
  if (e.DAN_HEARTBEAT_TTL_MS <= e.DAN_HEARTBEAT_MS) {
    throw new ConfigError(
      'DAN_HEARTBEAT_TTL_MS',
      `DAN_HEARTBEAT_TTL_MS (${e.DAN_HEARTBEAT_TTL_MS}) must be greater than DAN_HEARTBEAT_MS (${e.DAN_HEARTBEAT_MS})`,
    );
  }
  if (e.DAN_MIN_AGENTS_PER_DOMAIN > e.DAN_MAX_AGENTS_PER_DOMAIN) {
    throw new ConfigError(
      'DAN_MIN_AGENTS_PER_DOMAIN',
      `DAN_MIN_AGENTS_PER_DOMAIN (${e.DAN_MIN_AGENTS_PER_DOMAIN}) must not exceed DAN_MAX_AGENTS_PER_DOMAIN (${e.DAN_MAX_AGENTS_PER_DOMAIN})`,
    );
  }
  if (e.DAN_GIT_REMOTE && e.DAN_WORKSPACE_MODE === 'shared') {
    throw new ConfigError('DAN_GIT_REMOTE', 'DAN_GIT_REMOTE needs DAN_WORKSPACE_MODE=git (the default): a remote holds branches, a shared folder has none');
  }
  if (e.DAN_WORKSPACE_VOLUME && path.isAbsolute(e.DAN_WORKSPACE_VOLUME)) checkWorkspaceVolume(e.DAN_WORKSPACE_VOLUME, e.DAN_WORKSPACE_ROOT);
  const root = packageRoot();
  // Inside dan's image (DAN_IN_CONTAINER, set by the image and the docker runtime), not wherever /.dockerenv
  // exists: dev containers and CI machines have that file too, and their workspace is ./workspace.
  const inContainer = env.DAN_IN_CONTAINER === '1';
  return {
    redisUrl: e.REDIS_URL,
    agentRedisUrl: e.DAN_AGENT_REDIS_URL ?? e.REDIS_URL,
    clientRedisUrl: e.DAN_CLIENT_REDIS_URL,
    network: e.DAN_NETWORK,
    prefix: `${e.DAN_NETWORK}:`,
    runtime: e.DAN_RUNTIME,
    workspace: path.resolve(e.DAN_WORKSPACE ?? (inContainer ? '/workspace' : 'workspace')),
    workspaceVolume: e.DAN_WORKSPACE_VOLUME ?? `${e.DAN_NETWORK}-workspace`,
    workspaceMode: e.DAN_WORKSPACE_MODE,
    mergeAttempts: e.DAN_MERGE_ATTEMPTS,
    reviewRounds: e.DAN_REVIEW_ROUNDS,
    gitBin: e.DAN_GIT_BIN,
    gitRemote: e.DAN_GIT_REMOTE,
    gitCloneDir: path.resolve(e.DAN_GIT_CLONE_DIR ?? e.DAN_WORKSPACE ?? (inContainer ? '/workspace' : 'workspace')),
    templatesVolume: e.DAN_TEMPLATES_VOLUME,
    templatesDir: path.resolve(e.DAN_TEMPLATES ?? path.join(root, 'agents')),
    claudeBin: e.DAN_CLAUDE_BIN ?? path.join(root, 'node_modules', '.bin', 'claude'),
    agentClaudeBin: e.DAN_AGENT_CLAUDE_BIN,
    cliUser: e.DAN_CLI_USER ? { uid: Number(e.DAN_CLI_USER.split(':')[0]), gid: Number(e.DAN_CLI_USER.split(':')[1]) } : undefined,
    model: e.DAN_MODEL,
    oauthTokenCount: e.CLAUDE_CODE_OAUTH_TOKEN ? e.CLAUDE_CODE_OAUTH_TOKEN.split(',').length : 0,
    agentsPerToken: e.DAN_AGENTS_PER_TOKEN,
    modelTiers: { small: e.DAN_MODEL_SMALL, large: e.DAN_MODEL_LARGE },
    taskBudgetUsd: e.DAN_TASK_BUDGET_USD,
    tokenIndex: e.DAN_TOKEN_INDEX,
    maxRunning: e.DAN_MAX_RUNNING,
    dailyBudgetUsd: e.DAN_DAILY_BUDGET_USD,
    credentialFiles: credentialFiles(e, inContainer),
    permissionMode: e.DAN_PERMISSION_MODE,
    images: { agent: e.DAN_AGENT_IMAGE, base: e.DAN_BASE_IMAGE, redis: e.DAN_REDIS_IMAGE },
    heartbeatMs: e.DAN_HEARTBEAT_MS,
    heartbeatTtlMs: e.DAN_HEARTBEAT_TTL_MS,
    healthFile: e.DAN_HEALTH_FILE,
    reaperMs: e.DAN_REAPER_MS,
    idleTimeoutMs: e.DAN_IDLE_TIMEOUT_MS,
    shutdownGraceMs: e.DAN_SHUTDOWN_GRACE_MS,
    agentConcurrency: e.DAN_AGENT_CONCURRENCY,
    maxAgents: e.DAN_MAX_AGENTS,
    maxAgentsPerDomain: e.DAN_MAX_AGENTS_PER_DOMAIN,
    minAgentsPerDomain: e.DAN_MIN_AGENTS_PER_DOMAIN,
    agentMemoryMb: e.DAN_AGENT_MEMORY_MB,
    agentCpus: e.DAN_AGENT_CPUS,
    taskTimeoutS: e.DAN_TASK_TIMEOUT_S,
    taskAttempts: e.DAN_TASK_ATTEMPTS,
    maxSubtasks: e.DAN_MAX_SUBTASKS,
    logMaxLen: e.DAN_LOG_MAXLEN,
    retentionMs: Math.round(e.DAN_RETENTION_DAYS * 86_400_000),
    sessionMaxBytes: e.DAN_SESSION_MAX_BYTES,
    inputTimeoutMs: e.DAN_INPUT_TIMEOUT_S * 1000,
    redisMaxMemory: e.DAN_REDIS_MAXMEMORY.toLowerCase(),
    logLevel: e.DAN_LOG_LEVEL,
    agentRole: e.AGENT_ROLE,
    agentId: e.AGENT_ID,
    domainType: e.DOMAIN_TYPE,
    startRedis: e.DAN_START_REDIS,
    stopAgentsOnExit: e.DAN_STOP_AGENTS_ON_EXIT,
    web: { host: e.DAN_WEB_HOST, port: e.DAN_WEB_PORT, apiToken: e.DAN_API_TOKEN, allowUnauthenticated: e.DAN_WEB_ALLOW_UNAUTHENTICATED },
  };
}

const enabled = (value: string | undefined): boolean => value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';

/**
 * The cloud provider's credential files that agents need, each checked to exist (a ConfigError naming the
 * variable otherwise). Inside a container (the compose orchestrator, an agent) host paths cannot be seen: there
 * nothing is checked.
 */
function credentialFiles(e: DanEnv, inContainer: boolean): CredentialFile[] {
  const files: CredentialFile[] = [];
  const need = (variable: CredentialFile['env'], file: string, why: string): void => {
    const source = path.resolve(file);
    if (!inContainer && !existsSync(source)) {
      throw new ConfigError(variable, `${variable}=${JSON.stringify(file)} does not exist: ${why}`);
    }
    files.push({ env: variable, source });
  };
  if (enabled(e.CLAUDE_CODE_USE_VERTEX) && e.GOOGLE_APPLICATION_CREDENTIALS) {
    need('GOOGLE_APPLICATION_CREDENTIALS', e.GOOGLE_APPLICATION_CREDENTIALS, 'point it at your service account key file, or unset it to use the metadata server');
  }
  if (enabled(e.CLAUDE_CODE_USE_BEDROCK) && (e.AWS_PROFILE || e.AWS_SHARED_CREDENTIALS_FILE)) {
    const home = os.homedir();
    const credentials = e.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials');
    const config = e.AWS_CONFIG_FILE ?? path.join(home, '.aws', 'config');
    // A profile may live in the config file alone (SSO); the credentials file is then optional.
    if (e.AWS_SHARED_CREDENTIALS_FILE || !existsSync(config) || inContainer) {
      need('AWS_SHARED_CREDENTIALS_FILE', credentials, 'set AWS_SHARED_CREDENTIALS_FILE to your AWS credentials file (aws configure writes ~/.aws/credentials)');
    } else if (existsSync(credentials)) {
      files.push({ env: 'AWS_SHARED_CREDENTIALS_FILE', source: path.resolve(credentials) });
    }
    if (e.AWS_CONFIG_FILE) need('AWS_CONFIG_FILE', e.AWS_CONFIG_FILE, 'set AWS_CONFIG_FILE to your AWS config file, or unset it');
    else if (!inContainer && existsSync(config)) files.push({ env: 'AWS_CONFIG_FILE', source: path.resolve(config) });
  }
  return files;
}

/** Host directories an agent container must never get as its workspace: the host itself, or the keys to it. */
const FORBIDDEN_HOST_DIRS = ['/', '/etc', '/bin', '/sbin', '/lib', '/lib64', '/usr', '/boot', '/dev', '/proc', '/sys', '/run', '/var', '/var/run', '/var/lib', '/var/lib/docker', '/root', '/home'];

/**
 * Refuses a host path as the agents' workspace when it is outside DAN_WORKSPACE_ROOT (when set), or is `/`, a
 * system directory, or a directory holding one (the Docker socket included): mounted read-write into every agent,
 * it would hand a model the host.
 */
function checkWorkspaceVolume(volume: string, allowedRoot: string | undefined): void {
  const resolved = path.resolve(volume);
  const refuse = (why: string): never => {
    throw new ConfigError('DAN_WORKSPACE_VOLUME', `DAN_WORKSPACE_VOLUME=${JSON.stringify(volume)} is refused: ${why}`);
  };
  if (allowedRoot !== undefined) {
    const rootDir = path.resolve(allowedRoot);
    if (resolved !== rootDir && !resolved.startsWith(`${rootDir}/`)) refuse(`it is outside DAN_WORKSPACE_ROOT (${rootDir})`);
    return;
  }
  if (FORBIDDEN_HOST_DIRS.includes(resolved)) refuse('it is the host\'s root or a system directory; mount a directory of its own (or set DAN_WORKSPACE_ROOT)');
  for (const system of ['/etc', '/proc', '/sys', '/dev', '/boot', '/var/run', '/run', '/var/lib/docker']) {
    if (resolved.startsWith(`${system}/`)) refuse(`it is inside ${system}`);
  }
}

/**
 * The variables passed through to the Claude Code CLI (never stored, never logged): the ONE list of how agents
 * reach a model. Names as the CLI documents them (code.claude.com/docs/en/env-vars, checked against the bundled
 * binary): an API key or token, a subscription token (`claude setup-token`), Amazon Bedrock, Google Vertex AI. A
 * new credential joins this list and nothing else: agents receive every one of them, with their Redis URL, as
 * {@link SECRET_ENV} on stdin, never in a container's or a process's environment (lib/secrets.ts).
 */
export const PASSTHROUGH_ENV = [
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'ANTHROPIC_BASE_URL',
  'ANTHROPIC_MODEL',
  'ANTHROPIC_SMALL_FAST_MODEL',
  'CLAUDE_CODE_OAUTH_TOKEN',
  // Amazon Bedrock
  'CLAUDE_CODE_USE_BEDROCK',
  'ANTHROPIC_BEDROCK_BASE_URL',
  'CLAUDE_CODE_SKIP_BEDROCK_AUTH',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_BEARER_TOKEN_BEDROCK',
  'AWS_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  // Google Vertex AI
  'CLAUDE_CODE_USE_VERTEX',
  'ANTHROPIC_VERTEX_PROJECT_ID',
  'ANTHROPIC_VERTEX_BASE_URL',
  'CLOUD_ML_REGION',
  'CLAUDE_CODE_SKIP_VERTEX_AUTH',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC',
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
] as const;

/**
 * What a runtime hands an agent as secrets (lib/secrets.ts: on stdin, once, at start) rather than in its
 * environment: the agent's Redis URL (its role's password) and every pass-through variable (keys, tokens, and
 * URLs that may carry credentials, such as a proxy's).
 */
export const SECRET_ENV: readonly string[] = ['REDIS_URL', ...PASSTHROUGH_ENV];

/**
 * The pass-through variables whose values are secrets, whatever their names look like: redacted from everything
 * the CLI prints (lib/executor/redactor.ts) and from log lines (lib/log.ts). A comma-separated token list is
 * redacted token by token.
 */
export const REDACTED_ENV: readonly string[] = [
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_OAUTH_TOKEN',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_BEARER_TOKEN_BEDROCK',
];
