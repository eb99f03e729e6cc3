import { randomBytes } from 'node:crypto';
import type { Keys } from './keys.js';
import type { Redis } from './redis-connection.js';

/**
 * This installation's id: made once per network in Redis (`SET NX`), then read by every orchestrator and by
 * `dan down`. The docker runtime labels containers with it and acts only on containers that carry it, so two
 * installations that chose the same network name on one host (each with its own Redis or prefix) never stop,
 * reap or remove each other's containers (issue 16, item 4).
 */
export async function installationId(redis: Redis, keys: Keys): Promise<string> {
  await redis.set(keys.installation, randomBytes(12).toString('hex'), 'NX');
  const id = await redis.get(keys.installation);
  // Only a concurrent DEL between the two commands could leave nothing; ask again once.
  return id ?? installationId(redis, keys);
}
