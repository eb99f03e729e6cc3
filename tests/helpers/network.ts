import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type DanConfig } from '../../lib/config.js';
import { Bus, type Redis } from '../../lib/messaging/index.js';
import { deleteNetworkKeys } from './network-keys.js';

export { eventually } from './eventually.js';
export { deleteNetworkKeys, readNetwork, snapshot } from './network-keys.js';

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
