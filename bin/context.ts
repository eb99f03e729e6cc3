import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as util from 'node:util';
import { loadConfig, type ConfigOverrides, type DanConfig } from '../lib/config.js';
import { ConfigError, DanError, RedisUnreachableError } from '../lib/errors.js';
import { Bus, clientRoleUrl, connectRedis, ensureRoleUsers, isAuthError, urlPassword } from '../lib/messaging/index.js';
import { parseInput } from '../lib/task-request.js';
import { withLocalRedisPassword } from './local-redis.js';

/** Flags every command that talks to Redis accepts. */
export interface ConnectionFlags {
  redisUrl?: string;
  network?: string;
}

/**
 * Reads the configuration once: flags over the environment over `.env` ({@link loadDotEnv}). A local REDIS_URL
 * without a password gets the one `dan up` keeps in `.dan/redis-password` of the current folder, when there is
 * one (bin/local-redis.ts); a process a runtime started (AGENT_ROLE set) gets its URL on stdin and reads none.
 */
export function configFrom(flags: ConnectionFlags, extra: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): DanConfig {
  loadDotEnv(env);
  const config = loadConfig(env, { REDIS_URL: flags.redisUrl, DAN_NETWORK: flags.network, ...extra });
  return env.AGENT_ROLE ? config : withLocalRedisPassword(config);
}

/**
 * The configuration a client of the bus (the CLI's commands, `dan serve`) connects with: the client role's URL
 * (docs/SECURITY.md, Redis roles), DAN_CLIENT_REDIS_URL when set, else derived from an admin REDIS_URL.
 */
export function clientConfig(config: DanConfig): DanConfig {
  return { ...config, redisUrl: config.clientRedisUrl ?? clientRoleUrl(config.redisUrl, config.network) };
}

/**
 * Connects a client of the bus as the client role ({@link clientConfig}); `connect` gets the client's
 * configuration. When the role's user does not exist yet (no orchestrator has started on this Redis), a client
 * that was given the admin URL creates the role users (the same idempotent ACL SETUSER every orchestrator runs
 * when it starts) and connects again; on a Redis that allows no ACL users, it connects with the admin URL, as
 * agents then do.
 */
export async function connectClient<T>(config: DanConfig, connect: (client: DanConfig) => Promise<T>): Promise<T> {
  const client = clientConfig(config);
  try {
    return await connect(client);
  } catch (error) {
    // Not there at all: said with the URL the user gave (REDIS_URL), not the role's they never wrote.
    if (error instanceof RedisUnreachableError && !isAuthError(error) && client.redisUrl !== config.redisUrl) throw new RedisUnreachableError(config.redisUrl, { cause: error.cause });
    if (!isAuthError(error)) throw error;
    if (client.redisUrl === config.redisUrl || config.clientRedisUrl !== undefined) throw refused(client.redisUrl, error);
  }
  const admin = await connectRedis(config.redisUrl, { mode: 'cli', name: 'dan-cli:roles' }).catch((error: unknown) => {
    throw isAuthError(error) ? refused(config.redisUrl, error) : error;
  });
  let setup: Awaited<ReturnType<typeof ensureRoleUsers>>;
  try {
    setup = await ensureRoleUsers(admin, config.redisUrl, config.network);
  } finally {
    admin.disconnect();
  }
  return connect(setup.kind === 'set' ? client : config);
}

/** Redis answered but refused the credentials: say how to get the right ones. */
function refused(url: string, cause: unknown): RedisUnreachableError {
  const fix =
    urlPassword(url) === undefined
      ? 'it asks for a password: run dan in the folder you ran `dan up` in (it keeps the password in .dan/redis-password), or put it in REDIS_URL'
      : 'it refused the user or password: check REDIS_URL (or DAN_CLIENT_REDIS_URL)';
  return new RedisUnreachableError(url, { cause, fix });
}

/**
 * Fills in, from `.env` in the current directory (or the file DAN_ENV_FILE names; empty: none), the variables the
 * environment does not set: the `dan` CLI on the host finds the compose network's Redis (REDIS_URL) and the model
 * settings there, like `docker compose` does. A process a runtime started (AGENT_ROLE set) reads none: its cwd is
 * the user's workspace, whose `.env` belongs to the user's project. A missing file is not an error.
 */
export function loadDotEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): void {
  const named = env.DAN_ENV_FILE;
  if (named === '' || (named === undefined && env.AGENT_ROLE)) return;
  const file = path.resolve(cwd, named ?? '.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && named === undefined) return;
    throw new ConfigError('DAN_ENV_FILE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  for (const [name, value] of Object.entries(parseEnvText(text))) {
    if (env[name] === undefined && value !== undefined) env[name] = value;
  }
}

/** Node's own `.env` parser (20.12+); before that, `NAME=value` lines, quotes stripped, `#` lines skipped. */
function parseEnvText(text: string): NodeJS.Dict<string> {
  if (typeof util.parseEnv === 'function') return util.parseEnv(text);
  const out: NodeJS.Dict<string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) out[match[1]!] = match[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** Connects the CLI's bus as the client role ({@link connectClient}): one attempt, fails fast with RedisUnreachableError (exit 3). */
export function connectCli(config: DanConfig): Promise<Bus> {
  return connectClient(config, (client) => Bus.connect(client, { mode: 'cli', name: 'dan-cli' }));
}

/** Parses a CLI value with zod; a failure is a BadInputError naming the flag (lib/task-request.ts, parseInput). */
export const parseFlag = parseInput;

/** Exit codes of the CLI (README, CLI reference). */
export const EXIT = { ok: 0, taskNotCompleted: 1, badInput: 2, redisUnreachable: 3, failure: 4, needsInput: 5 } as const;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof DanError)) return EXIT.failure;
  switch (error.code) {
    case 'DAN_BAD_INPUT':
    case 'DAN_BAD_CONFIG':
    case 'DAN_UNKNOWN_DOMAIN':
    case 'DAN_UNKNOWN_TASK':
    case 'DAN_ILLEGAL_TRANSITION':
      return EXIT.badInput;
    case 'DAN_REDIS_UNREACHABLE':
      return EXIT.redisUnreachable;
    default:
      return EXIT.failure;
  }
}
