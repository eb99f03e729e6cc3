import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DanConfig } from '../lib/config.js';
import { ConfigError, RedisUnreachableError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { connectRedis, urlPassword } from '../lib/messaging/index.js';

/**
 * What `dan up` keeps in the folder it runs in (docs/SECURITY.md, *`dan up`'s Redis*): `.dan/redis/`, the data of
 * the redis-server it starts, and `.dan/redis-password` (mode 0600), that server's admin password, made once.
 * The `dan` CLI run from the same folder reads the password to reach that Redis, and connects as the client role.
 */
export const UP_STATE_DIR = '.dan';
const PASSWORD_FILE = 'redis-password';

export const isLocal = (redisUrl: string): boolean => ['localhost', '127.0.0.1', '::1', '[::1]'].includes(new URL(redisUrl).hostname);

/** `url` with `password` as the default user's. */
function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

/** The admin password of `dan up`'s Redis kept in `dir`, or undefined when `dan up` never started one there. */
export function readLocalRedisPassword(dir = process.cwd()): string | undefined {
  const file = path.join(dir, UP_STATE_DIR, PASSWORD_FILE);
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError('REDIS_URL', `cannot read ${file}, the password of the Redis \`dan up\` started here: ${(error as Error).message}`, { cause: error });
  }
}

/** The password of `dan up`'s Redis in `dir`: the one kept there, or a new random one written with mode 0600. */
function ensureLocalRedisPassword(dir: string): string {
  const existing = readLocalRedisPassword(dir);
  if (existing !== undefined) return existing;
  mkdirSync(path.join(dir, UP_STATE_DIR), { recursive: true, mode: 0o700 });
  const password = randomBytes(24).toString('hex');
  try {
    writeFileSync(path.join(dir, UP_STATE_DIR, PASSWORD_FILE), `${password}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another `dan up` in this folder wrote it first: use that one.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readLocalRedisPassword(dir)!;
    throw error;
  }
  return password;
}

/**
 * A local REDIS_URL without a password, run from a folder where `dan up` keeps one, with that password: the
 * Redis `dan up` started there asks for it. Anything else as it is.
 */
export function withLocalRedisPassword(config: DanConfig, dir = process.cwd()): DanConfig {
  if (!isLocal(config.redisUrl) || urlPassword(config.redisUrl) !== undefined) return config;
  const password = readLocalRedisPassword(dir);
  if (password === undefined) return config;
  const redisUrl = withPassword(config.redisUrl, password);
  return { ...config, redisUrl, agentRedisUrl: config.agentRedisUrl === config.redisUrl ? redisUrl : config.agentRedisUrl };
}

/** The redis-server `dan up` started, and the configuration that reaches it (its admin password in the URL). */
export interface LocalRedis {
  child: ChildProcess;
  config: DanConfig;
}

/**
 * Starts a local redis-server for `dan up` when REDIS_URL points at this machine and nothing answers there: bound
 * to 127.0.0.1, with an admin password (REDIS_URL's, else the one kept in `.dan/redis-password`, made on first
 * use), which it reads on its stdin, never from its command line (`ps` shows that to every user). The
 * orchestrator then sets up the role users on it, as under compose.
 */
export async function startLocalRedis(config: DanConfig, logger: Logger, dir = process.cwd()): Promise<LocalRedis | undefined> {
  const url = new URL(config.redisUrl);
  if (!isLocal(config.redisUrl)) return undefined;
  try {
    (await connectRedis(config.redisUrl, { mode: 'cli' })).disconnect();
    return undefined; // already running
  } catch {
    // not reachable: start one below
  }
  const password = urlPassword(config.redisUrl) ?? ensureLocalRedisPassword(dir);
  const redisUrl = withPassword(config.redisUrl, password);
  const started = { ...config, redisUrl, agentRedisUrl: config.agentRedisUrl === config.redisUrl ? redisUrl : config.agentRedisUrl };
  const data = path.resolve(dir, UP_STATE_DIR, 'redis');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const port = url.port || '6379';
  const args = ['-', '--port', port, '--bind', '127.0.0.1', '--dir', data, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory', config.redisMaxMemory, '--maxmemory-policy', 'noeviction', '--save', ''];
  const child = spawn('redis-server', args, { stdio: ['pipe', 'ignore', 'ignore'] });
  const failed = new Promise<never>((_, reject) => child.once('error', reject));
  failed.catch(() => {});
  child.stdin!.on('error', () => {}); // a redis-server that failed to start closed it: `failed` says why
  child.stdin!.end(`requirepass ${password}\n`);
  for (let i = 0; i < 50; i++) {
    try {
      await Promise.race([failed, new Promise((r) => setTimeout(r, 100))]);
      (await connectRedis(redisUrl, { mode: 'cli' })).disconnect();
      logger.info({ port, dir: data }, 'started a local redis-server (append-only file in .dan/redis, admin password in .dan/redis-password)');
      return { child, config: started };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RedisUnreachableError(config.redisUrl, { cause: new Error('redis-server is not installed: apt-get install redis-server, or set REDIS_URL') });
      }
    }
  }
  child.kill();
  throw new RedisUnreachableError(config.redisUrl);
}
