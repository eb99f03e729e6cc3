import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type DanConfig } from '../../lib/config.js';
import { Bus, createRedis, type Redis } from '../../lib/messaging/index.js';

/** A fresh network name per test file (or test), so files run in parallel and leave nothing behind. */
export function uniqueNetwork(label = 't'): string {
  return `dan-${label}-${randomBytes(4).toString('hex')}`;
}

export function redisUrl(): string {
  return inject('redisUrl');
}

/** Config for a test network: short timings, the test Redis, overrides on top. */
export function testConfig(network: string, env: Record<string, string | undefined> = {}): DanConfig {
  return loadConfig({
    REDIS_URL: redisUrl(),
    DAN_NETWORK: network,
    DAN_HEARTBEAT_MS: '200',
    DAN_HEARTBEAT_TTL_MS: '1000',
    DAN_REAPER_MS: '200',
    DAN_LOG_LEVEL: 'silent',
    ...env,
  });
}

/** Everything a test needs to talk to its own network; `cleanup()` removes every key of the network. */
export interface TestNetwork {
  network: string;
  config: DanConfig;
  bus: Bus;
  redis: Redis;
  cleanup(): Promise<void>;
}

export async function openNetwork(env: Record<string, string | undefined> = {}, label = 't'): Promise<TestNetwork> {
  const network = uniqueNetwork(label);
  const config = testConfig(network, env);
  const bus = await Bus.connect(config, { name: `test-${network}` });
  const redis = bus.redis;
  return {
    network,
    config,
    bus,
    redis,
    async cleanup() {
      await deleteNetworkKeys(config.redisUrl, config.prefix);
      await bus.close();
    },
  };
}

/** Deletes every key under a prefix (SCAN, not KEYS). */
export async function deleteNetworkKeys(url: string, prefix: string): Promise<void> {
  const redis = createRedis(url, { name: 'test-cleanup' });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Every key and its type/value under a prefix: a snapshot to prove a command wrote nothing. */
export async function snapshot(redis: Redis, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'string'
            ? String(await redis.get(key))
            : type === 'set'
              ? JSON.stringify((await redis.smembers(key)).sort())
              : type === 'zset'
                ? JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'))
                : type === 'stream'
                  ? String(await redis.xlen(key))
                  : type === 'list'
                    ? JSON.stringify(await redis.lrange(key, 0, -1))
                    : type;
      out[key] = `${type}:${value}`;
    }
  } while (cursor !== '0');
  return out;
}

/** Polls until `check` returns a truthy value or the (generous) timeout passes. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
