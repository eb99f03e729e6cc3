import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';
import { agentEnv } from '../../lib/orchestrator/index.js';
import { pushOutcome } from '../../lib/workspace/index.js';

// Workspace by git remote (issue 14): reading `git push --porcelain`, and DAN_GIT_REMOTE's validation. The git
// behind it is exercised for real in tests/integration/git-remote.test.ts.

describe('pushOutcome: what git push --porcelain said', () => {
  it('pushed: exit 0 and no refused ref', () => {
    expect(pushOutcome(0, 'To /srv/ws.git\n \trefs/heads/main:refs/heads/main\tabc..def\nDone\n', '')).toEqual({ state: 'pushed' });
    expect(pushOutcome(0, 'To /srv/ws.git\n=\trefs/heads/dan/x:refs/heads/dan/x\t[up to date]\nDone\n', '')).toEqual({ state: 'pushed' });
  });

  it('moved: rejected as fetch first, non-fast-forward or stale info (as git 2.39 prints them)', () => {
    expect(pushOutcome(1, 'To /srv/ws.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n', 'error: failed to push some refs')).toEqual({ state: 'moved', ref: 'refs/heads/main' });
    expect(pushOutcome(1, '!\trefs/heads/main:refs/heads/main\t[rejected] (non-fast-forward)\n', '')).toEqual({ state: 'moved', ref: 'refs/heads/main' });
    expect(pushOutcome(1, '!\t:refs/heads/dan/x\t[rejected] (stale info)\n', '')).toEqual({ state: 'moved', ref: 'refs/heads/dan/x' });
  });

  it('failed: refused by the remote, or no answer at all, in git\'s words', () => {
    expect(pushOutcome(1, '!\trefs/heads/main:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n', '')).toEqual({ state: 'failed', reason: 'refs/heads/main:refs/heads/main [remote rejected] (pre-receive hook declined)' });
    expect(pushOutcome(128, '', "fatal: unable to connect to git:\ngit: Name or service not known\n")).toEqual({ state: 'failed', reason: 'fatal: unable to connect to git:' });
    expect(pushOutcome(1, '', '')).toEqual({ state: 'failed', reason: 'exit 1' });
  });
});

describe('DAN_GIT_REMOTE', () => {
  const error = (env: Record<string, string>): ConfigError => {
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return e as ConfigError;
    }
    throw new Error('did not throw');
  };

  it('is unset by default; set, agents keep their clones in DAN_GIT_CLONE_DIR, else the workspace', () => {
    expect(loadConfig({}).gitRemote).toBeUndefined();
    const config = loadConfig({ DAN_GIT_REMOTE: 'git://git:9418/workspace', DAN_WORKSPACE: '/tmp/ws' });
    expect(config.gitRemote).toBe('git://git:9418/workspace');
    expect(config.gitCloneDir).toBe('/tmp/ws');
    expect(loadConfig({ DAN_GIT_REMOTE: '/srv/ws.git', DAN_GIT_CLONE_DIR: 'clones' }).gitCloneDir).toBe(path.resolve('clones'));
  });

  it('refuses what git would take for an option, spaces, a password in the URL, and shared mode', () => {
    expect(error({ DAN_GIT_REMOTE: '--upload-pack=touch /tmp/x' }).message).toMatch(/DAN_GIT_REMOTE.*must be a git URL or path/);
    expect(error({ DAN_GIT_REMOTE: '/srv/my ws.git' }).message).toMatch(/DAN_GIT_REMOTE/);
    expect(error({ DAN_GIT_REMOTE: 'https://me:secret@example.com/ws.git' }).message).toMatch(/must not carry a password/);
    expect(error({ DAN_GIT_REMOTE: '/srv/ws.git', DAN_WORKSPACE_MODE: 'shared' }).message).toMatch(/needs DAN_WORKSPACE_MODE=git/);
  });

  it('reaches agents: the remote always, the clone folder with the process runtime only', () => {
    const config = loadConfig({ DAN_GIT_REMOTE: 'git://git/workspace', DAN_GIT_CLONE_DIR: '/tmp/clones' });
    expect(agentEnv(config, { agentId: 'a', domain: 'backend', role: 'domain', runtime: 'process' }, {})).toMatchObject({ DAN_GIT_REMOTE: 'git://git/workspace', DAN_GIT_CLONE_DIR: '/tmp/clones' });
    const docker = agentEnv(config, { agentId: 'a', domain: 'backend', role: 'domain', runtime: 'docker' }, {});
    expect(docker.DAN_GIT_REMOTE).toBe('git://git/workspace');
    expect(docker.DAN_GIT_CLONE_DIR).toBeUndefined();
    expect(agentEnv(loadConfig({}), { agentId: 'a', domain: 'backend', role: 'domain', runtime: 'process' }, {}).DAN_GIT_REMOTE).toBeUndefined();
  });
});
