/** Git workspaces (DESIGN.md, Workspaces): one worktree and branch per task, merged one at a time. */
export { Git, type GitOptions, type GitOutput } from './git.js';
export type { CommittedChange, GitWorkspace } from './git-workspace.js';
export { LocalGitWorkspace } from './local-git-workspace.js';
export { pushOutcome, RemoteGitWorkspace, type PushOutcome } from './remote-git-workspace.js';
export { cloneWorkspace, pullWorkspace, pushWorkspace, remoteBranch } from './remote-commands.js';
export { isLockError, mergeResultSchema, pendingMergeSchema, type MergeResult, type PendingMerge, type PendingMergeStore, type TrainCar } from './merge.js';
export { DAN_DIR, ensureRepository, integrationBranch, resolveCommit, type RepositoryState } from './repository.js';
export { unresolvedFiles, type ResolutionStart } from './resolve.js';
export { attemptBranch, describeStat, fileStatSchema, mergeStateSchema, MERGE_STATES, taskBranch, taskGitSchema, type FileStat, type MergeState, type TaskGit } from './task-git.js';
export { MAX_SPARES } from './spare-worktrees.js';
export { diffStat, worktreePath, type Identity, type PreparedWorktree, type Worktree } from './worktrees.js';
export { ensureWorkspace, type Lock } from './ensure-workspace.js';
