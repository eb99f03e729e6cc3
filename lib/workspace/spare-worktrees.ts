import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Git } from './git.js';
import { DAN_DIR, headCommit } from './repository.js';

/**
 * Spare worktrees: a worktree whose task ended is parked (HEAD detached, clean) under `.dan/spare/` instead of
 * being removed, and the next task's worktree is made from it. Checking out the integration branch's head in a
 * parked worktree rewrites only the files that differ; `git worktree add` writes every file of the repository
 * (seconds on a 10,000-file repository). What a new task finds there is what a fresh worktree has: tracked files
 * reset to the base, everything untracked or ignored removed (`clean -ffdx`).
 *
 * Never recycled under a live session: only a worktree whose task's change is committed and whose CLI has exited
 * is parked, by the agent whose task it was. Taking one is a rename(2) of its folder, which exactly one agent wins
 * (spares are shared by every agent on the workspace); git is then pointed at the new place as `git worktree
 * repair` does it (one file rewritten), without a git process: parking and taking are on every task's path.
 */
export const SPARE_DIR = 'spare';

/** At most this many parked worktrees: more are removed (a bound on disk use, whatever the agents' churn). */
export const MAX_SPARES = 8;

const spareRoot = (root: string): string => path.join(root, DAN_DIR, SPARE_DIR);

/** The parked worktrees, oldest first (by when they were parked). */
export async function listSpares(root: string): Promise<Array<{ dir: string; parkedAt: number }>> {
  const names = await readdir(spareRoot(root)).catch(() => [] as string[]);
  const spares = await Promise.all(
    names.map(async (name) => {
      const dir = path.join(spareRoot(root), name);
      const parkedAt = await stat(path.join(dir, '.git')).then((s) => s.mtimeMs, () => undefined);
      return parkedAt === undefined ? undefined : { dir, parkedAt };
    }),
  );
  return spares.filter((s) => s !== undefined).sort((a, b) => a.parkedAt - b.parkedAt);
}

/**
 * Moves a parked worktree to `dir` (which must not exist): `taken` false when there is none to take (or every one
 * was taken by another agent first); `ignored` when it holds ignored files, which {@link resetSpare} removes.
 */
export async function takeSpare(git: Git, root: string, dir: string): Promise<{ taken: boolean; ignored: boolean }> {
  for (const spare of (await listSpares(root)).reverse()) {
    try {
      await mkdir(path.dirname(dir), { recursive: true });
      await rename(spare.dir, dir);
    } catch {
      continue; // another agent took it first
    }
    await pointGitAt(dir);
    // A spare is taken only when nothing is uncommitted in it (it may hold a task's change that was not, or
    // have changed since it was parked): the forced checkout would lose that. Moved aside (never deleted)
    // instead, and the next spare tried.
    const state = await spareState(git, dir);
    if (state !== 'dirty') return { taken: true, ignored: state === 'ignored' };
    const aside = path.join(root, DAN_DIR, 'orphans', `spare-${randomUUID()}`);
    await mkdir(path.dirname(aside), { recursive: true });
    await rename(dir, aside);
    await pointGitAt(aside);
  }
  return { taken: false, ignored: false };
}

/** `clean`: nothing but committed files; `ignored`: ignored files too (dan never commits them); `dirty`: uncommitted changes. */
async function spareState(git: Git, dir: string): Promise<'clean' | 'ignored' | 'dirty'> {
  const entries = (await git.run(dir, ['status', '--porcelain', '-z', '--untracked-files=all', '--ignored'])).stdout.split('\0').filter((e) => e.length > 0);
  if (entries.some((e) => !e.startsWith('!! '))) return 'dirty';
  return entries.length > 0 ? 'ignored' : 'clean';
}

/** A worktree's folder was moved to `dir`: its admin folder in the repository is told where (what `git worktree repair` writes). */
async function pointGitAt(dir: string): Promise<void> {
  const admin = await adminDir(dir);
  await replaceFile(path.join(admin, 'gitdir'), `${path.join(dir, '.git')}\n`);
}

/** The worktree's admin folder (`.git/worktrees/<name>`), as its `.git` file names it. */
async function adminDir(dir: string): Promise<string> {
  const pointer = /^gitdir: (.+)$/m.exec(await readFile(path.join(dir, '.git'), 'utf8'))?.[1];
  if (!pointer) throw new Error(`${dir} is not a git worktree (its .git names no admin folder)`);
  return path.resolve(dir, pointer.trim());
}

/** Writes a file whole or not at all (a reader sees the old content or the new), as git writes its own. */
async function replaceFile(file: string, content: string): Promise<void> {
  const temporary = `${file}.dan-${randomUUID()}`;
  await writeFile(temporary, content);
  await rename(temporary, file);
}

/**
 * Parks the worktree at `dir` (its task ended, its change committed): HEAD detached so that its branch is free
 * (what `git checkout --detach` writes: the commit in the worktree's HEAD file; files and index stay as they
 * are), then moved under `.dan/spare/`. Returns false, and leaves the worktree where it is, when the pool is
 * full: the caller removes it then. Whether it is clean is checked when it is taken (then, not now, is when a
 * change in it would be lost).
 */
export async function parkWorktree(git: Git, root: string, dir: string): Promise<boolean> {
  if ((await listSpares(root)).length >= MAX_SPARES) return false;
  await replaceFile(path.join(await adminDir(dir), 'HEAD'), `${await headCommit(git, dir)}\n`);
  const spare = path.join(spareRoot(root), randomUUID());
  await mkdir(spareRoot(root), { recursive: true });
  await rename(dir, spare);
  await pointGitAt(spare);
  return true;
}

/**
 * A taken spare made the task's fresh worktree: on a new branch from `base`, nothing else left in it (ignored
 * files removed when {@link takeSpare} found some).
 */
export async function resetSpare(git: Git, dir: string, branch: string, base: string, ignored: boolean): Promise<{ exitCode: number; stderr: string }> {
  const made = await git.run(dir, ['checkout', '-q', '-f', '--no-recurse-submodules', '-b', branch, base], { ok: [0, 128, 255] });
  if (made.exitCode !== 0) return made;
  if (ignored) await git.run(dir, ['clean', '-ffdxq']);
  return made;
}
