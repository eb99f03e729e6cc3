import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { GitError } from '../errors.js';
import path from 'node:path';
import type { Git } from './git.js';
import { DAN_DIR, headCommit, integrationBranch, resolveCommit } from './repository.js';
import { parkWorktree, resetSpare, takeSpare } from './spare-worktrees.js';
import { attemptBranch, taskBranch, type FileStat } from './task-git.js';

export interface Worktree {
  taskId: string;
  /** Absolute path of the worktree: the CLI's working directory. */
  path: string;
  branch: string;
  integration: string;
  /** The integration branch's head when the worktree was made. */
  base: string;
}

export interface PreparedWorktree extends Worktree {
  /** The branch an earlier attempt's change was moved to, when there was one. */
  kept?: string;
  /** What was done to an earlier attempt's leftovers, one line each, for the task's log. */
  notes: string[];
  /** Set when the worktree must outlive its task (its change could not be committed). */
  keep?: boolean;
}

export interface Identity {
  name: string;
  email: string;
}

export const worktreePath = (root: string, taskId: string): string => path.join(root, DAN_DIR, 'worktrees', taskId);

/**
 * A fresh worktree for an attempt of a task, on branch `dan/<id>` from the integration branch's head (or from
 * `from`, a commit: a follow-up of a task whose branch was not merged starts from that branch's tip). What an
 * earlier attempt left (a worktree, uncommitted changes, the branch) is kept first: its changes are committed
 * to its branch, the branch is renamed `dan/<id>-attempt-<n>`, and only then is its worktree removed.
 */
export async function prepareWorktree(git: Git, root: string, taskId: string, attempt: number, identity: Identity, from?: string): Promise<PreparedWorktree> {
  const dir = worktreePath(root, taskId);
  const branch = taskBranch(taskId);
  const notes = await clearEarlierWorktree(git, root, taskId, identity);
  let kept: string | undefined;
  // A first attempt finds no branch of its own (checked by `worktree add` below, which refuses an existing one).
  if (attempt > 1 && (await git.succeeds(root, ['rev-parse', '--verify', '-q', `refs/heads/${branch}`]))) kept = await keepBranch(git, root, taskId, attempt, notes);
  const integration = await checkedOutBranch(git, root);
  const base = from ? await resolveCommit(git, root, from) : await headCommit(git, root);
  await mkdir(path.dirname(dir), { recursive: true });
  const spare = await takeSpare(git, root, dir);
  const recycled = spare.taken;
  const make = () => (recycled ? resetSpare(git, dir, branch, base, spare.ignored) : git.run(root, ['worktree', 'add', '-q', '-b', branch, dir, base], { ok: [0, 128, 255] }));
  const made = await make();
  if (made.exitCode !== 0) {
    if (!/already exists/.test(made.stderr) || kept) throw new GitError([recycled ? 'checkout' : 'worktree add', '-b', branch], made.exitCode, made.stderr);
    kept = await keepBranch(git, root, taskId, attempt, notes);
    const again = await make();
    if (again.exitCode !== 0) throw new GitError([recycled ? 'checkout' : 'worktree add', '-b', branch], again.exitCode, again.stderr);
  }
  return { taskId, path: dir, branch, integration, base, kept, notes };
}

/**
 * Frees the worktree's place for a new attempt of `taskId`: an earlier attempt's worktree has what it left
 * committed to its branch and is removed; a folder git does not know is moved aside, never deleted. One line
 * per thing done, for the task's log.
 */
async function clearEarlierWorktree(git: Git, root: string, taskId: string, identity: Identity): Promise<string[]> {
  const dir = worktreePath(root, taskId);
  const notes: string[] = [];
  // An earlier attempt's worktree registration whose folder is gone (deleted by hand): forgotten first.
  if (existsSync(path.join(root, '.git', 'worktrees', taskId)) && !existsSync(dir)) await git.run(root, ['worktree', 'prune']);
  if (!existsSync(dir)) return notes;
  if (await isRegisteredWorktree(git, root, dir)) {
    const saved = await saveWork(git, dir, `dan: work left by an earlier attempt of task ${taskId}`, identity);
    if (saved) notes.push(`committed what an earlier attempt left uncommitted (${saved.slice(0, 10)})`);
    await git.run(root, ['worktree', 'remove', '--force', dir]);
  } else {
    // A crash between mkdir and registration.
    const aside = path.join(root, DAN_DIR, 'orphans', `${taskId}-${Date.now()}`);
    await mkdir(path.dirname(aside), { recursive: true });
    await rename(dir, aside);
    notes.push(`moved an unregistered folder at the worktree's place to ${path.relative(root, aside)}`);
  }
  return notes;
}

/** Renames an earlier attempt's branch `dan/<id>` to `dan/<id>-attempt-<n>`, where it is kept. */
async function keepBranch(git: Git, root: string, taskId: string, attempt: number, notes: string[]): Promise<string> {
  const kept = await freeAttemptName(git, root, taskId, Math.max(1, attempt - 1));
  await git.run(root, ['branch', '-m', taskBranch(taskId), kept]);
  notes.push(`kept the earlier attempt's branch as ${kept} (never merged)`);
  return kept;
}

/** The branch checked out in the workspace, from .git/HEAD (no git process), else as git says. */
export async function checkedOutBranch(git: Git, root: string): Promise<string> {
  const head = await readFile(path.join(root, '.git', 'HEAD'), 'utf8').catch(() => '');
  return /^ref: refs\/heads\/(.+)$/m.exec(head)?.[1] ?? (await integrationBranch(git, root));
}

async function freeAttemptName(git: Git, root: string, taskId: string, attempt: number): Promise<string> {
  for (let n = attempt; ; n++) {
    const name = attemptBranch(taskId, n);
    if (!(await git.succeeds(root, ['rev-parse', '--verify', '-q', `refs/heads/${name}`]))) return name;
  }
}

async function isRegisteredWorktree(git: Git, root: string, dir: string): Promise<boolean> {
  const list = await git.text(root, ['worktree', 'list', '--porcelain', '-z']);
  return list.split('\0').some((line) => line === `worktree ${dir}`);
}

/** Commits everything in the worktree (new, changed and deleted files); the new head, or undefined when there was nothing. */
export async function saveWork(git: Git, dir: string, message: string, identity: Identity): Promise<string | undefined> {
  await git.run(dir, ['add', '-A']);
  // `commit` says 1 when nothing is staged.
  const committed = await git.run(dir, ['commit', '-q', '--no-verify', '-m', message], { identity, ok: [0, 1] });
  if (committed.exitCode === 1) {
    if (/nothing (added )?to commit|no changes added/.test(committed.stdout + committed.stderr)) return undefined;
    throw new GitError(['commit'], 1, committed.stderr || committed.stdout);
  }
  return headCommit(git, dir);
}

/** Files changed between two commits with lines added and removed. */
export async function diffStat(git: Git, cwd: string, from: string, to: string): Promise<FileStat[]> {
  const out = await git.run(cwd, ['diff', '--numstat', '-z', '--no-renames', '--no-ext-diff', from, to]);
  return out.stdout
    .split('\0')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [added, removed, ...rest] = line.split('\t');
      const num = (v: string | undefined): number | null => (v === undefined || v === '-' ? null : Number(v));
      return { path: rest.join('\t'), added: num(added), removed: num(removed) };
    });
}

/** Removes a worktree whose task ended (its branch stays). Its changes are committed by then. */
export async function removeWorktree(git: Git, root: string, dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await git.run(root, ['worktree', 'remove', '--force', dir]);
}

/** A worktree whose task ended, parked for the next task when it is clean and there is room, else removed. */
export async function retireWorktree(git: Git, root: string, dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const parked = await parkWorktree(git, root, dir).catch(() => false);
  if (!parked) await removeWorktree(git, root, dir);
}

/**
 * A worktree for `taskId` on an existing branch (a merge task resolving another task's kept branch). An earlier
 * attempt's worktree of the same task is removed first, what it left committed to the branch.
 */
export async function attachWorktree(git: Git, root: string, taskId: string, branch: string, base: string, identity: Identity): Promise<PreparedWorktree> {
  const dir = worktreePath(root, taskId);
  const notes = await clearEarlierWorktree(git, root, taskId, identity);
  await mkdir(path.dirname(dir), { recursive: true });
  await git.run(root, ['worktree', 'add', '-q', dir, branch]);
  return { taskId, path: dir, branch, integration: await integrationBranch(git, root), base, notes };
}
