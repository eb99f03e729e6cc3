import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GitError } from '../errors.js';
import type { Git } from './git.js';
import { resolveCommit } from './repository.js';
import { checkedOutBranch, type Identity } from './worktrees.js';

/** A merge into the integration branch in flight: written before the workspace changes, cleared after. */
export const pendingMergeSchema = z.object({ integration: z.string(), base: z.string().regex(/^[0-9a-f]{40,64}$/), merge: z.string().regex(/^[0-9a-f]{40,64}$/) });
export type PendingMerge = z.infer<typeof pendingMergeSchema>;

/** Where the merge step keeps its pending merge (Redis, beside the merge lock), so a successor can finish or undo it. */
export interface PendingMergeStore {
  get(): Promise<PendingMerge | undefined>;
  set(pending: PendingMerge): Promise<void>;
  clear(): Promise<void>;
}

export type MergeResult =
  | { state: 'merged'; mergeCommit: string; already: boolean }
  | { state: 'conflict'; files: string[] }
  | { state: 'blocked'; files: string[]; reason: string };

/**
 * Merges `branch` into the integration branch checked out at `root`, never leaving the workspace half-merged:
 * the merge is computed without touching it (`merge-tree`), refused when the user's uncommitted changes touch
 * the same files, then applied as one two-tree checkout and a compare-and-set of the branch. Run it holding the
 * network's merge lock, after {@link recoverWorkspace}.
 */
export async function mergeIntoIntegration(
  git: Git,
  root: string,
  branch: string,
  message: string,
  identity: Identity,
  pending: PendingMergeStore,
): Promise<MergeResult> {
  const integration = await checkedOutBranch(git, root);
  const [head, headTree, tip] = (await git.text(root, ['rev-parse', 'HEAD', 'HEAD^{tree}', `${branch}^{commit}`])).split('\n') as [string, string, string];

  const computed = await git.run(root, ['merge-tree', '--write-tree', '--name-only', '--no-messages', head, tip], { ok: [0, 1] });
  const [tree, ...conflicted] = computed.stdout.split('\n').filter((line) => line.length > 0);
  if (computed.exitCode === 1) return { state: 'conflict', files: [...new Set(conflicted)] };
  // Nothing the integration branch lacks (merged before, or a change already there): no merge commit.
  if (tree === headTree) return { state: 'merged', mergeCommit: head, already: true };

  const changed = await names(git, root, ['diff', '--name-only', '-z', '--no-renames', head, tree!]);
  const dirty = await dirtyFiles(git, root, changed);
  const touched = changed.filter((file) => dirty.has(file));
  if (touched.length > 0) {
    return { state: 'blocked', files: touched, reason: `uncommitted changes in the workspace to ${touched.join(', ')}: commit or stash them, then \`dan merge\`` };
  }

  const merge = await git.text(root, ['commit-tree', tree!, '-p', head, '-p', tip, '-m', message], { identity });
  await pending.set({ integration, base: head, merge });
  const checkout = await git.run(root, ['read-tree', '-m', '-u', head, merge], { ok: [0, 128] });
  if (checkout.exitCode !== 0) {
    await pending.clear();
    const files = [...checkout.stderr.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
    return { state: 'blocked', files, reason: `git refused to update the workspace: ${checkout.stderr.trim().split('\n')[0]}` };
  }
  await git.run(root, ['update-ref', '-m', `dan: merge ${branch}`, `refs/heads/${integration}`, merge, head]);
  await pending.clear();
  return { state: 'merged', mergeCommit: merge, already: false };
}

/**
 * Puts the workspace back in order after a merge step that died (run holding the merge lock, before merging):
 * stale git lock files are removed (no other merge can be running), and a merge that checked out its files but
 * never moved the branch is undone (its files set back to the branch's head; the task's branch keeps the change).
 * Returns one line per repair, for the log.
 */
export async function recoverWorkspace(git: Git, root: string, pending: PendingMergeStore, staleAfterMs = 0): Promise<string[]> {
  const notes: string[] = [];
  const gitDir = path.join(root, '.git');
  const integration = await checkedOutBranch(git, root);
  for (const lock of [path.join(gitDir, 'index.lock'), path.join(gitDir, 'HEAD.lock'), path.join(gitDir, 'refs', 'heads', `${integration}.lock`)]) {
    const info = await stat(lock).catch(() => undefined);
    if (!info) continue;
    const age = Date.now() - info.mtimeMs;
    // Younger than a lock holder's TTL, it may be a live git's (one that outlived a lapsed lease): left for
    // the merge to wait on.
    if (age < staleAfterMs) continue;
    await rm(lock, { force: true });
    notes.push(`removed a stale git lock ${path.relative(root, lock)} (${Math.round(age / 1000)} s old) left by a killed process`);
  }
  const left = await pending.get();
  if (!left) return notes;
  const head = await resolveCommit(git, root, 'HEAD');
  if (head === left.merge || left.integration !== integration) {
    await pending.clear();
    return notes;
  }
  if (head === left.base) {
    // The index and files may be anywhere between the two trees: file by file, what still has the merge's
    // content goes back to the branch's; what has other content (changed since, by the user) is left alone.
    await git.run(root, ['read-tree', left.base]);
    const changed = await names(git, root, ['diff', '--name-only', '-z', '--no-renames', left.base, left.merge]);
    const leftAlone: string[] = [];
    for (const file of changed) {
      const theirs = await git.run(root, ['rev-parse', '-q', '--verify', `${left.merge}:${file}`], { ok: [0, 1, 128] });
      const onDisk = existsSync(path.join(root, file)) ? await git.text(root, ['hash-object', '--', file]) : undefined;
      if (onDisk !== (theirs.exitCode === 0 ? theirs.stdout.trim() : undefined)) {
        if (onDisk !== undefined) leftAlone.push(file);
        continue;
      }
      if (await git.succeeds(root, ['cat-file', '-e', `${left.base}:${file}`])) await git.run(root, ['checkout', left.base, '--', file]);
      else await rm(path.join(root, file), { force: true });
    }
    notes.push(
      `undid an interrupted merge (${left.merge.slice(0, 10)}): its files are back as ${integration} has them` +
        (leftAlone.length > 0 ? `, but for ${leftAlone.join(', ')}, changed since and left as they are` : ''),
    );
  }
  await pending.clear();
  return notes;
}

async function names(git: Git, cwd: string, args: string[]): Promise<string[]> {
  return (await git.run(cwd, args)).stdout.split('\0').filter((name) => name.length > 0);
}

/** Of `paths`, those with uncommitted changes in the workspace (staged, unstaged or untracked). */
async function dirtyFiles(git: Git, root: string, paths: readonly string[]): Promise<Set<string>> {
  // Limited to the paths the merge changes, so a large repository's other files are not scanned.
  const pathspec = paths.length <= 1000 ? ['--', ...paths.map((p) => `:(literal)${p}`)] : [];
  // Optional locks on: status also refreshes those paths' entries in the index, which the checkout relies on.
  const out = await git.run(root, ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames', ...pathspec], { optionalLocks: true });
  const files = new Set<string>();
  for (const entry of out.stdout.split('\0')) if (entry.length > 3) files.add(entry.slice(3));
  return files;
}

/** Whether `error` is git refusing because another git process holds a lock. */
export function isLockError(error: unknown): boolean {
  return error instanceof GitError && /\.lock': File exists|Unable to create .*\.lock/.test(error.message);
}
