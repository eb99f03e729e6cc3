import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Git } from './git.js';
import type { Identity } from './worktrees.js';

export type ResolutionStart =
  | { state: 'clean' }
  | {
      state: 'conflicted';
      files: string[];
      /** The integration branch's commits the task's branch lacks, newest first (`<hash> <subject>`). */
      theirs: string[];
    };

/**
 * Merges the integration branch into the task's branch in its own worktree, so that the agent that made the
 * change can resolve the conflict there. `clean` when it merged without conflict (the integration branch moved
 * on since); else the worktree is left mid-merge with conflict markers, for {@link finishResolution}.
 */
export async function startResolution(git: Git, dir: string, integration: string, identity: Identity): Promise<ResolutionStart> {
  const merged = await git.run(dir, ['merge', '--no-ff', '--no-edit', '--no-verify', integration], { ok: [0, 1], identity });
  if (merged.exitCode === 0) return { state: 'clean' };
  const files = (await git.run(dir, ['diff', '--name-only', '-z', '--diff-filter=U'])).stdout.split('\0').filter((f) => f.length > 0);
  const theirs = (await git.run(dir, ['log', '--format=%h %s', '-n', '20', 'HEAD..MERGE_HEAD'])).stdout.split('\n').filter((l) => l.length > 0);
  return { state: 'conflicted', files, theirs };
}

/** Files that still hold conflict markers. */
export async function unresolvedFiles(dir: string, files: readonly string[]): Promise<string[]> {
  const left: string[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    if (!existsSync(full)) continue;
    const text = await readFile(full, 'utf8');
    if (/^<{7} |^>{7} /m.test(text)) left.push(file);
  }
  return left;
}

/**
 * Concludes the merge the agent resolved: commits it when no file holds conflict markers any more, else aborts
 * it (the branch is back at the task's own commit, nothing of the change lost). Returns what is still unresolved.
 */
export async function finishResolution(git: Git, dir: string, files: readonly string[], identity: Identity): Promise<string[]> {
  const left = await unresolvedFiles(dir, files);
  if (left.length > 0 || !(await git.succeeds(dir, ['rev-parse', '-q', '--verify', 'MERGE_HEAD']))) {
    await abortResolution(git, dir);
    return left;
  }
  await git.run(dir, ['add', '-A']);
  await git.run(dir, ['commit', '-q', '--no-edit', '--no-verify'], { identity });
  return [];
}

/** Gives up a merge in the worktree, if one is in progress. */
export async function abortResolution(git: Git, dir: string): Promise<void> {
  if (await git.succeeds(dir, ['rev-parse', '-q', '--verify', 'MERGE_HEAD'])) await git.run(dir, ['merge', '--abort']);
}
