import { Git, type GitOptions } from './git.js';
import type { CommittedChange, GitWorkspace } from './git-workspace.js';
import type { FileStat } from './task-git.js';
import { mergeIntoIntegration, recoverWorkspace, type MergeResult, type PendingMergeStore } from './merge.js';
import { ensureRepository, resolveCommit, type RepositoryState } from './repository.js';
import { abortResolution, finishResolution, startResolution, type ResolutionStart } from './resolve.js';
import { diffStat, prepareWorktree, removeWorktree, saveWork, type Identity, type PreparedWorktree, type Worktree } from './worktrees.js';

/** The local adapter: the repository is the workspace folder every agent mounts (DESIGN.md, Workspaces). */
export class LocalGitWorkspace implements GitWorkspace {
  readonly git: Git;

  constructor(
    readonly root: string,
    options: GitOptions = {},
  ) {
    this.git = new Git(options);
  }

  ensure(): Promise<RepositoryState> {
    return ensureRepository(this.git, this.root);
  }

  prepare(taskId: string, attempt: number, identity: Identity): Promise<PreparedWorktree> {
    return prepareWorktree(this.git, this.root, taskId, attempt, identity);
  }

  async commit(worktree: Worktree, message: string, identity: Identity): Promise<CommittedChange> {
    await saveWork(this.git, worktree.path, message, identity);
    const head = await resolveCommit(this.git, worktree.path, 'HEAD');
    if (head === worktree.base) return { commit: undefined, files: [] };
    return { commit: head, files: await diffStat(this.git, worktree.path, worktree.base, head) };
  }

  recover(pending: PendingMergeStore): Promise<string[]> {
    return recoverWorkspace(this.git, this.root, pending);
  }

  merge(branch: string, message: string, identity: Identity, pending: PendingMergeStore): Promise<MergeResult> {
    return mergeIntoIntegration(this.git, this.root, branch, message, identity, pending);
  }

  startResolution(worktree: Worktree, identity: Identity): Promise<ResolutionStart> {
    return startResolution(this.git, worktree.path, worktree.integration, identity);
  }

  finishResolution(worktree: Worktree, files: readonly string[], identity: Identity): Promise<string[]> {
    return finishResolution(this.git, worktree.path, files, identity);
  }

  head(ref: string): Promise<string> {
    return resolveCommit(this.git, this.root, ref);
  }

  stat(from: string, to: string): Promise<FileStat[]> {
    return diffStat(this.git, this.root, from, to);
  }

  async patch(from: string, to: string): Promise<string> {
    return (await this.git.run(this.root, ['diff', '--no-ext-diff', '--no-textconv', '--binary', from, to])).stdout;
  }

  async remove(worktree: Worktree): Promise<void> {
    await abortResolution(this.git, worktree.path).catch(() => undefined);
    await removeWorktree(this.git, this.root, worktree.path);
  }
}
