import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Git } from './git.js';
import { DAN_DIR } from './repository.js';

/**
 * Spare worktrees: a worktree whose task ended is parked (HEAD detached, clean) under `.dan/spare/` instead of
 * being removed, and the next task's worktree is made from it. Checking out the integration branch's head in a
 * parked worktree rewrites only the files that differ; `git worktree add` writes every file of the repository
 * (seconds on a 10,000-file repository). What a new task finds there is what a fresh worktree has: tracked files
 * reset to the base, everything untracked or ignored removed (`clean -ffdx`).
 *
 * Never recycled under a live session: only a worktree whose task's change is committed and whose CLI has exited
 * is parked, by the agent whose task it was. Taking one is a rename(2) of its folder, which exactly one agent wins
 * (spares are shared by every agent on the workspace); `git worktree repair` then points git at the new place.
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
 * Moves a parked worktree to `dir` (which must not exist) and returns true, or false when there is none to take
 * (or every one was taken by another agent first).
 */
export async function takeSpare(git: Git, root: string, dir: string): Promise<boolean> {
  for (const spare of (await listSpares(root)).reverse()) {
    try {
      await mkdir(path.dirname(dir), { recursive: true });
      await rename(spare.dir, dir);
    } catch {
      continue; // another agent took it first
    }
    await git.run(root, ['worktree', 'repair', dir]);
    // Parked clean; should anything have changed it since, the forced checkout would lose that: moved aside
    // (never deleted) instead, and the next spare tried.
    if (await isClean(git, dir)) return true;
    const aside = path.join(root, DAN_DIR, 'orphans', `spare-${randomUUID()}`);
    await mkdir(path.dirname(aside), { recursive: true });
    await rename(dir, aside);
    await git.run(root, ['worktree', 'repair', aside]);
  }
  return false;
}

/** Nothing uncommitted in the worktree (ignored files aside: dan never commits them). */
async function isClean(git: Git, dir: string): Promise<boolean> {
  return (await git.run(dir, ['status', '--porcelain', '-z', '--untracked-files=all'])).stdout.length === 0;
}

/**
 * Parks the worktree at `dir` (its task ended, its change committed): HEAD detached so that its branch is free,
 * then moved under `.dan/spare/`. Returns false, and leaves the worktree where it is, when it is not clean
 * (something uncommitted) or the pool is full: the caller removes it then.
 */
export async function parkWorktree(git: Git, root: string, dir: string): Promise<boolean> {
  if ((await listSpares(root)).length >= MAX_SPARES) return false;
  if (!(await isClean(git, dir))) return false;
  await git.run(dir, ['checkout', '-q', '--detach']);
  const spare = path.join(spareRoot(root), randomUUID());
  await mkdir(spareRoot(root), { recursive: true });
  await rename(dir, spare);
  await git.run(root, ['worktree', 'repair', spare]);
  return true;
}

/** A taken spare made the task's fresh worktree: on a new branch from `base`, nothing else left in it. */
export async function resetSpare(git: Git, dir: string, branch: string, base: string): Promise<{ exitCode: number; stderr: string }> {
  const made = await git.run(dir, ['checkout', '-q', '-f', '--no-recurse-submodules', '-b', branch, base], { ok: [0, 128, 255] });
  if (made.exitCode !== 0) return made;
  await git.run(dir, ['clean', '-ffdxq']);
  return made;
}
