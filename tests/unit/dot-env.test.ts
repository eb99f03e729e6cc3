import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDotEnv } from '../../bin/context.js';
import { ConfigError } from '../../lib/errors.js';

// The host CLI reads `.env` from the current directory, as `docker compose` does, so `dan` finds the compose Redis.
const dir = mkdtempSync(path.join(os.tmpdir(), 'dan-dotenv-'));
writeFileSync(
  path.join(dir, '.env'),
  ['# a comment', 'REDIS_URL=redis://:secret@127.0.0.1:6380', 'DAN_NETWORK=fromfile', 'QUOTED="two words"', 'EMPTY=', ''].join('\n'),
);
writeFileSync(path.join(dir, 'other.env'), 'DAN_NETWORK=fromother\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadDotEnv', () => {
  it('fills in what the environment does not set; the environment wins', () => {
    const env: NodeJS.ProcessEnv = { DAN_NETWORK: 'fromshell' };
    loadDotEnv(env, dir);
    expect(env).toEqual({ DAN_NETWORK: 'fromshell', REDIS_URL: 'redis://:secret@127.0.0.1:6380', QUOTED: 'two words', EMPTY: '' });
  });

  it('reads the file DAN_ENV_FILE names, and none when it is empty', () => {
    const named: NodeJS.ProcessEnv = { DAN_ENV_FILE: 'other.env' };
    loadDotEnv(named, dir);
    expect(named.DAN_NETWORK).toBe('fromother');
    const none: NodeJS.ProcessEnv = { DAN_ENV_FILE: '' };
    loadDotEnv(none, dir);
    expect(none).toEqual({ DAN_ENV_FILE: '' });
  });

  it('reads nothing in a process a runtime started (its cwd is the user workspace)', () => {
    const env: NodeJS.ProcessEnv = { AGENT_ROLE: 'domain' };
    loadDotEnv(env, dir);
    expect(env).toEqual({ AGENT_ROLE: 'domain' });
  });

  it('is quiet without a .env, and says which file when a named one is missing', () => {
    const env: NodeJS.ProcessEnv = {};
    loadDotEnv(env, path.join(dir, 'no-such-dir'));
    expect(env).toEqual({});
    expect(() => loadDotEnv({ DAN_ENV_FILE: 'missing.env' }, dir)).toThrow(ConfigError);
    expect(() => loadDotEnv({ DAN_ENV_FILE: 'missing.env' }, dir)).toThrow(/missing\.env/);
  });
});
