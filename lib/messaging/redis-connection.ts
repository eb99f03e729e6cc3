import { Redis, type RedisOptions } from 'ioredis';
import { RedisUnreachableError, redactUrl } from '../errors.js';

export type { Redis } from 'ioredis';

export interface RedisConnectionOptions {
  /** Shown in CLIENT LIST, helps debugging. */
  name?: string;
  /**
   * `service`: long-lived processes (agents, orchestrator, BullMQ workers): reconnect forever, never fail a
   * command for lack of a connection (BullMQ requires `maxRetriesPerRequest: null`).
   * `cli`: one attempt with a short timeout, so the CLI can say "Redis unreachable" at once.
   * @default 'service'
   */
  mode?: 'service' | 'cli';
  connectTimeoutMs?: number;
  /**
   * Fail a command that has had no reply for this long (ioredis `commandTimeout`), instead of waiting for ever on a
   * Redis that is paused or cut off. For connections whose callers must notice an outage in time (the leader lease).
   */
  commandTimeoutMs?: number;
}

/** The one place that constructs ioredis connections. Nothing connects until `connect()` or a first command. */
export function createRedis(url: string, options: RedisConnectionOptions = {}): Redis {
  const mode = options.mode ?? 'service';
  const base: RedisOptions = {
    connectionName: options.name,
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? (mode === 'cli' ? 3000 : 10_000),
    enableReadyCheck: true,
    commandTimeout: options.commandTimeoutMs,
  };
  const modeOptions: RedisOptions =
    mode === 'cli'
      ? { maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: true }
      : { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000) };
  return new Redis(url, { ...base, ...modeOptions });
}

/**
 * Creates a connection and proves it works (PING). Throws RedisUnreachableError naming the URL
 * (password redacted) when it cannot.
 */
export async function connectRedis(url: string, options: RedisConnectionOptions = {}): Promise<Redis> {
  const redis = createRedis(url, options);
  // ioredis emits 'error' on every failed attempt with the real reason (ECONNREFUSED, NOAUTH …), while the
  // promise only says the connection closed: keep the first, report it as the cause, keep it off stderr.
  let reason: unknown;
  const swallow = (error: unknown): void => {
    reason ??= error;
  };
  redis.on('error', swallow);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new RedisUnreachableError(redactUrl(url), { cause: reason ?? error });
  } finally {
    redis.off('error', swallow);
  }
  return redis;
}
