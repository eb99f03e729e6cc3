import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, packageRoot } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';

/** Runs loadConfig and returns the ConfigError it throws (fails the test if it does not throw one). */
function configError(env: Record<string, string>, overrides: Record<string, string> = {}): ConfigError {
  try {
    loadConfig(env, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe('configuration defaults (DESIGN.md, Configuration contract)', () => {
  const config = loadConfig({});

  it('talks to redis://localhost:6379 on network "dan", with keys under "dan:"', () => {
    expect(config.redisUrl).toBe('redis://localhost:6379');
    expect(config.agentRedisUrl).toBe('redis://localhost:6379');
    expect(config.network).toBe('dan');
    expect(config.prefix).toBe('dan:');
  });

  it('has the documented liveness timing', () => {
    expect(config.heartbeatMs).toBe(5000);
    expect(config.heartbeatTtlMs).toBe(30_000);
    expect(config.reaperMs).toBe(5000);
    expect(config.idleTimeoutMs).toBe(300_000);
  });

  it('has the documented scaling and task defaults', () => {
    expect(config.maxAgents).toBe(8);
    expect(config.maxAgentsPerDomain).toBe(3);
    expect(config.minAgentsPerDomain).toBe(0);
    expect(config.taskTimeoutS).toBe(300);
    expect(config.taskAttempts).toBe(3);
  });

  it('uses the documented images and the package\'s own templates', () => {
    expect(config.images).toEqual({ agent: 'dan-agent:latest', base: 'node:22-bookworm-slim', redis: 'redis:7-alpine' });
    expect(config.templatesDir).toBe(path.join(packageRoot(), 'agents'));
    expect(config.workspaceVolume).toBe('dan-workspace');
  });

  it('is in a container only inside dan\'s image (DAN_IN_CONTAINER), whatever /.dockerenv says', () => {
    // Dev containers and CI machines (this one included) have /.dockerenv: their workspace is ./workspace.
    expect(loadConfig({}).workspace).toBe(path.resolve('workspace'));
    expect(loadConfig({ DAN_IN_CONTAINER: '1' }).workspace).toBe('/workspace');
  });
});

describe('configuration from the environment', () => {
  it('reads every documented variable', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://user:pw@redis.example:6380/2',
      DAN_AGENT_REDIS_URL: 'redis://host.docker.internal:6379',
      DAN_NETWORK: 'team-a',
      DAN_HEARTBEAT_MS: '1000',
      DAN_HEARTBEAT_TTL_MS: '4000',
      DAN_REAPER_MS: '700',
      DAN_MAX_AGENTS_PER_DOMAIN: '5',
      DAN_TASK_TIMEOUT_S: '60',
      DAN_TASK_ATTEMPTS: '1',
    });
    expect(config).toMatchObject({
      redisUrl: 'rediss://user:pw@redis.example:6380/2',
      agentRedisUrl: 'redis://host.docker.internal:6379',
      network: 'team-a',
      prefix: 'team-a:',
      workspaceVolume: 'team-a-workspace',
      heartbeatMs: 1000,
      heartbeatTtlMs: 4000,
      reaperMs: 700,
      maxAgentsPerDomain: 5,
      taskTimeoutS: 60,
      taskAttempts: 1,
    });
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ REDIS_URL: '', DAN_NETWORK: '', DAN_HEARTBEAT_MS: '', DAN_TASK_TIMEOUT_S: '' });
    expect(config.redisUrl).toBe('redis://localhost:6379');
    expect(config.network).toBe('dan');
    expect(config.heartbeatMs).toBe(5000);
    expect(config.taskTimeoutS).toBe(300);
  });

  it('lets overrides (command-line flags) beat the environment', () => {
    const config = loadConfig({ REDIS_URL: 'redis://env:6379', DAN_NETWORK: 'from-env' }, { REDIS_URL: 'redis://flag:6379', DAN_NETWORK: 'from-flag' });
    expect(config.redisUrl).toBe('redis://flag:6379');
    expect(config.network).toBe('from-flag');
  });

  it('falls back to the environment for an override left undefined', () => {
    const config = loadConfig({ DAN_NETWORK: 'from-env' }, { DAN_NETWORK: undefined });
    expect(config.network).toBe('from-env');
  });
});

describe('a bad value throws one ConfigError naming the variable', () => {
  it.each([
    ['DAN_HEARTBEAT_MS', 'abc'],
    ['DAN_HEARTBEAT_MS', '1.5'],
    ['DAN_HEARTBEAT_MS', '0'],
    ['REDIS_URL', 'http://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['DAN_AGENT_REDIS_URL', 'tcp://x'],
    ['DAN_NETWORK', 'Bad Name'],
    ['DAN_NETWORK', 'a:b'],
    ['DAN_NETWORK', 'x'.repeat(64)],
    ['DAN_RUNTIME', 'kubernetes'],
    ['DAN_TASK_TIMEOUT_S', '9'],
    ['DAN_TASK_TIMEOUT_S', '86401'],
    ['DAN_TASK_ATTEMPTS', '0'],
    ['DAN_MAX_AGENTS_PER_DOMAIN', '-1'],
    ['DAN_LOG_LEVEL', 'loud'],
    ['AGENT_ROLE', 'boss'],
    ['AGENT_ID', 'has space'],
  ])('%s=%j', (variable, value) => {
    const error = configError({ [variable]: value });
    expect(error.code).toBe('DAN_BAD_CONFIG');
    expect(error.variable).toBe(variable);
    expect(error.details).toMatchObject({ variable });
    expect(error.message).toContain(`${variable}=${JSON.stringify(value)} is invalid`);
    expect(error.message).not.toContain('\n');
  });

  it('names the flag\'s variable when the bad value came from an override', () => {
    const error = configError({ DAN_NETWORK: 'fine' }, { DAN_NETWORK: 'Not Fine' });
    expect(error.variable).toBe('DAN_NETWORK');
    expect(error.message).toContain('"Not Fine"');
  });

  it('requires the heartbeat TTL to exceed the heartbeat interval', () => {
    for (const ttl of ['5000', '4000']) {
      const error = configError({ DAN_HEARTBEAT_MS: '5000', DAN_HEARTBEAT_TTL_MS: ttl });
      expect(error.variable).toBe('DAN_HEARTBEAT_TTL_MS');
      expect(error.message).toContain('must be greater than DAN_HEARTBEAT_MS (5000)');
    }
    expect(loadConfig({ DAN_HEARTBEAT_MS: '5000', DAN_HEARTBEAT_TTL_MS: '5001' }).heartbeatTtlMs).toBe(5001);
  });

  it('requires the default TTL to exceed a long interval set alone', () => {
    expect(configError({ DAN_HEARTBEAT_MS: '60000' }).variable).toBe('DAN_HEARTBEAT_TTL_MS');
  });

  it('requires the minimum agents per domain not to exceed the maximum', () => {
    const error = configError({ DAN_MIN_AGENTS_PER_DOMAIN: '4', DAN_MAX_AGENTS_PER_DOMAIN: '3' });
    expect(error.variable).toBe('DAN_MIN_AGENTS_PER_DOMAIN');
  });
});
