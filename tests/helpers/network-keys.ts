import { createRedis, type Redis } from '../../lib/messaging/index.js';

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

/** A key of a network, with its type and whole value (a set's members sorted; undefined for a type not read). */
export interface StoredKey {
  key: string;
  type: string;
  value: unknown;
}

/** Every key under a prefix with its whole value, whatever its type (SCAN, not KEYS). */
export async function readNetwork(redis: Redis, prefix: string): Promise<StoredKey[]> {
  const out: StoredKey[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      out.push({ key, type, value: await readValue(redis, key, type) });
    }
  } while (cursor !== '0');
  return out;
}

async function readValue(redis: Redis, key: string, type: string): Promise<unknown> {
  switch (type) {
    case 'string':
      return redis.get(key);
    case 'hash':
      return redis.hgetall(key);
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'set':
      return (await redis.smembers(key)).sort();
    case 'zset':
      return redis.zrange(key, '0', '-1', 'WITHSCORES');
    case 'stream':
      return redis.xrange(key, '-', '+');
    default:
      return undefined;
  }
}

/** Every key and its type/value under a prefix: a snapshot to prove a command wrote nothing. */
export async function snapshot(redis: Redis, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { key, type, value } of await readNetwork(redis, prefix)) {
    out[key] = `${type}:${value === undefined ? type : typeof value === 'string' ? value : JSON.stringify(value)}`;
  }
  return out;
}
