import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WorkspaceError } from '../../lib/errors.js';
import { LocalGitWorkspace, type PendingMerge, type PendingMergeStore } from '../../lib/workspace/index.js';

/**
 * The git workspace (lib/workspace) with real git in a temporary folder: making the repository, a worktree per
 * attempt, commits, merges into the integration branch, conflicts, a dirty workspace, and the repairs after a
 * killed process. The pending-merge store is the one seam of ours replaced (Redis keeps it in a network).
 */

const who = { name: 'dan test agent', email: 'test@dan.invalid' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'u', GIT_AUTHOR_EMAIL: 'u@x', GIT_COMMITTER_NAME: 'u', GIT_COMMITTER_EMAIL: 'u@x' } }).trim();
}

class MemoryPending implements PendingMergeStore {
  value: PendingMerge | undefined;
  get(): Promise<PendingMerge | undefined> {
    return Promise.resolve(this.value);
  }
  set(pending: PendingMerge): Promise<void> {
    this.value = pending;
    return Promise.resolve();
  }
  clear(): Promise<void> {
    this.value = undefined;
    return Promise.resolve();
  }
}

let dir: string;
let root: string;
let ws: LocalGitWorkspace;

beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-ws-test-')));
  root = path.join(dir, 'workspace');
  ws = new LocalGitWorkspace(root, { env: process.env });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An attempt that writes files, committed: what an agent's run and commit stage do. */
async function taskChange(id: string, files: Record<string, string>, attempt = 1) {
  const wt = await ws.prepare(id, attempt, who);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(wt.path, name)), { recursive: true });
    await writeFile(path.join(wt.path, name), content);
  }
  const change = await ws.commit(wt, `task ${id}`, who);
  return { wt, change };
}

describe('the workspace repository', () => {
  it('makes a folder inside another repository a repository of its own, its files the base commit and .dan/ ignored', async () => {
    git(dir, 'init', '-q');
    await mkdir(root);
    await writeFile(path.join(root, 'README.md'), 'hello\n');
    const state = await ws.ensure();
    expect(state).toEqual({ integration: 'main', created: true });
    expect(await realpath(git(root, 'rev-parse', '--show-toplevel'))).toBe(root);
    expect(git(root, 'log', '--format=%s')).toBe('dan: the workspace as it was');
    expect(git(root, 'ls-files')).toBe('README.md');
    await mkdir(path.join(root, '.dan'), { recursive: true });
    await writeFile(path.join(root, '.dan', 'x'), 'x');
    expect(git(root, 'status', '--porcelain')).toBe('');
    expect(await ws.ensure()).toEqual({ integration: 'main', created: false });
  });

  it('refuses a detached HEAD with the way out', async () => {
    await ws.ensure();
    git(root, 'checkout', '-q', '--detach');
    await expect(ws.prepare('T1', 1, who)).rejects.toThrow(WorkspaceError);
    await expect(ws.prepare('T1', 1, who)).rejects.toThrow(/detached HEAD: check out the branch/);
  });
});

describe('a task attempt', () => {
  beforeEach(async () => {
    await ws.ensure();
  });

  it('works in its own worktree on dan/<id>, and its merge brings its file into the workspace', async () => {
    const { wt, change } = await taskChange('T1', { 'a.txt': 'one\ntwo\n' });
    expect(wt.path).toBe(path.join(root, '.dan', 'worktrees', 'T1'));
    expect(git(wt.path, 'branch', '--show-current')).toBe('dan/T1');
    expect(change.files).toEqual([{ path: 'a.txt', added: 2, removed: 0 }]);
    expect(existsSync(path.join(root, 'a.txt'))).toBe(false);
    const merged = await ws.merge('dan/T1', 'Merge T1', who, new MemoryPending());
    expect(merged).toMatchObject({ state: 'merged', already: false });
    expect(await readFile(path.join(root, 'a.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(git(root, 'rev-parse', 'HEAD')).toBe(merged.state === 'merged' ? merged.mergeCommit : '');
    expect(git(root, 'status', '--porcelain')).toBe('');
    await ws.remove(wt);
    // Parked for the next task (HEAD detached, so the branch is free), not at the task's place any more.
    expect(existsSync(wt.path)).toBe(false);
    const listed = git(root, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree '));
    expect(listed).toHaveLength(2);
    expect(listed[1]).toMatch(new RegExp(`^worktree ${root}/\\.dan/spare/`));
    expect(git(root, 'branch', '--list', 'dan/T1')).toContain('dan/T1');
    expect(await ws.merge('dan/T1', 'again', who, new MemoryPending())).toMatchObject({ state: 'merged', already: true });
  });

  it("makes the next task's worktree from a parked one: the base's files, nothing the last task left, a branch of its own", async () => {
    const first = await taskChange('T5', { 'kept.txt': 'merged\n' });
    expect((await ws.merge('dan/T5', 'Merge T5', who, new MemoryPending())).state).toBe('merged');
    const before = await ws.prepare('T6', 1, who); // from the merged head, with T5's file
    await writeFile(path.join(before.path, 'untracked.txt'), 'left by a task\n');
    await mkdir(path.join(before.path, 'node_modules'), { recursive: true });
    await writeFile(path.join(before.path, '.gitignore'), 'node_modules/\n');
    await writeFile(path.join(before.path, 'node_modules', 'ignored.js'), 'ignored\n');
    expect((await ws.commit(before, 'T6', who)).commit).toBeDefined(); // .gitignore and untracked.txt; node_modules ignored
    await ws.remove(first.wt);
    await ws.remove(before);
    expect(git(root, 'worktree', 'list').split('\n')).toHaveLength(3); // the workspace and two spares

    const next = await ws.prepare('T7', 1, who);
    expect(next.path).toBe(path.join(root, '.dan', 'worktrees', 'T7'));
    expect(git(next.path, 'branch', '--show-current')).toBe('dan/T7');
    expect(git(next.path, 'rev-parse', 'HEAD')).toBe(git(root, 'rev-parse', 'HEAD'));
    expect(await readFile(path.join(next.path, 'kept.txt'), 'utf8')).toBe('merged\n');
    for (const left of ['untracked.txt', '.gitignore', 'node_modules']) expect(existsSync(path.join(next.path, left))).toBe(false);
    expect(git(next.path, 'status', '--porcelain', '--ignored')).toBe('');
    expect(git(root, 'worktree', 'list').split('\n')).toHaveLength(3); // one spare taken, made T7's
    // A branch that exists already is refused, as `worktree add -b` refuses it: the next attempt keeps it first.
    await ws.remove(next);
    const retry = await ws.prepare('T7', 2, who);
    expect(retry.kept).toBe('dan/T7-attempt-1');
    expect(git(retry.path, 'branch', '--show-current')).toBe('dan/T7');
  });

  it('never resets a parked worktree that was changed after it was parked: it is moved aside with the change', async () => {
    const done = await ws.prepare('T8', 1, who);
    await ws.remove(done);
    const [spare] = git(root, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith(`worktree ${root}/.dan/spare/`));
    await writeFile(path.join(spare!.slice('worktree '.length), 'late.txt'), 'written after parking\n');
    const next = await ws.prepare('T9', 1, who);
    expect(existsSync(path.join(next.path, 'late.txt'))).toBe(false);
    const orphans = await readdir(path.join(root, '.dan', 'orphans'));
    expect(orphans).toHaveLength(1);
    expect(await readFile(path.join(root, '.dan', 'orphans', orphans[0]!, 'late.txt'), 'utf8')).toBe('written after parking\n');
  });

  it('with nothing changed has no commit', async () => {
    const wt = await ws.prepare('T2', 1, who);
    expect(await ws.commit(wt, 'nothing', who)).toEqual({ commit: undefined, files: [] });
  });

  it("keeps a dead attempt's uncommitted work on dan/<id>-attempt-<n> and starts the next attempt clean", async () => {
    const first = await ws.prepare('T3', 1, who);
    await writeFile(path.join(first.path, 'half.txt'), 'half done\n');
    const second = await ws.prepare('T3', 2, who);
    expect(second.kept).toBe('dan/T3-attempt-1');
    expect(second.notes.join('\n')).toMatch(/committed what an earlier attempt left uncommitted/);
    expect(existsSync(path.join(second.path, 'half.txt'))).toBe(false);
    expect(git(root, 'show', 'dan/T3-attempt-1:half.txt')).toBe('half done');
    expect(git(root, 'branch', '--show-current')).toBe('main');
  });

  it('conflicts with a change merged meanwhile; resolved in its worktree, it merges with both intents', async () => {
    await taskChange('A', { 'same.txt': 'from A\n' });
    const b = await taskChange('B', { 'same.txt': 'from B\n' });
    expect(await ws.merge('dan/A', 'Merge A', who, new MemoryPending())).toMatchObject({ state: 'merged' });
    const conflict = await ws.merge('dan/B', 'Merge B', who, new MemoryPending());
    expect(conflict).toEqual({ state: 'conflict', files: ['same.txt'] });
    expect(git(root, 'status', '--porcelain')).toBe('');
    expect(await readFile(path.join(root, 'same.txt'), 'utf8')).toBe('from A\n');

    const start = await ws.startResolution(b.wt, who);
    expect(start).toMatchObject({ state: 'conflicted', files: ['same.txt'] });
    expect(await readFile(path.join(b.wt.path, 'same.txt'), 'utf8')).toMatch(/^<<<<<<< /m);
    // Markers left: the resolution is undone, the branch back at the task's own commit.
    expect(await ws.finishResolution(b.wt, ['same.txt'], who)).toEqual(['same.txt']);
    expect(git(b.wt.path, 'show', 'HEAD:same.txt')).toBe('from B');

    await ws.startResolution(b.wt, who);
    await writeFile(path.join(b.wt.path, 'same.txt'), 'from A\nfrom B\n');
    expect(await ws.finishResolution(b.wt, ['same.txt'], who)).toEqual([]);
    expect(await ws.merge('dan/B', 'Merge B', who, new MemoryPending())).toMatchObject({ state: 'merged' });
    expect(await readFile(path.join(root, 'same.txt'), 'utf8')).toBe('from A\nfrom B\n');
  });

  it("is blocked by the user's uncommitted change to the same file, which stays untouched; an unrelated one does not block", async () => {
    await taskChange('C', { 'c.txt': 'from C\n', 'd.txt': 'from C\n' });
    await writeFile(path.join(root, 'c.txt'), "the user's own\n");
    const blocked = await ws.merge('dan/C', 'Merge C', who, new MemoryPending());
    expect(blocked).toMatchObject({ state: 'blocked', files: ['c.txt'] });
    expect(blocked.state === 'blocked' && blocked.reason).toMatch(/uncommitted changes in the workspace to c.txt/);
    expect(await readFile(path.join(root, 'c.txt'), 'utf8')).toBe("the user's own\n");
    expect(existsSync(path.join(root, 'd.txt'))).toBe(false);

    await rm(path.join(root, 'c.txt'));
    await writeFile(path.join(root, 'notes.txt'), 'unrelated\n');
    expect(await ws.merge('dan/C', 'Merge C', who, new MemoryPending())).toMatchObject({ state: 'merged' });
    expect(await readFile(path.join(root, 'notes.txt'), 'utf8')).toBe('unrelated\n');
    expect(await readFile(path.join(root, 'd.txt'), 'utf8')).toBe('from C\n');
  });
});

describe('a merge train', () => {
  beforeEach(async () => {
    await ws.ensure();
  });

  it('merges several branches in one go, each its own merge commit in order, leaving out the one that conflicts', async () => {
    for (const [id, files] of [['P', { 'p.txt': 'from P\n' }], ['Q', { 'same.txt': 'from Q\n' }], ['R', { 'same.txt': 'from R\n' }], ['S', { 's.txt': 'from S\n' }]] as const) await taskChange(id, files);
    const start = git(root, 'rev-parse', 'HEAD');
    const pending = new MemoryPending();
    const car = (id: string) => ({ branch: `dan/${id}`, message: `Merge ${id}`, identity: who });
    const results = await ws.mergeTrain([car('P'), car('Q'), car('R'), car('S'), car('gone')], pending);

    expect(results.map((r) => r.state)).toEqual(['merged', 'merged', 'conflict', 'merged', 'blocked']);
    expect(results[2]).toEqual({ state: 'conflict', files: ['same.txt'] });
    expect(results[4]).toMatchObject({ state: 'blocked', reason: expect.stringMatching(/dan\/gone cannot be merged/) });
    const commits = results.map((r) => (r.state === 'merged' ? r.mergeCommit : ''));
    // A chain: each merge's first parent is the one before, its second the task's branch.
    expect(git(root, 'rev-parse', 'HEAD')).toBe(commits[3]);
    expect(git(root, 'rev-parse', `${commits[3]}^1`)).toBe(commits[1]);
    expect(git(root, 'rev-parse', `${commits[1]}^1`)).toBe(commits[0]);
    expect(git(root, 'rev-parse', `${commits[0]}^1`)).toBe(start);
    expect(git(root, 'rev-parse', `${commits[1]}^2`)).toBe(git(root, 'rev-parse', 'dan/Q'));
    expect(git(root, 'log', '-1', '--format=%s', commits[0]!)).toBe('Merge P');
    for (const [file, content] of [['p.txt', 'from P\n'], ['same.txt', 'from Q\n'], ['s.txt', 'from S\n']]) expect(await readFile(path.join(root, file!), 'utf8')).toBe(content);
    expect(git(root, 'status', '--porcelain')).toBe('');
    expect(pending.value).toBeUndefined();
    // Merged again: nothing new, no commit.
    expect(await ws.mergeTrain([car('P'), car('S')], pending)).toEqual([
      { state: 'merged', mergeCommit: commits[3], already: true },
      { state: 'merged', mergeCommit: commits[3], already: true },
    ]);
  });

  it("blocks only the branch that touches a file the user changed, and merges the rest", async () => {
    await taskChange('C', { 'c.txt': 'from C\n' });
    await taskChange('D', { 'd.txt': 'from D\n' });
    await writeFile(path.join(root, 'c.txt'), "the user's own\n");
    const car = (id: string) => ({ branch: `dan/${id}`, message: `Merge ${id}`, identity: who });
    const [c, d] = await ws.mergeTrain([car('C'), car('D')], new MemoryPending());
    expect(c).toMatchObject({ state: 'blocked', files: ['c.txt'], reason: expect.stringMatching(/uncommitted changes in the workspace to c.txt/) });
    expect(d).toMatchObject({ state: 'merged', already: false });
    expect(await readFile(path.join(root, 'c.txt'), 'utf8')).toBe("the user's own\n");
    expect(await readFile(path.join(root, 'd.txt'), 'utf8')).toBe('from D\n');
    expect(git(root, 'log', '-1', '--format=%s')).toBe('Merge D');
  });
});

describe('after a process was killed', () => {
  beforeEach(async () => {
    await ws.ensure();
  });

  it('undoes a merge that updated the files but never moved the branch, and removes stale lock files', async () => {
    await taskChange('K', { 'k.txt': 'from K\n' });
    const head = git(root, 'rev-parse', 'HEAD');
    // What a merger killed between its checkout and its update-ref leaves: the merge's files, the old branch head,
    // the pending merge in the store, and git's lock files.
    const tree = git(root, 'merge-tree', '--write-tree', head, 'dan/K');
    const merge = git(root, 'commit-tree', tree, '-p', head, '-p', 'dan/K', '-m', 'Merge K');
    git(root, 'read-tree', '-m', '-u', head, merge);
    await writeFile(path.join(root, '.git', 'index.lock'), '');
    await writeFile(path.join(root, '.git', 'refs', 'heads', 'main.lock'), '');
    const pending = new MemoryPending();
    await pending.set({ integration: 'main', base: head, merge });
    expect(existsSync(path.join(root, 'k.txt'))).toBe(true);

    const notes = await ws.recover(pending);
    expect(notes.join('\n')).toMatch(/removed a stale git lock .git\/index.lock/);
    expect(notes.join('\n')).toMatch(/removed a stale git lock .git\/refs\/heads\/main.lock/);
    expect(notes.join('\n')).toMatch(/undid an interrupted merge/);
    expect(pending.value).toBeUndefined();
    expect(existsSync(path.join(root, 'k.txt'))).toBe(false);
    expect(git(root, 'status', '--porcelain')).toBe('');
    expect(git(root, 'rev-parse', 'HEAD')).toBe(head);
    expect(await ws.merge('dan/K', 'Merge K', who, pending)).toMatchObject({ state: 'merged' });
    expect(await readFile(path.join(root, 'k.txt'), 'utf8')).toBe('from K\n');
  });

  it('leaves a file the user changed after an interrupted merge, and says so', async () => {
    await taskChange('L', { 'l.txt': 'from L\n' });
    const head = git(root, 'rev-parse', 'HEAD');
    const merge = git(root, 'commit-tree', git(root, 'merge-tree', '--write-tree', head, 'dan/L'), '-p', head, '-p', 'dan/L', '-m', 'Merge L');
    git(root, 'read-tree', '-m', '-u', head, merge);
    await writeFile(path.join(root, 'l.txt'), 'edited by the user\n');
    const pending = new MemoryPending();
    await pending.set({ integration: 'main', base: head, merge });
    expect((await ws.recover(pending)).join('\n')).toMatch(/but for l.txt, changed since and left as they are/);
    expect(await readFile(path.join(root, 'l.txt'), 'utf8')).toBe('edited by the user\n');
  });

  it('finds a merge that completed before its merger died, and only forgets it', async () => {
    await taskChange('M', { 'm.txt': 'from M\n' });
    const pending = new MemoryPending();
    const merged = await ws.merge('dan/M', 'Merge M', who, pending);
    await pending.set({ integration: 'main', base: git(root, 'rev-parse', 'HEAD^1'), merge: merged.state === 'merged' ? merged.mergeCommit : '' });
    expect(await ws.recover(pending)).toEqual([]);
    expect(pending.value).toBeUndefined();
    expect(await readFile(path.join(root, 'm.txt'), 'utf8')).toBe('from M\n');
  });
});
