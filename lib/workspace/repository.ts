import { constants } from 'node:fs';
import { access, appendFile, mkdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { GitError, WorkspaceError } from '../errors.js';
import type { Git } from './git.js';

/** dan's own folder in the workspace (worktrees live under it); git is told to ignore it. */
export const DAN_DIR = '.dan';
export const BASE_COMMIT_MESSAGE = 'dan: the workspace as it was';
const IDENTITY = { name: 'dan', email: 'dan@dan.invalid' };

export interface RepositoryState {
  /** The branch checked out in the workspace: where merged work goes. */
  integration: string;
  /** Whether this call made the workspace a repository (or gave it its first commit). */
  created: boolean;
}

/**
 * Makes the workspace dan's repository when it is not one (DESIGN.md, Workspaces): `git init`, `.dan/` ignored,
 * and what is already there committed as the base. A workspace inside another repository (`./workspace` in a
 * clone of dan) becomes a repository of its own. Idempotent; callers serialise it with the merge lock.
 */
export async function ensureRepository(git: Git, root: string): Promise<RepositoryState> {
  await mkdir(root, { recursive: true }).catch((error: Error) => {
    throw new WorkspaceError(root, `cannot create the workspace ${root}: ${error.message}`, { cause: error });
  });
  await access(root, constants.W_OK).catch((error: Error) => {
    throw new WorkspaceError(root, `the workspace ${root} is not writable by uid ${process.getuid?.() ?? '?'}: make it so (chown) or set DAN_WORKSPACE`, { cause: error });
  });
  let created = false;
  if (!(await isRepositoryRoot(git, root))) {
    await git.run(root, ['init', '-q', '-b', 'main']);
    created = true;
  }
  await ignoreDanDir(git, root);
  if (!(await git.succeeds(root, ['rev-parse', '--verify', '-q', 'HEAD']))) {
    await git.run(root, ['add', '-A']);
    await git.run(root, ['commit', '-q', '--allow-empty', '-m', BASE_COMMIT_MESSAGE], { identity: IDENTITY });
    created = true;
  }
  return { integration: await integrationBranch(git, root), created };
}

async function isRepositoryRoot(git: Git, root: string): Promise<boolean> {
  const top = await git.run(root, ['rev-parse', '--show-toplevel'], { ok: [0, 128] });
  if (top.exitCode !== 0) return false;
  return (await realpath(top.stdout.trim())) === (await realpath(root));
}

async function ignoreDanDir(git: Git, root: string): Promise<void> {
  const common = path.resolve(root, await git.text(root, ['rev-parse', '--git-common-dir']));
  const exclude = path.join(common, 'info', 'exclude');
  const current = await readFile(exclude, 'utf8').catch(() => '');
  if (current.split('\n').some((line) => line.trim() === `/${DAN_DIR}/`)) return;
  await mkdir(path.dirname(exclude), { recursive: true });
  await appendFile(exclude, `${current === '' || current.endsWith('\n') ? '' : '\n'}# dan's worktrees and state\n/${DAN_DIR}/\n`);
}

/** The branch checked out in the workspace; a detached HEAD is refused with the way out. */
export async function integrationBranch(git: Git, root: string): Promise<string> {
  const head = await git.run(root, ['symbolic-ref', '-q', '--short', 'HEAD'], { ok: [0, 1] });
  if (head.exitCode !== 0) {
    throw new WorkspaceError(root, `the workspace ${root} has a detached HEAD: check out the branch dan should merge into (git -C ${root} switch <branch>)`);
  }
  return head.stdout.trim();
}

/** The commit a ref points at. */
export async function resolveCommit(git: Git, cwd: string, ref: string): Promise<string> {
  try {
    return await git.text(cwd, ['rev-parse', '--verify', '-q', `${ref}^{commit}`]);
  } catch (error) {
    if (error instanceof GitError) throw new GitError(error.args, error.exitCode, `no commit ${ref}`, { cause: error });
    throw error;
  }
}

const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * The commit checked out in a repository or worktree at `dir`. Read from git's own files when they are plain
 * (HEAD a commit, or a branch whose ref is a loose file: how git writes a branch it just moved), with no git
 * process: the agent's hot path asks this several times per task. Anything else (packed refs, an odd HEAD)
 * is asked of git. What a file holds is used only when it is an object id.
 */
export async function headCommit(git: Git, dir: string): Promise<string> {
  return (await readHead(dir).catch(() => undefined)) ?? resolveCommit(git, dir, 'HEAD');
}

async function readHead(dir: string): Promise<string | undefined> {
  let gitDir = path.join(dir, '.git');
  let common = gitDir;
  if ((await stat(gitDir)).isFile()) {
    // A worktree: `.git` names its admin folder, whose `commondir` names the repository's.
    const pointer = /^gitdir: (.+)$/m.exec(await readFile(gitDir, 'utf8'))?.[1];
    if (!pointer) return undefined;
    gitDir = path.resolve(dir, pointer.trim());
    common = path.resolve(gitDir, (await readFile(path.join(gitDir, 'commondir'), 'utf8')).trim());
  }
  const head = (await readFile(path.join(gitDir, 'HEAD'), 'utf8')).trim();
  if (OBJECT_ID.test(head)) return head;
  const ref = /^ref: (refs\/heads\/[^\s]+)$/.exec(head)?.[1];
  if (!ref || ref.split('/').includes('..')) return undefined;
  const value = (await readFile(path.join(common, ref), 'utf8')).trim();
  return OBJECT_ID.test(value) ? value : undefined;
}
