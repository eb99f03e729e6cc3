import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig, PASSTHROUGH_ENV, SECRET_ENV } from '../../lib/config.js';
import { cliCommand } from '../../lib/executor/claude-executor.js';
import { clientRoleUrl, isAuthError, rolePassword, roleRules, roleUrl, roleUser } from '../../lib/messaging/redis-acl.js';
import { RedisUnreachableError } from '../../lib/errors.js';
import { clientConfig, configFrom } from '../../bin/context.js';
import { AGENT_CAPABILITIES, agentContainerOptions, CLI_USER } from '../../lib/runtime/container-spec.js';
import { agentEnvironment, readSecrets, secretsLine, splitSecrets } from '../../lib/secrets.js';

describe('secrets on stdin', () => {
  it('are the Redis URL and every pass-through variable: a new credential joins PASSTHROUGH_ENV and nothing else', () => {
    expect(SECRET_ENV).toEqual(['REDIS_URL', ...PASSTHROUGH_ENV]);
    const { env, secrets } = splitSecrets({ REDIS_URL: 'redis://u:p@h:1', ANTHROPIC_API_KEY: 'k', AGENT_ID: 'a', DAN_NETWORK: 'n' });
    expect(env).toEqual({ AGENT_ID: 'a', DAN_NETWORK: 'n' });
    expect(secrets).toEqual({ REDIS_URL: 'redis://u:p@h:1', ANTHROPIC_API_KEY: 'k' });
  });

  it('are read once from the first line, without waiting for the end of stdin', async () => {
    const input = new PassThrough();
    input.write(secretsLine({ REDIS_URL: 'redis://x', ANTHROPIC_API_KEY: 'k' }));
    await expect(readSecrets(input, 5000)).resolves.toEqual({ REDIS_URL: 'redis://x', ANTHROPIC_API_KEY: 'k' });
  });

  it('refuse a name outside the list, a line that is not JSON, an early end and silence, naming no value', async () => {
    expect(() => secretsLine({ PATH: '/bin' })).toThrow();
    // A domain's .mcp.json variables travel under their own prefix, so they can never stand for a setting.
    expect(secretsLine({ 'mcp:GITHUB_TOKEN': 'ghp' })).toBe('{"mcp:GITHUB_TOKEN":"ghp"}\n');
    expect(() => secretsLine({ 'mcp:NOT-A-NAME': 'x' })).toThrow();
    const bad = new PassThrough();
    bad.end('{"PATH":"/bin"}\n');
    await expect(readSecrets(bad, 5000)).rejects.toThrow(/invalid/);
    const notJson = new PassThrough();
    notJson.end('sk-ant-secret\n');
    await expect(readSecrets(notJson, 5000)).rejects.toThrow('the secrets line on stdin is not JSON');
    const ended = new PassThrough();
    ended.end();
    await expect(readSecrets(ended, 5000)).rejects.toThrow(/stdin ended/);
    await expect(readSecrets(new PassThrough(), 50)).rejects.toThrow(/no secrets line on stdin within/);
  });

  it('merge into the agent environment only with DAN_SECRETS=stdin', async () => {
    const input = new PassThrough();
    input.write(secretsLine({ REDIS_URL: 'redis://from-stdin' }));
    expect(await agentEnvironment({ DAN_SECRETS: 'stdin', AGENT_ID: 'a' }, input, 5000)).toEqual({ AGENT_ID: 'a', REDIS_URL: 'redis://from-stdin' });
    expect(await agentEnvironment({ REDIS_URL: 'redis://env' }, new PassThrough(), 50)).toEqual({ REDIS_URL: 'redis://env' });
  });
});

describe('agent containers', () => {
  const settings = { network: 'n', installation: 'inst-n', image: 'i', agentRedisUrl: 'redis://:admin@redis:6379', workspaceVolume: 'n-workspace', memoryMb: 512, cpus: 1, pidsLimit: 64 };
  const options = agentContainerOptions(settings, { agentId: 'a1', role: 'domain', domain: 'backend', env: { REDIS_URL: 'redis://x', ANTHROPIC_API_KEY: 'sk', DAN_MODEL: 'm' } }, 'n-backend-a1');

  it('carry no credential in Env, even one a caller put in the spec, and take them on stdin', () => {
    expect(options.Env!.filter((kv) => /^(REDIS_URL|ANTHROPIC_API_KEY)=/.test(kv))).toEqual([]);
    expect(options.Env).toEqual(expect.arrayContaining(['DAN_SECRETS=stdin', 'DAN_MODEL=m', `DAN_CLI_USER=${CLI_USER}`]));
    expect(options).toMatchObject({ OpenStdin: true, StdinOnce: true, AttachStdin: true });
  });

  it('start as root with only SETUID, SETGID and KILL (the entrypoint drops to uid 1000), no new privileges', () => {
    expect(options.User).toBe('0:0');
    expect(options.HostConfig!.CapDrop).toEqual(['ALL']);
    expect(options.HostConfig!.CapAdd).toEqual([...AGENT_CAPABILITIES]);
    expect(options.HostConfig!.SecurityOpt).toEqual(['no-new-privileges']);
  });
});

describe('the CLI under its own uid', () => {
  it('runs through setpriv with every capability dropped, or as is without DAN_CLI_USER', () => {
    expect(cliCommand('claude', ['-p', 'x'])).toEqual(['claude', ['-p', 'x']]);
    expect(cliCommand('claude', ['-p', 'x'], { uid: 1001, gid: 1000 })).toEqual([
      'setpriv',
      ['--reuid=1001', '--regid=1000', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--no-new-privs', '--', 'claude', '-p', 'x'],
    ]);
    expect(loadConfig({ DAN_CLI_USER: '1001:1000' }).cliUser).toEqual({ uid: 1001, gid: 1000 });
    expect(() => loadConfig({ DAN_CLI_USER: '0:0' })).toThrow(/DAN_CLI_USER/);
  });
});

describe('Redis roles', () => {
  it('derive one password per role and network from the admin password, the same in every orchestrator', () => {
    expect(rolePassword('admin', 'dan', 'agent')).toBe(rolePassword('admin', 'dan', 'agent'));
    expect(rolePassword('admin', 'dan', 'agent')).not.toBe(rolePassword('admin', 'dan', 'client'));
    expect(rolePassword('admin', 'dan', 'agent')).not.toBe(rolePassword('admin', 'other', 'agent'));
    expect(rolePassword('admin', 'dan', 'agent')).not.toContain('admin');
  });

  it("give a role's URL the role's user on the same host, and none without an admin password", () => {
    const url = roleUrl('redis://:s3cret@redis:6379/0', 'redis://:s3cret@127.0.0.1:6379', 'dan', 'agent')!;
    expect(new URL(url)).toMatchObject({ hostname: 'redis', port: '6379', pathname: '/0', username: roleUser('dan', 'agent') });
    expect(decodeURIComponent(new URL(url).password)).toBe(rolePassword('s3cret', 'dan', 'agent'));
    expect(roleUrl('redis://redis:6379', 'redis://127.0.0.1:6379', 'dan', 'agent')).toBeUndefined();
  });

  it('give the CLI the client role: derived from an admin URL, DAN_CLIENT_REDIS_URL when set, a role URL or one without password as it is', () => {
    const client = new URL(clientRoleUrl('redis://:s3cret@127.0.0.1:6379', 'dan'));
    expect(client).toMatchObject({ hostname: '127.0.0.1', username: roleUser('dan', 'client') });
    expect(decodeURIComponent(client.password)).toBe(rolePassword('s3cret', 'dan', 'client'));
    expect(clientRoleUrl('redis://default:s3cret@127.0.0.1:6379', 'dan')).toContain(`${roleUser('dan', 'client')}:`);
    expect(clientRoleUrl('redis://dan-dan-client:pw@127.0.0.1:6379', 'dan')).toBe('redis://dan-dan-client:pw@127.0.0.1:6379');
    expect(clientRoleUrl('redis://127.0.0.1:6379', 'dan')).toBe('redis://127.0.0.1:6379');
    const env = { REDIS_URL: 'redis://:s3cret@127.0.0.1:6379', DAN_ENV_FILE: '' };
    expect(clientConfig(configFrom({}, {}, { ...env })).redisUrl).toBe(clientRoleUrl(env.REDIS_URL, 'dan'));
    expect(clientConfig(configFrom({}, {}, { ...env, DAN_CLIENT_REDIS_URL: 'redis://c:pw@redis:6379' })).redisUrl).toBe('redis://c:pw@redis:6379');
  });

  it('tell a refused credential from an unreachable Redis', () => {
    expect(isAuthError(new RedisUnreachableError('redis://x', { cause: new Error('WRONGPASS invalid username-password pair or user is disabled.') }))).toBe(true);
    expect(isAuthError(new RedisUnreachableError('redis://x', { cause: new Error('NOAUTH Authentication required.') }))).toBe(true);
    expect(isAuthError(new RedisUnreachableError('redis://x', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6379') }))).toBe(false);
  });

  it("give the CLI the password of `dan up`'s Redis from the folder it runs in, for a local URL without one", () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'dan-up-state-'));
    const cwd = process.cwd();
    try {
      process.chdir(folder);
      const env = { REDIS_URL: 'redis://127.0.0.1:6390', DAN_ENV_FILE: '' };
      expect(configFrom({}, {}, { ...env }).redisUrl).toBe('redis://127.0.0.1:6390');
      mkdirSync('.dan');
      writeFileSync('.dan/redis-password', 'abc123\n', { mode: 0o600 });
      expect(configFrom({}, {}, { ...env })).toMatchObject({ redisUrl: 'redis://:abc123@127.0.0.1:6390', agentRedisUrl: 'redis://:abc123@127.0.0.1:6390' });
      // Not for a password of its own, another host, or a process a runtime started (its URL comes on stdin).
      expect(configFrom({}, {}, { ...env, REDIS_URL: 'redis://:mine@127.0.0.1:6390' }).redisUrl).toBe('redis://:mine@127.0.0.1:6390');
      expect(configFrom({}, {}, { ...env, REDIS_URL: 'redis://redis:6379' }).redisUrl).toBe('redis://redis:6379');
      expect(configFrom({}, {}, { ...env, AGENT_ROLE: 'domain' }).redisUrl).toBe('redis://127.0.0.1:6390');
    } finally {
      process.chdir(cwd);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it("confine a role to its network's keys and channels, without dangerous commands", () => {
    const rules = roleRules('dan', 'pw');
    expect(rules.slice(0, 7)).toEqual(['reset', 'on', '>pw', '~dan:*', '&dan:*', '+@all', '-@dangerous']);
    expect(rules).toEqual(expect.arrayContaining(['-scan', '-select', '-script|flush', '+info']));
  });
});
