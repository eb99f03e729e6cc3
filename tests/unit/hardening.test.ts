import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { ConfigError, RedisUnreachableError } from '../../lib/errors.js';
import { agentContainerOptions } from '../../lib/runtime/container-spec.js';

// Smaller hardening items (issue 16, item 5): a workspace outside an allowed root is refused, the Redis URL's
// password never reaches a message, and agent containers get a read-only root filesystem and no swap.

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('loadConfig accepted it');
}

describe('DAN_WORKSPACE_VOLUME', () => {
  it('refuses the host root, system directories and what is inside them', () => {
    for (const volume of ['/', '/etc', '/var/run', '/var/lib/docker', '/root', '/usr', '/proc/1', '/etc/ssh', '/run/docker.sock']) {
      expect(refusal({ DAN_WORKSPACE_VOLUME: volume })).toMatch(new RegExp(`^DAN_WORKSPACE_VOLUME="${volume.replace(/\//g, '\\/')}" is refused: `));
    }
  });

  it('refuses a host path outside DAN_WORKSPACE_ROOT and accepts one inside', () => {
    expect(refusal({ DAN_WORKSPACE_VOLUME: '/srv/other', DAN_WORKSPACE_ROOT: '/srv/dan' })).toMatch(/outside DAN_WORKSPACE_ROOT \(\/srv\/dan\)$/);
    expect(refusal({ DAN_WORKSPACE_VOLUME: '/srv/dan-evil', DAN_WORKSPACE_ROOT: '/srv/dan' })).toMatch(/outside DAN_WORKSPACE_ROOT/);
    expect(loadConfig({ DAN_WORKSPACE_VOLUME: '/srv/dan/ws', DAN_WORKSPACE_ROOT: '/srv/dan' }).workspaceVolume).toBe('/srv/dan/ws');
  });

  it('accepts a project directory and a volume name', () => {
    expect(loadConfig({ DAN_WORKSPACE_VOLUME: '/home/me/project/workspace' }).workspaceVolume).toBe('/home/me/project/workspace');
    expect(loadConfig({ DAN_WORKSPACE_VOLUME: 'dan-workspace' }).workspaceVolume).toBe('dan-workspace');
  });
});

describe('the Redis URL', () => {
  it('is redacted by the unreachable error itself, whoever builds it', () => {
    const error = new RedisUnreachableError('redis://:hunter2@127.0.0.1:6390');
    expect(`${error.message} ${JSON.stringify(error.details)} ${error.url}`).not.toContain('hunter2');
    expect(error.message).toBe('cannot reach Redis at redis://:***@127.0.0.1:6390: start it or set REDIS_URL');
  });
});

describe('agent containers', () => {
  it('have a read-only root filesystem with writable scratch dirs, and swap equal to memory', () => {
    const options = agentContainerOptions(
      { network: 'n', installation: 'i1', image: 'img', agentRedisUrl: 'redis://redis:6379', workspaceVolume: 'n-workspace', memoryMb: 512, cpus: 0.5, pidsLimit: 256 },
      { agentId: 'backend-1', role: 'domain', domain: 'backend', env: {} },
      'n-backend-1',
    );
    expect(options.HostConfig).toMatchObject({ ReadonlyRootfs: true, Memory: 512 * 1024 * 1024, MemorySwap: 512 * 1024 * 1024 });
    expect(Object.keys(options.HostConfig!.Tmpfs ?? {})).toEqual(['/tmp', '/home/agent']);
  });
});
