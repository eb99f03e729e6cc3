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

export const mergeResultSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('merged'), mergeCommit: z.string().regex(/^[0-9a-f]{40,64}$/), already: z.boolean() }),
  z.object({ state: z.literal('conflict'), files: z.array(z.string()) }),
  z.object({ state: z.literal('blocked'), files: z.array(z.string()), reason: z.string() }),
]);
export type MergeResult = z.infer<typeof mergeResultSchema>;

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

/** One branch of a merge train: what {@link mergeIntoIntegration} takes for one merge. */
export interface TrainCar {
  branch: string;
  /** The ref to merge, when not `refs/heads/<branch>` (the remote adapter merges what it fetched of the branch). */
  tip?: string;
  message: string;
  identity: Identity;
}

/**
 * Merges several branches into the integration branch in one hold of the merge lock (a merge train), each as
 * its own merge commit on top of the one before, in order. The merges are computed without touching the
 * workspace (`merge-tree`, `commit-tree`: objects only), then the workspace is moved once from the old head to
 * the last merge and the branch compare-and-set once, so a train of n costs one checkout, not n, and a merge
 * of one costs five git commands. A branch that conflicts is left out (its own result says so) and the train
 * goes on without it. When the checkout refuses (the user's uncommitted changes touch a file the train brings),
 * each branch is merged on its own instead ({@link mergeIntoIntegration}), so only the branches that touch
 * those files are blocked, and the result says which files. Hold the merge lock, after {@link recoverWorkspace}.
 */
export async function mergeTrain(git: Git, root: string, cars: readonly TrainCar[], pending: PendingMergeStore): Promise<MergeResult[]> {
  const integration = await checkedOutBranch(git, root);
  const [start, startTree] = (await git.text(root, ['rev-parse', 'HEAD', 'HEAD^{tree}'])).split('\n') as [string, string];
  let head = start;
  let headTree = startTree;
  const results: MergeResult[] = [];
  for (const car of cars) {
    const tip = car.tip ?? `refs/heads/${car.branch}`;
    const computed = await git.run(root, ['merge-tree', '--write-tree', '--name-only', '--no-messages', head, tip], { ok: [0, 1, 128] });
    const [tree, ...conflicted] = computed.stdout.split('\n').filter((line) => line.length > 0);
    // No tree written: the branch is not there (merge-tree says 1 for that too, with nothing on stdout).
    if (computed.exitCode !== 0 && tree === undefined) {
      results.push({ state: 'blocked', files: [], reason: `the branch ${car.branch} cannot be merged: ${computed.stderr.trim().split('\n')[0]}` });
      continue;
    }
    if (computed.exitCode === 1) {
      results.push({ state: 'conflict', files: [...new Set(conflicted)] });
      continue;
    }
    if (tree === headTree) {
      results.push({ state: 'merged', mergeCommit: head, already: true });
      continue;
    }
    head = await git.text(root, ['commit-tree', tree!, '-p', head, '-p', tip, '-m', car.message], { identity: car.identity });
    headTree = tree!;
    results.push({ state: 'merged', mergeCommit: head, already: false });
  }
  if (head === start) return results;

  // The two-tree checkout refuses, changing nothing, when a file it would update has uncommitted changes or
  // an untracked file is in the way: then (rarely) the careful path, one merge at a time, says which.
  await pending.set({ integration, base: start, merge: head });
  const checkout = await git.run(root, ['read-tree', '-m', '-u', start, head], { ok: [0, 128] });
  if (checkout.exitCode !== 0) {
    await pending.clear();
    return mergeOneByOne(git, root, cars, results, pending);
  }
  await git.run(root, ['update-ref', '-m', `dan: merge train of ${cars.length} branches`, `refs/heads/${integration}`, head, start]);
  await pending.clear();
  return results;
}

/** The train could not move the workspace in one step: the branches it would have merged, merged one at a time. */
async function mergeOneByOne(git: Git, root: string, cars: readonly TrainCar[], planned: MergeResult[], pending: PendingMergeStore): Promise<MergeResult[]> {
  const results: MergeResult[] = [];
  for (const [i, car] of cars.entries()) {
    const plan = planned[i]!;
    // Each is tried again on its own (what it conflicts with, or already has, depended on the train before it),
    // but for a branch that does not exist.
    results.push(plan.state === 'blocked' ? plan : await mergeIntoIntegration(git, root, car.tip ?? car.branch, car.message, car.identity, pending));
  }
  return results;
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

/**
 * Whether `error` is git tripping over another git process of the moment: a lock it holds, or a worktree it is
 * adding half-written (`worktree add` and `checkout -b` read every worktree's admin files, and one being made
 * has no `commondir` yet). Trying again shortly succeeds.
 */
export function isLockError(error: unknown): boolean {
  return error instanceof GitError && /\.lock': File exists|Unable to create .*\.lock|failed to read \S*worktrees\/[^/\s]+\/(commondir|gitdir|HEAD)/.test(error.message);
}
