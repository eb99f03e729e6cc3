import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { GitError } from '../errors.js';
import type { GitOptions } from './git.js';
import type { CommittedChange, GitWorkspace } from './git-workspace.js';
import { LocalGitWorkspace } from './local-git-workspace.js';
import type { MergeResult, PendingMergeStore, TrainCar } from './merge.js';
import type { RepositoryState } from './repository.js';
import type { ResolutionStart } from './resolve.js';
import { attemptBranch, type FileStat } from './task-git.js';
import { checkedOutBranch, type Identity, type PreparedWorktree, type Worktree } from './worktrees.js';

/** How many times a merge train is merged again from a fresh fetch when the remote moved under its push. */
export const PUSH_ROUNDS = 8;

/** What a push did, from `git push --porcelain`: `moved` when the remote's branch moved on (fetch, merge, push again). */
export type PushOutcome = { state: 'pushed' } | { state: 'moved'; ref: string } | { state: 'failed'; reason: string };

/**
 * Reads `git push --porcelain`: each ref on a line `<flag>\t<from>:<to>\t<summary>`, `!` for a ref not pushed.
 * `[rejected] (fetch first)` or `(non-fast-forward)` is the remote having moved; anything else (a `[remote rejected]`,
 * no line at all: the remote unreachable) a failure, with git's own words. Pure.
 */
export function pushOutcome(exitCode: number, stdout: string, stderr: string): PushOutcome {
  const refused = stdout.split('\n').filter((line) => line.startsWith('!\t'));
  if (exitCode === 0 && refused.length === 0) return { state: 'pushed' };
  for (const line of refused) {
    const [, refs = '', summary = ''] = line.split('\t');
    if (/^\[rejected\] \((fetch first|non-fast-forward|stale info)\)/.test(summary)) return { state: 'moved', ref: refs.split(':')[1] ?? refs };
  }
  const said = refused.map((line) => line.split('\t').slice(1).join(' ')).join('; ') || stderr.trim().split('\n').find((l) => /^(fatal|error):/.test(l)) || stderr.trim().split('\n')[0] || `exit ${exitCode}`;
  return { state: 'failed', reason: said };
}

/** A pending-merge store that keeps nothing: a remote clone's working tree is no one's to undo a merge in. */
const NO_PENDING: PendingMergeStore = { get: async () => undefined, set: async () => undefined, clear: async () => undefined };

/**
 * The remote adapter (DAN_GIT_REMOTE; DESIGN.md, Workspaces): the agent's own clone of the remote, worked on by
 * the local adapter's git logic (a {@link LocalGitWorkspace} over the clone), with fetch and push around it. A
 * task's branch starts from the remote's integration branch and is pushed once committed, so it outlives the agent;
 * merges are made in the clone in the network's single merge step and published by a plain push, merged again
 * from a fresh fetch when the remote moved (never forced).
 */
export class RemoteGitWorkspace implements GitWorkspace {
  readonly local: LocalGitWorkspace;
  /** One git step on the clone's own branch and refs at a time, in this process (an agent may run tasks side by side). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly remote: string,
    /** The clone's folder. */
    readonly root: string,
    options: GitOptions = {},
  ) {
    this.local = new LocalGitWorkspace(root, options);
  }

  private get git() {
    return this.local.git;
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The integration branch: the branch the clone has checked out (the remote's default branch when cloned). */
  integration(): Promise<string> {
    return checkedOutBranch(this.git, this.root);
  }

  /** Fetches refs of the remote into the clone's remote-tracking refs (`refs/remotes/origin/…`); a branch the remote lacks is skipped. */
  async fetch(branches: readonly string[]): Promise<void> {
    const specs = branches.map((b) => `+refs/heads/${b}:refs/remotes/origin/${b}`);
    const all = await this.git.run(this.root, ['fetch', '-q', '--no-tags', '--no-write-fetch-head', 'origin', ...specs], { ok: [0, 1, 128] });
    if (all.exitCode === 0) return;
    if (!/couldn't find remote ref/.test(all.stderr)) throw new GitError(['fetch', 'origin'], all.exitCode, all.stderr);
    // One named a branch the remote does not have: each on its own, those it has.
    for (const spec of specs) {
      const one = await this.git.run(this.root, ['fetch', '-q', '--no-tags', '--no-write-fetch-head', 'origin', spec], { ok: [0, 1, 128] });
      if (one.exitCode !== 0 && !/couldn't find remote ref/.test(one.stderr)) throw new GitError(['fetch', 'origin', spec], one.exitCode, one.stderr);
    }
  }

  private async remoteTip(branch: string): Promise<string | undefined> {
    const out = await this.git.run(this.root, ['rev-parse', '-q', '--verify', `refs/remotes/origin/${branch}^{commit}`], { ok: [0, 1, 128] });
    return out.exitCode === 0 ? out.stdout.trim() : undefined;
  }

  private async localTip(branch: string): Promise<string | undefined> {
    const out = await this.git.run(this.root, ['rev-parse', '-q', '--verify', `refs/heads/${branch}^{commit}`], { ok: [0, 1, 128] });
    return out.exitCode === 0 ? out.stdout.trim() : undefined;
  }

  /** Pushes local branches to the remote's of the same names, never forced. */
  async push(branches: readonly string[], extra: readonly string[] = []): Promise<PushOutcome> {
    const out = await this.git.run(this.root, ['push', '--porcelain', '--no-verify', ...extra, 'origin', ...branches.map((b) => `refs/heads/${b}:refs/heads/${b}`)], { ok: [0, 1, 128] });
    return pushOutcome(out.exitCode, out.stdout, out.stderr);
  }

  private async pushOrThrow(branches: readonly string[]): Promise<void> {
    const pushed = await this.push(branches);
    if (pushed.state === 'pushed') return;
    const reason = pushed.state === 'moved' ? `${pushed.ref} on the remote has commits this one lacks` : pushed.reason;
    throw new GitError(['push', 'origin', ...branches], 1, `could not push ${branches.join(', ')} to ${this.remote}: ${reason}`);
  }

  /** Moves the clone's integration branch (and its files) to the remote's, as last fetched. */
  private async syncIntegration(integration: string): Promise<void> {
    await this.git.run(this.root, ['reset', '-q', '--hard', `refs/remotes/origin/${integration}`]);
  }

  /**
   * The clone made when there is none yet, else fetched; its integration branch (and files) set to the remote's.
   * The integration branch, or undefined when the remote has none yet (it is empty).
   */
  async cloneOrFetch(): Promise<string | undefined> {
    if (!existsSync(path.join(this.root, '.git'))) {
      await mkdir(path.dirname(this.root), { recursive: true });
      await this.git.run(path.dirname(this.root), ['clone', '-q', '--no-tags', this.remote, this.root]);
    } else {
      await this.git.run(this.root, ['remote', 'set-url', 'origin', this.remote]);
    }
    const integration = await this.integration();
    await this.fetch([integration]);
    if (!(await this.remoteTip(integration))) return undefined;
    await this.syncIntegration(integration);
    return integration;
  }

  /** The clone made, or fetched, outside the merge lock (a clone of a large repository takes a while). */
  async open(): Promise<void> {
    await this.serial(() => this.cloneOrFetch());
  }

  /**
   * Clones the remote when this agent has no clone yet, else fetches; the clone's integration branch set to the
   * remote's. An empty remote gets the base commit (hold the merge lock).
   */
  ensure(): Promise<RepositoryState> {
    return this.serial(async () => {
      const integration = await this.cloneOrFetch();
      if (integration) return this.local.ensure();
      // An empty remote: the base commit made here, published (someone else's, when they were first).
      const empty = await this.integration();
      const state = await this.local.ensure();
      const pushed = await this.push([empty]);
      if (pushed.state === 'failed') throw new GitError(['push', 'origin', empty], 1, `could not seed ${this.remote}: ${pushed.reason}`);
      if (pushed.state === 'moved') {
        await this.fetch([empty]);
        await this.syncIntegration(empty);
        return { integration: empty, created: false };
      }
      return state;
    });
  }

  /**
   * A worktree from the remote's integration branch (freshly fetched). The remote's own `dan/<id>` (an earlier
   * attempt's, pushed by another agent) is kept as the local adapter keeps one: under `dan/<id>-attempt-<n>`, on the
   * remote too, before the new attempt's branch takes the name.
   */
  prepare(taskId: string, attempt: number, identity: Identity, from?: string): Promise<PreparedWorktree> {
    return this.serial(async () => {
      const integration = await this.integration();
      const branch = `dan/${taskId}`;
      await this.fetch([integration, branch]);
      if (from && !(await this.git.succeeds(this.root, ['cat-file', '-e', `${from}^{commit}`]))) {
        await this.git.run(this.root, ['fetch', '-q', '--no-tags', '--no-write-fetch-head', 'origin', '+refs/heads/dan/*:refs/remotes/origin/dan/*']);
      }
      const theirs = await this.remoteTip(branch);
      if (theirs && !(await this.localTip(branch))) await this.git.run(this.root, ['update-ref', `refs/heads/${branch}`, theirs, '']);
      const base = from ?? (await this.remoteTip(integration));
      if (!base) throw new GitError(['fetch', 'origin', integration], 1, `the remote ${this.remote} has no branch ${integration}`);
      const prepared = await this.local.prepare(taskId, attempt, identity, base);
      if (theirs) await this.retireRemoteBranch(taskId, attempt, branch, theirs, prepared);
      return prepared;
    });
  }

  /**
   * The remote's `dan/<id>` of an earlier attempt: pushed under the kept name the local adapter gave it (or one of
   * its own when the clone's copy differed), then removed from `dan/<id>` only if it is still what was fetched.
   */
  private async retireRemoteBranch(taskId: string, attempt: number, branch: string, theirs: string, prepared: PreparedWorktree): Promise<void> {
    let keptAs = prepared.kept;
    if (!keptAs || !(await this.git.succeeds(this.root, ['merge-base', '--is-ancestor', theirs, `refs/heads/${keptAs}`]))) {
      for (let n = Math.max(1, attempt - 1); ; n++) {
        const name = attemptBranch(taskId, n);
        if (!(await this.localTip(name)) && !(await this.remoteTip(name))) {
          keptAs = name;
          break;
        }
      }
      await this.git.run(this.root, ['update-ref', `refs/heads/${keptAs}`, theirs, '']);
      prepared.notes.push(`kept the remote's branch of an earlier attempt as ${keptAs} (never merged)`);
      prepared.kept ??= keptAs;
    }
    const out = await this.git.run(this.root, ['push', '--porcelain', '--no-verify', '--atomic', `--force-with-lease=refs/heads/${branch}:${theirs}`, 'origin', `refs/heads/${keptAs}:refs/heads/${keptAs}`, `:refs/heads/${branch}`], { ok: [0, 1, 128] });
    const pushed = pushOutcome(out.exitCode, out.stdout, out.stderr);
    if (pushed.state !== 'pushed') throw new GitError(['push', 'origin', keptAs], 1, `could not keep the earlier attempt's ${branch} as ${keptAs} on ${this.remote}: ${pushed.state === 'moved' ? `${branch} moved on the remote` : pushed.reason}`);
  }

  /** A worktree on another task's branch as the remote has it. */
  attach(taskId: string, branch: string, base: string, identity: Identity): Promise<PreparedWorktree> {
    return this.serial(async () => {
      await this.fetch([await this.integration(), branch]);
      const theirs = await this.remoteTip(branch);
      const ours = await this.localTip(branch);
      if (theirs && (!ours || (ours !== theirs && (await this.git.succeeds(this.root, ['merge-base', '--is-ancestor', ours, theirs]))))) {
        await this.git.run(this.root, ['update-ref', `refs/heads/${branch}`, theirs]);
      }
      return this.local.attach(taskId, branch, base, identity);
    });
  }

  /** Commits as the local adapter does, then pushes the branch: from then on it outlives this agent. */
  async commit(worktree: Worktree, message: string, identity: Identity): Promise<CommittedChange> {
    const change = await this.local.commit(worktree, message, identity);
    if (change.commit) await this.pushOrThrow([worktree.branch]);
    return change;
  }

  /** Stale lock files in the clone; a pending merge is not this clone's to undo (a merge is published by its push, whole or not at all). */
  async recover(pending: PendingMergeStore, staleAfterMs?: number): Promise<string[]> {
    if (await pending.get()) await pending.clear();
    return this.local.recover(NO_PENDING, staleAfterMs);
  }

  async merge(branch: string, message: string, identity: Identity, pending: PendingMergeStore): Promise<MergeResult> {
    return (await this.mergeTrain([{ branch, message, identity }], pending))[0]!;
  }

  /**
   * The local merge train on the clone, from the remote's integration branch and branches freshly fetched, published
   * by a plain push; when the remote moved meanwhile, fetched and merged again (hold the merge lock).
   */
  mergeTrain(cars: readonly TrainCar[], _pending: PendingMergeStore): Promise<MergeResult[]> {
    return this.serial(async () => {
      const integration = await this.integration();
      for (let round = 1; ; round++) {
        await this.fetch([integration, ...cars.map((c) => c.branch)]);
        await this.syncIntegration(integration);
        const results = await this.local.mergeTrain(
          cars.map((c) => ({ ...c, tip: `refs/remotes/origin/${c.branch}` })),
          NO_PENDING,
        );
        if (!results.some((r) => r.state === 'merged' && !r.already)) return results;
        const pushed = await this.push([integration]);
        if (pushed.state === 'pushed') return results;
        // Not published: the clone goes back to the remote's branch (the branches keep every change).
        await this.fetch([integration]);
        await this.syncIntegration(integration);
        if (pushed.state === 'failed') throw new GitError(['push', 'origin', integration], 1, `could not publish the merge to ${this.remote}: ${pushed.reason}`);
        if (round >= PUSH_ROUNDS) throw new GitError(['push', 'origin', integration], 1, `${integration} on ${this.remote} moved under each of ${round} pushes: try again`);
      }
    });
  }

  /** Merges the remote's integration branch (freshly fetched) into the task's branch, for its agent to resolve. */
  async startResolution(worktree: Worktree, identity: Identity): Promise<ResolutionStart> {
    await this.serial(() => this.fetch([worktree.integration]));
    const start = await this.local.startResolution({ ...worktree, integration: `refs/remotes/origin/${worktree.integration}` }, identity);
    if (start.state === 'clean') await this.pushOrThrow([worktree.branch]);
    return start;
  }

  /** Commits the resolved merge as the local adapter does, and pushes the branch for whoever merges it. */
  async finishResolution(worktree: Worktree, files: readonly string[], identity: Identity): Promise<string[]> {
    const left = await this.local.finishResolution(worktree, files, identity);
    if (left.length === 0) await this.pushOrThrow([worktree.branch]);
    return left;
  }

  /** Asked of the clone; what it lacks (a merge another agent made) fetched first. */
  private async withObjects<T>(ask: () => Promise<T>): Promise<T> {
    try {
      return await ask();
    } catch (error) {
      if (!(error instanceof GitError)) throw error;
      await this.serial(async () => this.git.run(this.root, ['fetch', '-q', '--no-tags', '--no-write-fetch-head', 'origin', '+refs/heads/*:refs/remotes/origin/*']));
      return ask();
    }
  }

  head(ref: string): Promise<string> {
    return this.withObjects(() => this.local.head(ref));
  }

  stat(from: string, to: string): Promise<FileStat[]> {
    return this.withObjects(() => this.local.stat(from, to));
  }

  patch(from: string, to: string, options: { color?: boolean } = {}): Promise<string> {
    return this.withObjects(() => this.local.patch(from, to, options));
  }

  remove(worktree: Worktree): Promise<void> {
    return this.local.remove(worktree);
  }
}
