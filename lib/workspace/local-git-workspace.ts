import path from 'node:path';
import { Git, type GitOptions } from './git.js';
import type { CommittedChange, GitWorkspace } from './git-workspace.js';
import type { FileStat } from './task-git.js';
import { mergeIntoIntegration, mergeTrain, recoverWorkspace, type MergeResult, type PendingMergeStore, type TrainCar } from './merge.js';
import { ensureRepository, headCommit, resolveCommit, type RepositoryState } from './repository.js';
import { listSpares } from './spare-worktrees.js';
import { finishResolution, startResolution, type ResolutionStart } from './resolve.js';
import { attachWorktree, diffStat, prepareWorktree, removeWorktree, retireWorktree, saveWork, worktreePath, type Identity, type PreparedWorktree, type Worktree } from './worktrees.js';

const PRUNE_IDENTITY = { name: 'dan prune', email: 'dan@dan.invalid' };

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

  prepare(taskId: string, attempt: number, identity: Identity, from?: string): Promise<PreparedWorktree> {
    return prepareWorktree(this.git, this.root, taskId, attempt, identity, from);
  }

  attach(taskId: string, branch: string, base: string, identity: Identity): Promise<PreparedWorktree> {
    return attachWorktree(this.git, this.root, taskId, branch, base, identity);
  }

  async commit(worktree: Worktree, message: string, identity: Identity): Promise<CommittedChange> {
    // The new head; when nothing was staged, the branch's own head (the model may have committed itself).
    const head = (await saveWork(this.git, worktree.path, message, identity)) ?? (await headCommit(this.git, worktree.path));
    if (head === worktree.base) return { commit: undefined, files: [] };
    return { commit: head, files: await diffStat(this.git, worktree.path, worktree.base, head) };
  }

  recover(pending: PendingMergeStore, staleAfterMs?: number): Promise<string[]> {
    return recoverWorkspace(this.git, this.root, pending, staleAfterMs);
  }

  merge(branch: string, message: string, identity: Identity, pending: PendingMergeStore): Promise<MergeResult> {
    return mergeIntoIntegration(this.git, this.root, branch, message, identity, pending);
  }

  mergeTrain(cars: readonly TrainCar[], pending: PendingMergeStore): Promise<MergeResult[]> {
    return mergeTrain(this.git, this.root, cars, pending);
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

  async patch(from: string, to: string, options: { color?: boolean } = {}): Promise<string> {
    return (await this.git.run(this.root, ['diff', '--no-ext-diff', '--no-textconv', '--binary', `--color=${options.color ? 'always' : 'never'}`, from, to])).stdout;
  }

  /**
   * `dan prune`: removes the worktrees of ended tasks (what is left in them committed first) and spare worktrees
   * parked longer than `maxAgeMs`, and deletes task
   * branches whose last commit is older than `maxAgeMs`: merged ones, and kept attempts. A branch that was never
   * merged (kept for review, conflicted, blocked) stays, and nothing of a task that `isOpen` says is open is touched.
   */
  async prune(maxAgeMs: number, isOpen: (taskId: string) => Promise<boolean>): Promise<string[]> {
    const done: string[] = [];
    const list = await this.git.text(this.root, ['worktree', 'list', '--porcelain', '-z']);
    const prefix = `worktree ${worktreePath(this.root, '')}`;
    for (const line of list.split('\0')) {
      if (!line.startsWith(prefix)) continue;
      const dir = line.slice('worktree '.length);
      const taskId = path.basename(dir);
      if (await isOpen(taskId)) continue;
      const saved = await saveWork(this.git, dir, `dan: left in the worktree of ended task ${taskId}`, PRUNE_IDENTITY);
      await removeWorktree(this.git, this.root, dir);
      done.push(`removed the worktree of ${taskId}${saved ? ` (what was left in it is committed on its branch, ${saved.slice(0, 10)})` : ''}`);
    }
    for (const spare of await listSpares(this.root)) {
      if (Date.now() - spare.parkedAt < maxAgeMs) continue;
      // Taken by an agent meanwhile: it is a task's worktree now, and not this one's to remove.
      const removed = await removeWorktree(this.git, this.root, spare.dir).then(() => true, () => false);
      if (removed) done.push(`removed a spare worktree (${path.relative(this.root, spare.dir)})`);
    }
    const refs = await this.git.text(this.root, ['for-each-ref', '--format=%(refname:short) %(committerdate:unix)', 'refs/heads/dan/']);
    const now = Date.now();
    for (const ref of refs.split('\n').filter((l) => l.length > 0)) {
      const [branch, when] = ref.split(' ') as [string, string];
      const attempt = /-attempt-\d+$/.test(branch);
      const taskId = branch.replace(/^dan\//, '').replace(/-attempt-\d+$/, '');
      if (now - Number(when) * 1000 < maxAgeMs || (await isOpen(taskId))) continue;
      if (attempt) {
        // A dead attempt's change, kept for forensics until this age: deleting it is what prune is asked for.
        await this.git.run(this.root, ['update-ref', '-d', `refs/heads/${branch}`]);
        done.push(`deleted ${branch} (a dead attempt's branch)`);
      } else if (await this.git.succeeds(this.root, ['merge-base', '--is-ancestor', branch, 'HEAD'])) {
        await this.git.run(this.root, ['branch', '-q', '-d', branch]);
        done.push(`deleted ${branch} (merged)`);
      }
    }
    return done;
  }

  async remove(worktree: Worktree): Promise<void> {
    // Its change is committed by now (a resolution left mid-merge was aborted): parked for the next task when it
    // is clean (a fresh worktree costs a checkout of every file), else removed, ignored files and all.
    await retireWorktree(this.git, this.root, worktree.path);
  }
}
