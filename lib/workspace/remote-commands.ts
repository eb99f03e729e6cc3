import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, GitError } from '../errors.js';
import type { Git } from './git.js';
import { pushOutcome } from './remote-git-workspace.js';

/**
 * `dan workspace clone|pull|push` (DAN_GIT_REMOTE): the remote's integration branch brought to the user's machine,
 * and the remote seeded from a repository the user has. Plain git underneath; nothing is ever forced. Each returns
 * the lines to print; a user's mistake is a BadInputError saying what to do.
 */

/** The remote's integration branch: the branch its HEAD names; undefined for an empty remote. */
export async function remoteBranch(git: Git, cwd: string, remote: string): Promise<string | undefined> {
  const out = await git.run(cwd, ['ls-remote', '--symref', remote, 'HEAD'], { ok: [0, 2, 128] });
  if (out.exitCode === 128) throw new BadInputError(`cannot reach DAN_GIT_REMOTE ${remote}: ${firstLine(out.stderr)}`);
  return /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out.stdout)?.[1];
}

const firstLine = (text: string): string => text.trim().split('\n').find((l) => /^(fatal|error):/.test(l)) ?? text.trim().split('\n')[0] ?? '';

/** `dan workspace clone <dir>`: a clone of the remote with its integration branch checked out. */
export async function cloneWorkspace(git: Git, remote: string, dir: string): Promise<string[]> {
  const target = path.resolve(dir);
  if (existsSync(target) && (await readdir(target)).length > 0) throw new BadInputError(`${target} exists and is not empty: give a new folder (dan workspace clone <dir>), or run dan workspace pull in a clone`);
  const branch = await remoteBranch(git, path.dirname(target), remote);
  if (!branch) throw new BadInputError(`the remote ${remote} has no branch yet: seed it from a repository with dan workspace push <dir>`);
  const out = await git.run(path.dirname(target), ['clone', '-q', '--no-tags', '--branch', branch, remote, target], { ok: [0, 128] });
  if (out.exitCode !== 0) throw new GitError(['clone', remote], out.exitCode, firstLine(out.stderr));
  const head = await git.text(target, ['log', '-1', '--format=%h %s']);
  return [`cloned ${remote} into ${target} on ${branch} (${head})`];
}

/** `dan workspace pull [dir]`: the remote's integration branch fast-forwarded into the clone at `dir`. */
export async function pullWorkspace(git: Git, remote: string, dir: string): Promise<string[]> {
  const target = path.resolve(dir);
  await assertRepository(git, target, 'dan workspace clone <dir> makes one');
  const branch = await remoteBranch(git, target, remote);
  if (!branch) throw new BadInputError(`the remote ${remote} has no branch yet: seed it with dan workspace push`);
  const current = await git.run(target, ['symbolic-ref', '-q', '--short', 'HEAD'], { ok: [0, 1] });
  if (current.stdout.trim() !== branch) throw new BadInputError(`${target} has ${current.stdout.trim() || 'a detached HEAD'} checked out, not ${branch}: git -C ${target} switch ${branch}, then pull again`);
  const before = await git.text(target, ['rev-parse', 'HEAD']);
  const out = await git.run(target, ['pull', '-q', '--ff-only', '--no-tags', remote, branch], { ok: [0, 1, 128] });
  if (out.exitCode !== 0) {
    throw new BadInputError(`${target}'s ${branch} cannot be fast-forwarded to the remote's (${firstLine(out.stderr)}): it has commits of its own; merge them by hand (git -C ${target} pull --no-ff ${remote} ${branch})`);
  }
  const after = await git.text(target, ['rev-parse', 'HEAD']);
  if (after === before) return [`${target} is up to date with ${branch} (${after.slice(0, 10)})`];
  const count = await git.text(target, ['rev-list', '--count', `${before}..${after}`]);
  return [`pulled ${count} commit${count === '1' ? '' : 's'} of ${branch} into ${target} (${before.slice(0, 10)}..${after.slice(0, 10)})`];
}

/**
 * `dan workspace push [dir]`: the repository at `dir` seeds the remote: its checked-out branch pushed as the
 * remote's integration branch (its name, or the remote's HEAD's when the remote has one). A plain push: when the
 * remote's branch has commits this repository lacks, it is refused, never overwritten.
 */
export async function pushWorkspace(git: Git, remote: string, dir: string): Promise<string[]> {
  const target = path.resolve(dir);
  await assertRepository(git, target, 'make it one first (git init, git commit), or use dan workspace init');
  const current = await git.run(target, ['symbolic-ref', '-q', '--short', 'HEAD'], { ok: [0, 1] });
  const local = current.stdout.trim();
  if (!local) throw new BadInputError(`${target} has a detached HEAD: check out the branch to publish (git -C ${target} switch <branch>)`);
  if (!(await git.succeeds(target, ['rev-parse', '-q', '--verify', 'HEAD']))) throw new BadInputError(`${target}'s ${local} has no commit yet: commit its files first`);
  const branch = (await remoteBranch(git, target, remote)) ?? local;
  const out = await git.run(target, ['push', '--porcelain', '--no-verify', remote, `HEAD:refs/heads/${branch}`], { ok: [0, 1, 128] });
  const pushed = pushOutcome(out.exitCode, out.stdout, out.stderr);
  if (pushed.state === 'moved') {
    throw new BadInputError(`the remote's ${branch} has commits ${target} lacks: refused (never forced); bring them in first (git -C ${target} pull ${remote} ${branch}), then push again`);
  }
  if (pushed.state === 'failed') throw new GitError(['push', remote], out.exitCode, `could not push to ${remote}: ${pushed.reason}`);
  const head = await git.text(target, ['log', '-1', '--format=%h %s']);
  return [`pushed ${target}'s ${local} to ${remote} as ${branch} (${head})`];
}

async function assertRepository(git: Git, dir: string, hint: string): Promise<void> {
  if (!existsSync(dir)) throw new BadInputError(`${dir} does not exist: ${hint}`);
  const top = await git.run(dir, ['rev-parse', '--show-toplevel'], { ok: [0, 128] });
  if (top.exitCode !== 0) throw new BadInputError(`${dir} is not a git repository: ${hint}`);
}
