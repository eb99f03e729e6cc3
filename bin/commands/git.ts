import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { pendingStore } from '../../lib/agent/merge-change.js';
import type { DanConfig } from '../../lib/config.js';
import { BadInputError } from '../../lib/errors.js';
import { MergeLock, type Bus } from '../../lib/messaging/index.js';
import { isTerminal, taskIdSchema, taskSpecSchema, type TaskRecord } from '../../lib/task.js';
import { cloneWorkspace, describeStat, Git, LocalGitWorkspace, pullWorkspace, pushWorkspace, RemoteGitWorkspace, type FileStat, type GitWorkspace, type TaskGit } from '../../lib/workspace/index.js';
import { configFrom, connectCli, EXIT, parseFlag, type ConnectionFlags } from '../context.js';
import { c } from '../output.js';

/** The workspace as this machine sees it, as a git repository; a clear error when it is not one here. */
function localWorkspace(config: DanConfig): LocalGitWorkspace {
  if (config.workspaceMode !== 'git') throw new BadInputError('DAN_WORKSPACE_MODE is shared: tasks have no branches to show or merge');
  if (!existsSync(path.join(config.workspace, '.git'))) {
    throw new BadInputError(`${config.workspace} is not a git repository here: run this where the workspace is (compose: the repository folder, whose ./workspace it is), or set DAN_WORKSPACE`);
  }
  return new LocalGitWorkspace(config.workspace, { env: process.env, bin: config.gitBin });
}

/**
 * The repository tasks' branches are in: with DAN_GIT_REMOTE, the remote, through a clone of it this command keeps
 * (`<DAN_GIT_CLONE_DIR>/dan-cli`, fetched on each use); else the workspace folder.
 */
async function taskRepository(config: DanConfig): Promise<GitWorkspace> {
  if (config.workspaceMode === 'git' && config.gitRemote) {
    const remote = new RemoteGitWorkspace(config.gitRemote, path.join(config.gitCloneDir, 'dan-cli'), { env: process.env, bin: config.gitBin });
    if (!(await remote.cloneOrFetch())) throw new BadInputError(`the remote ${config.gitRemote} has no branch yet: nothing merged or pushed to show (dan workspace push seeds it)`);
    return remote;
  }
  return localWorkspace(config);
}

/** DAN_GIT_REMOTE, for the commands that need one. */
function requireRemote(config: DanConfig): string {
  if (!config.gitRemote) throw new BadInputError('DAN_GIT_REMOTE is not set: set it to the remote agents push to (compose: git://127.0.0.1:9418/workspace)');
  return config.gitRemote;
}

const dirArgument = z.string().trim().min(1, 'must not be empty').refine((v) => !v.startsWith('-'), 'must be a folder, not an option');

/** The record and its git state; an error a user can act on when the task has no branch. */
export async function taskWithBranch(bus: Bus, id: string): Promise<TaskRecord & { git: TaskGit }> {
  const record = await bus.tasks.get(id);
  if (!record.git) throw new BadInputError(`task ${id} has no branch (${record.status}; it ran in shared mode or has not started): nothing to show or merge`);
  return record as TaskRecord & { git: TaskGit };
}

/** What a task's change is, as two commits: what landed when it merged, else its branch against its base. */
function changeRange(git: TaskGit): [string, string] {
  return git.merge === 'merged' && git.mergeCommit ? [`${git.mergeCommit}^1`, git.mergeCommit] : [git.base, git.commit ?? git.branch];
}

function statTable(files: readonly FileStat[]): string {
  const lines = files.map((f) => `${c.green(`+${f.added ?? '-'}`.padStart(6))} ${c.red(`-${f.removed ?? '-'}`.padStart(6))}  ${f.path}`);
  return [...lines, c.gray(describeStat(files))].join('\n');
}

/** Sums the stats of several changes, file by file. */
function sumStats(stats: readonly FileStat[][]): FileStat[] {
  const byPath = new Map<string, FileStat>();
  for (const file of stats.flat()) {
    const seen = byPath.get(file.path);
    byPath.set(
      file.path,
      seen ? { path: file.path, added: seen.added === null || file.added === null ? null : seen.added + file.added, removed: seen.removed === null || file.removed === null ? null : seen.removed + file.removed } : { ...file },
    );
  }
  return [...byPath.values()];
}

/**
 * Merges an ended task's kept branch into the integration branch here, under the merge lock, as `dan merge` and
 * `dan waive` do; records what became of it and prints one line. The merge state.
 */
export async function mergeKept(bus: Bus, config: DanConfig, record: TaskRecord & { git: TaskGit }): Promise<'merged' | 'conflict' | 'blocked'> {
  const git = record.git;
  const taskId = record.id;
  const workspace = await taskRepository(config);
  const lock = new MergeLock(bus.redis, bus.keys, { ttlMs: config.heartbeatTtlMs });
  const lease = await lock.acquire(`cli-${process.pid}`);
  let outcome;
  try {
    const pending = pendingStore(lock);
    for (const note of await workspace.recover(pending, config.heartbeatTtlMs)) console.error(c.gray(note));
    const line = record.description.trim().split('\n')[0]!.slice(0, 100);
    outcome = await workspace.merge(git.branch, `Merge ${git.branch}: ${line}\n\ndan task ${taskId} (${record.domain}), merged by dan merge\n`, { name: 'dan merge', email: 'dan@dan.invalid' }, pending);
  } finally {
    await lease.release();
  }
  if (outcome.state === 'merged') {
    const merged: TaskGit = { ...git, merge: 'merged', mergeCommit: outcome.mergeCommit, mergeReason: undefined };
    await bus.tasks.updateGit(taskId, merged, `merged ${git.branch} into ${git.integration} by dan merge (${outcome.mergeCommit.slice(0, 10)})`);
    console.log(`${c.green('merged')} ${git.branch} into ${git.integration} (${outcome.mergeCommit.slice(0, 10)}, ${describeStat(git.files)})`);
    return 'merged';
  }
  const byHand = config.gitRemote
    ? `in a clone (dan workspace clone <dir>), git switch ${git.branch}, git merge origin/${git.integration}, commit and push the branch, then dan merge ${taskId}`
    : `git -C ${config.workspace} merge ${git.branch}, then commit`;
  const reason = outcome.state === 'blocked' ? outcome.reason : `conflicts in ${outcome.files.join(', ')}: resolve them by hand (${byHand}); or dan merge ${taskId} --resolve`;
  await bus.tasks.updateGit(taskId, { ...git, merge: outcome.state, mergeReason: reason }, `dan merge: ${outcome.state}: ${reason}`);
  console.error(`${c.yellow(outcome.state)} ${reason}`);
  return outcome.state;
}

/** `dan diff`, `dan merge`, `dan prune`, `dan workspace init`. */
export function registerGitCommands(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('diff')
      .description("a task's change as a patch (a goal: its subtasks' changes); what merged, or its branch against its base")
      .argument('<id>', 'task id')
      .option('--stat', 'files changed with lines added and removed, not the patch'),
  ).action(async (id: string, flags: ConnectionFlags & { stat?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    await using bus = await connectCli(config);
    const record = await bus.tasks.get(taskId);
    const parts = record.children.length > 0 ? (await bus.tasks.getMany(record.children)).filter((r) => r.git?.commit) : [await taskWithBranch(bus, taskId)];
    if (parts.length === 0) {
      console.log(c.gray(`task ${taskId} changed no file`));
      return;
    }
    const workspace = await taskRepository(config);
    if (flags.stat) {
      const stats = await Promise.all(parts.map((p) => workspace.stat(...changeRange(p.git!))));
      console.log(statTable(sumStats(stats)));
      return;
    }
    const color = process.stdout.isTTY && !process.env.NO_COLOR;
    for (const part of parts) {
      if (parts.length > 1) console.log(c.bold(`# ${part.key ?? part.id} (${part.domain}): ${part.git!.branch}`));
      process.stdout.write(await workspace.patch(...changeRange(part.git!), { color }));
    }
  });

  withConnection(
    program
      .command('merge')
      .description("merge a task's kept, blocked or conflicted branch into the workspace's branch (one merge at a time, as agents do)")
      .argument('<id>', 'task id')
      .option('--resolve', "let an agent of the task's domain resolve the conflicts and merge (a merge task); prints its id"),
  ).action(async (id: string, flags: ConnectionFlags & { resolve?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    await using bus = await connectCli(config);
    const record = await taskWithBranch(bus, taskId);
    const git = record.git;
    if (!isTerminal(record.status)) throw new BadInputError(`task ${taskId} is ${record.status}: its agent merges it when it completes`);
    if (git.merge === 'merged') {
      console.log(`task ${taskId} is merged already (${git.mergeCommit?.slice(0, 10) ?? '?'} on ${git.integration})`);
      return;
    }
    if (!git.commit) throw new BadInputError(`task ${taskId} has no commit to merge (${git.merge ?? record.status})`);
    if (flags.resolve) {
      const line = record.description.trim().split('\n')[0]!.slice(0, 200);
      const spec = taskSpecSchema.parse({ domain: record.domain, description: `Merge ${git.branch} (task ${taskId}: ${line}), resolving its conflicts`, timeoutS: record.timeoutS, maxAttempts: config.taskAttempts, mergeOf: taskId });
      const merge = await bus.submit(spec);
      console.log(merge.id);
      console.error(c.gray(`an agent of ${record.domain} merges ${git.branch}, resolving conflicts as it would its own; follow it: dan logs --task ${merge.id}`));
      return;
    }
    const outcome = await mergeKept(bus, config, record);
    if (outcome !== 'merged') process.exitCode = EXIT.taskNotCompleted;
  });

  withConnection(
    program
      .command('prune')
      .description("delete task branches older than an age: merged ones and dead attempts' (never an open task's), and worktrees of ended tasks")
      .option('--older-than <days>', 'only branches whose last commit is older than this many days', '7'),
  ).action(async (flags: ConnectionFlags & { olderThan: string }) => {
    const config = configFrom(flags);
    const days = parseFlag(z.coerce.number({ error: 'must be a number of days' }).min(0, 'must be 0 or more').max(36500, 'must be at most 36500'), flags.olderThan, '--older-than');
    if (config.gitRemote) throw new BadInputError('dan prune works on a local workspace: with DAN_GIT_REMOTE, delete merged branches on the remote with git push <remote> --delete dan/<id>');
    await using bus = await connectCli(config);
    const workspace = localWorkspace(config);
    const result = await workspace.prune(days * 86_400_000, async (taskId) => {
      const record = await bus.tasks.find(taskId).catch(() => undefined);
      return record !== undefined && !isTerminal(record.status);
    });
    for (const line of result) console.log(line);
    if (result.length === 0) console.log(c.gray('nothing to prune'));
  });

  const workspaceCommand = program.command('workspace').description('the git workspace');
  workspaceCommand
    .command('init')
    .description('make the workspace a git repository, its files the base commit (the network does it when it starts)')
    .action(() => {
      const config = configFrom({});
      if (config.workspaceMode !== 'git') {
        console.log(c.gray('DAN_WORKSPACE_MODE is shared: no repository needed'));
        return;
      }
      const workspace = new LocalGitWorkspace(config.workspace, { env: process.env, bin: config.gitBin });
      return workspace.ensure().then((state) => {
        console.log(state.created ? `made ${config.workspace} a git repository on branch ${state.integration}; its files are the base commit` : `${config.workspace} is a git repository (branch ${state.integration})`);
      });
    });

  const remoteGit = (config: DanConfig) => new Git({ env: process.env, bin: config.gitBin });
  workspaceCommand
    .command('clone')
    .description('clone DAN_GIT_REMOTE into a new folder, its integration branch checked out')
    .argument('<dir>', 'a new or empty folder')
    .action(async (dir: string) => {
      const config = configFrom({});
      const remote = requireRemote(config);
      for (const line of await cloneWorkspace(remoteGit(config), remote, parseFlag(dirArgument, dir, 'dir'))) console.log(line);
    });
  workspaceCommand
    .command('pull')
    .description("bring DAN_GIT_REMOTE's integration branch into a clone (fast-forward only)")
    .argument('[dir]', 'the clone', '.')
    .action(async (dir: string) => {
      const config = configFrom({});
      const remote = requireRemote(config);
      for (const line of await pullWorkspace(remoteGit(config), remote, parseFlag(dirArgument, dir, 'dir'))) console.log(line);
    });
  workspaceCommand
    .command('push')
    .description("seed DAN_GIT_REMOTE from a repository: its branch pushed as the remote's integration branch (never forced)")
    .argument('[dir]', 'the repository', '.')
    .action(async (dir: string) => {
      const config = configFrom({});
      const remote = requireRemote(config);
      for (const line of await pushWorkspace(remoteGit(config), remote, parseFlag(dirArgument, dir, 'dir'))) console.log(line);
    });
}
