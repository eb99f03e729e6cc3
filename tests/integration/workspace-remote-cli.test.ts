import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDan } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';

// `dan workspace clone|pull|push` against DAN_GIT_REMOTE (issue 14): a bare repository as a path, and the same
// served by `git daemon` with receive-pack enabled, as compose's `git` service serves it. Real git throughout.

const GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'A User', GIT_AUTHOR_EMAIL: 'user@example.invalid', GIT_COMMITTER_NAME: 'A User', GIT_COMMITTER_EMAIL: 'user@example.invalid' };
const git = async (cwd: string, ...args: string[]): Promise<string> => (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dan-wsremote-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A repository with one commit of `file`. */
async function repository(name: string, file: string, content: string): Promise<string> {
  const repo = path.join(dir, name);
  await mkdir(repo);
  await git(repo, 'init', '-q', '-b', 'main');
  await writeFile(path.join(repo, file), content);
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', `add ${file}`);
  return repo;
}

const dan = (args: string[], remote: string | undefined, cwd?: string) => runDan(['workspace', ...args], { DAN_GIT_REMOTE: remote, DAN_WORKSPACE: path.join(dir, 'ws'), PATH: process.env.PATH, HOME: dir }, { cwd });

/** One line on stderr starting `dan: `, exit 2, nothing on stdout. */
function expectBadInput(result: Awaited<ReturnType<typeof runDan>>, message: RegExp): void {
  const lines = String(result.stderr).split('\n').filter((l) => l.length > 0);
  expect(lines, String(result.stderr)).toHaveLength(1);
  expect(lines[0]).toMatch(/^dan: /);
  expect(lines[0]).toMatch(message);
  expect(result.stdout).toBe('');
  expect(result.exitCode).toBe(2);
}

/** The seed, clone, pull and refused push a user goes through, against `remote` (whose bare folder is `bare`). */
async function roundTrip(remote: string, bare: string): Promise<void> {
  const seed = await repository('project', 'app.txt', 'version 1\n');
  const pushed = await dan(['push', seed], remote);
  expect(pushed.stderr).toBe('');
  expect(pushed.exitCode).toBe(0);
  expect(pushed.stdout).toMatch(/^pushed .*project's main to .* as main \([0-9a-f]+ add app\.txt\)$/);
  expect(await git(bare, 'show', 'main:app.txt')).toBe('version 1');

  const clone = path.join(dir, 'mine');
  const cloned = await dan(['clone', clone], remote);
  expect(cloned.exitCode, String(cloned.stderr)).toBe(0);
  expect(cloned.stdout).toMatch(/^cloned .* into .*mine on main \([0-9a-f]+ add app\.txt\)$/);
  expect(await readFile(path.join(clone, 'app.txt'), 'utf8')).toBe('version 1\n');

  // Work merged on the remote (here: pushed from the seed) comes to the clone with pull.
  await writeFile(path.join(seed, 'app.txt'), 'version 2\n');
  await git(seed, 'commit', '-q', '-am', 'version 2');
  expect((await dan(['push', seed], remote)).exitCode).toBe(0);
  const pulled = await dan(['pull', clone], remote);
  expect(pulled.exitCode, String(pulled.stderr)).toBe(0);
  expect(pulled.stdout).toMatch(/^pulled 1 commit of main into .*mine \([0-9a-f]{10}\.\.[0-9a-f]{10}\)$/);
  expect(await readFile(path.join(clone, 'app.txt'), 'utf8')).toBe('version 2\n');
  expect((await dan(['pull'], remote, clone)).stdout).toMatch(/is up to date with main/);

  // A repository whose main is not an ancestor of the remote's is refused, never forced: the remote keeps its own.
  const other = await repository('other', 'other.txt', 'not the project\n');
  const before = await git(bare, 'rev-parse', 'main');
  expectBadInput(await dan(['push', other], remote), /the remote's main has commits .*other lacks: refused \(never forced\)/);
  expect(await git(bare, 'rev-parse', 'main')).toBe(before);
}

describe('dan workspace clone|pull|push', () => {
  it('against a bare repository by path: push seeds it, clone and pull bring its branch, a diverged push is refused', { timeout: 120_000 }, async () => {
    const bare = path.join(dir, 'workspace.git');
    await git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
    await roundTrip(bare, bare);
    expect(await git(bare, 'log', '--format=%s', 'main')).toBe('version 2\nadd app.txt');
  });

  it('against git daemon with receive-pack enabled (what compose\'s git service runs), on 127.0.0.1', { timeout: 120_000 }, async () => {
    const root = path.join(dir, 'served');
    await mkdir(root);
    const bare = path.join(root, 'workspace.git');
    await git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
    const port = await freePort();
    const daemon: ChildProcess = spawn('git', ['daemon', '--reuseaddr', '--export-all', '--enable=receive-pack', `--base-path=${root}`, '--listen=127.0.0.1', `--port=${port}`, root], { stdio: 'ignore', env: { ...process.env, ...GIT_ENV } });
    try {
      await eventually(() => canConnect(port), { what: 'git daemon to listen', timeoutMs: 20_000 });
      await roundTrip(`git://127.0.0.1:${port}/workspace.git`, bare);
      expect(await git(bare, 'log', '--format=%s', 'main')).toBe('version 2\nadd app.txt');
    } finally {
      daemon.kill('SIGTERM');
    }
  });

  it('bad input: no DAN_GIT_REMOTE, a folder that is not empty or not a repository, an empty remote to clone: one line, exit 2', { timeout: 120_000 }, async () => {
    const bare = path.join(dir, 'empty.git');
    await git(dir, 'init', '-q', '--bare', '-b', 'main', bare);
    expectBadInput(await dan(['clone', path.join(dir, 'x')], undefined), /DAN_GIT_REMOTE is not set/);
    expectBadInput(await dan(['clone', path.join(dir, 'x')], bare), /has no branch yet: seed it from a repository with dan workspace push/);
    const full = await repository('full', 'a.txt', 'a\n');
    expectBadInput(await dan(['clone', full], bare), /exists and is not empty/);
    await mkdir(path.join(dir, 'plain'));
    expectBadInput(await dan(['push', path.join(dir, 'plain')], bare), /is not a git repository/);
    expectBadInput(await dan(['pull', path.join(dir, 'nowhere')], bare), /does not exist/);
    expectBadInput(await dan(['push', full], 'bad remote'), /DAN_GIT_REMOTE.*must be a git URL or path/);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
