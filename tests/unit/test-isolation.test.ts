import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDotEnv } from '../../bin/context.js';
import { removeConfigDir } from '../../lib/executor/index.js';
import { repoRoot } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dan-isolation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tests do not depend on the machine they run on', () => {
  it("ignore a user's .env in the repository root: every test process reads none", () => {
    // vitest.config.ts sets DAN_ENV_FILE empty for every test process and the children that inherit it.
    expect(process.env.DAN_ENV_FILE).toBe('');
    const env: NodeJS.ProcessEnv = { DAN_ENV_FILE: process.env.DAN_ENV_FILE };
    loadDotEnv(env, repoRoot());
    expect(env).toEqual({ DAN_ENV_FILE: '' });
  });
});

describe('removeConfigDir', () => {
  it('removes an agent config dir and the folders above it that it leaves empty, and no more', async () => {
    const root = path.join(dir, 'dan');
    const mine = path.join(root, 'net-a', 'backend-1');
    const sibling = path.join(root, 'net-b', 'frontend-1');
    mkdirSync(mine, { recursive: true });
    mkdirSync(sibling, { recursive: true });
    writeFileSync(path.join(mine, 'CLAUDE.md'), 'x');

    await removeConfigDir(mine);
    expect(existsSync(path.join(root, 'net-a'))).toBe(false);
    expect(existsSync(sibling)).toBe(true); // another network's agent still runs: `dan` stays

    await removeConfigDir(sibling);
    expect(existsSync(root)).toBe(false);
    expect(existsSync(dir)).toBe(true); // two levels only: the temporary folder itself is never touched
  });

  it('keeps the network folder while another agent of the network still has its dir there', async () => {
    const net = path.join(dir, 'dan2', 'net');
    mkdirSync(path.join(net, 'a'), { recursive: true });
    mkdirSync(path.join(net, 'b'), { recursive: true });
    await removeConfigDir(path.join(net, 'a'));
    expect(existsSync(path.join(net, 'b'))).toBe(true);
    await expect(removeConfigDir(path.join(net, 'gone'))).resolves.toBeUndefined();
  });
});
