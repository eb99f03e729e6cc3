import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pendingStore } from '../lib/agent/merge-change.js';
import { MergeLock } from '../lib/messaging/index.js';
import { LocalGitWorkspace } from '../lib/workspace/index.js';
import { BenchNetwork, type BenchRedis } from './context.js';
import { median, percentile, type Figure } from './stats.js';
import { benchThroughput } from './throughput.js';

const run = promisify(execFile);
const GIT_ENV = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
const git = (cwd: string, ...args: string[]) => run('git', args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 });

/** A repository of `files` small files in folders of 100, committed on main. */
async function bigRepository(dir: string, files: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  for (let i = 0; i < files; i += 100) {
    const folder = path.join(dir, 'src', `m${i / 100}`);
    await mkdir(folder, { recursive: true });
    await Promise.all(Array.from({ length: Math.min(100, files - i) }, (_, j) => writeFile(path.join(folder, `f${j}.ts`), `export const v${i + j} = ${i + j};\n`)));
  }
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'base');
}

/**
 * The time git mode adds to a task (DESIGN.md, Workspaces): a worktree from the integration branch, a commit of
 * one new file, the merge into the integration branch and the worktree's removal, on a repository of `files`
 * files. dan's step (LocalGitWorkspace with the Redis merge lock and pending-merge record, as an agent runs it)
 * against the same four things as bare git commands (`worktree add`, `add` + `commit`, `merge --no-ff`,
 * `worktree remove`), alternating so both see the same machine.
 */
export async function benchGitStep(redis: BenchRedis, rounds: number, files = 10_000): Promise<Figure[]> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dan-bench-git-'));
  const net = await BenchNetwork.open(redis.url, 'git');
  try {
    const danRoot = path.join(tmp, 'dan');
    const bareRoot = path.join(tmp, 'bare');
    await bigRepository(danRoot, files);
    await bigRepository(bareRoot, files);
    const ws = new LocalGitWorkspace(danRoot, { env: process.env });
    await ws.ensure();
    const lock = new MergeLock(net.redis, net.bus.keys, { ttlMs: 30_000 });
    const who = { name: 'bench', email: 'bench@dan.invalid' };
    const dan: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const id = `T${String(i).padStart(4, '0')}`;
      let started = performance.now();
      const wt = await ws.prepare(id, 1, who);
      await writeFile(path.join(wt.path, `new-${i}.ts`), `export const n = ${i};\n`);
      await ws.commit(wt, `task ${id}`, who);
      const lease = await lock.acquire('bench');
      try {
        const pending = pendingStore(lock);
        await ws.recover(pending, 30_000);
        const merged = await ws.merge(wt.branch, `Merge ${id}`, who, pending);
        if (merged.state !== 'merged') throw new Error(`bench: dan's merge of ${id} ended ${merged.state}`);
      } finally {
        await lease.release();
      }
      await ws.remove(wt);
      dan.push(performance.now() - started);

      started = performance.now();
      const dir = path.join(bareRoot, '.wt', id);
      await git(bareRoot, 'worktree', 'add', '-q', '-b', `b/${id}`, dir, 'HEAD');
      await writeFile(path.join(dir, `new-${i}.ts`), `export const n = ${i};\n`);
      await git(dir, 'add', '-A');
      await git(dir, 'commit', '-q', '-m', `task ${id}`);
      await git(bareRoot, 'merge', '-q', '--no-ff', '--no-edit', `b/${id}`);
      await git(bareRoot, 'worktree', 'remove', '--force', dir);
      bare.push(performance.now() - started);
    }
    const ratio = median(dan) / median(bare);
    return [
      {
        bench: 'git',
        metric: `git step per task on a ${files.toLocaleString('en-US')}-file repository, p50 (${rounds} tasks: worktree, commit, merge, remove)`,
        value: median(dan),
        unit: 'ms',
        baseline: { label: 'git worktree add + commit + merge --no-ff + worktree remove, bare', value: median(bare) },
        comparison: `${ratio.toFixed(2)}x the bare commands`,
        target: '≤ 1.5x the bare commands and < 1000 ms',
        met: ratio <= 1.5 && median(dan) < 1000,
        note: `p99: dan ${percentile(dan, 99).toFixed(0)} ms, bare ${percentile(bare, 99).toFixed(0)} ms. dan's step also keeps the workspace never half-merged (merge computed with merge-tree, applied with one checkout and a compare-and-set of the branch), takes the network's merge lock in Redis, and records the diff stat.`,
      },
    ];
  } finally {
    await net.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Throughput with git workspaces against shared mode, the stand-in CLI, in the same run. */
export async function benchGitThroughput(redis: BenchRedis, count: number): Promise<Figure[]> {
  const [shared] = await benchThroughput(redis, count, undefined, 'shared');
  const [withGit] = await benchThroughput(redis, count, undefined, 'git');
  const ratio = withGit!.value / shared!.value;
  return [
    {
      bench: 'git',
      metric: `throughput with git workspaces, ${count} tasks, 6 agents, stand-in CLI (${withGit!.metric.replace(/^.*\((\d+ completed)\)$/, '$1')})`,
      value: withGit!.value,
      unit: '/s',
      baseline: { label: 'the same tasks in shared mode (DAN_WORKSPACE_MODE=shared)', value: shared!.value },
      comparison: `${Math.round(ratio * 100)}% of shared mode`,
      target: '≥ 80% of shared mode',
      met: ratio >= 0.8,
      note: 'Each task writes one file (the stand-in): in git mode it gets a worktree, a commit and a merge under the network-wide merge lock.',
    },
  ];
}
