import type { MergeResult, PendingMergeStore, TrainCar } from './merge.js';
import type { RepositoryState } from './repository.js';
import type { ResolutionStart } from './resolve.js';
import type { FileStat } from './task-git.js';
import type { Identity, PreparedWorktree, Worktree } from './worktrees.js';

/** A task's change as committed: the branch's head and the files it changed since the attempt's base. */
export interface CommittedChange {
  /** The branch's head, or undefined when the branch has no commit of its own (nothing to commit). */
  commit: string | undefined;
  files: FileStat[];
}

/**
 * Git access for dan's agents, behind one interface (DESIGN.md, Workspaces): the local adapter works on the
 * shared workspace volume; a remote adapter (DAN_GIT_REMOTE: clone, fetch, push) implements the same calls for
 * networks across machines.
 */
export interface GitWorkspace {
  readonly root: string;
  /**
   * What readying the workspace needs no lock for, done before {@link ensure} takes it: a remote adapter's clone
   * (seconds for a large repository, which would hold up every merge of the network under the lock).
   */
  open?(): Promise<void>;
  /** Makes the workspace a repository when it is not one; idempotent (hold the merge lock). */
  ensure(): Promise<RepositoryState>;
  /**
   * A fresh worktree and branch for an attempt, an earlier attempt's leftovers kept on a branch of their own;
   * from the integration branch's head, or from `from` (a commit: the unmerged branch a follow-up continues).
   */
  prepare(taskId: string, attempt: number, identity: Identity, from?: string): Promise<PreparedWorktree>;
  /** A worktree for a task on an existing branch (another task's, to resolve and merge it). */
  attach(taskId: string, branch: string, base: string, identity: Identity): Promise<PreparedWorktree>;
  /** Commits everything in the worktree; what the branch changed since its base. */
  commit(worktree: Worktree, message: string, identity: Identity): Promise<CommittedChange>;
  /**
   * Repairs what a dead merge step left (hold the merge lock); one line per repair. Git lock files younger
   * than `staleAfterMs` are left alone (a live git may hold them). @default 0: every lock file is stale
   */
  recover(pending: PendingMergeStore, staleAfterMs?: number): Promise<string[]>;
  /** Merges the task's branch into the integration branch (hold the merge lock). */
  merge(branch: string, message: string, identity: Identity, pending: PendingMergeStore): Promise<MergeResult>;
  /** Merges several branches in order, one merge commit each, moving the workspace once (hold the merge lock). */
  mergeTrain(cars: readonly TrainCar[], pending: PendingMergeStore): Promise<MergeResult[]>;
  /** Merges the integration branch into the worktree's branch, for its agent to resolve a conflict. */
  startResolution(worktree: Worktree, identity: Identity): Promise<ResolutionStart>;
  /** Commits a resolved merge in the worktree, or aborts it; the files still unresolved. */
  finishResolution(worktree: Worktree, files: readonly string[], identity: Identity): Promise<string[]>;
  /** The commit a ref points at. */
  head(ref: string): Promise<string>;
  /** Files changed between two commits, with lines added and removed. */
  stat(from: string, to: string): Promise<FileStat[]>;
  /** The change between two commits as a patch. */
  patch(from: string, to: string, options?: { color?: boolean }): Promise<string>;
  /** Removes a worktree whose task ended; its branch stays. */
  remove(worktree: Worktree): Promise<void>;
}
