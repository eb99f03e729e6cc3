import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect } from 'vitest';
import { DomainAgent } from '../../lib/agent/index.js';
import { createLogger } from '../../lib/log.js';
import { MergeLock } from '../../lib/messaging/index.js';
import { releaseAgentTasks } from '../../lib/orchestrator/release-tasks.js';
import { Reaper } from '../../lib/registry/index.js';
import type { LogEntry, TaskRecord } from '../../lib/task.js';
import { primaryWorkingDirectory, writeFileScenario, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import type { DanProcess } from '../helpers/dan-process.js';
import { eventually, testConfig } from '../helpers/network.js';
import { killQuietly, processesIn } from '../helpers/processes.js';
import { World, itWith } from '../helpers/world.js';

// Issue 14, workspace by git remote (DAN_GIT_REMOTE): a bare repository is the remote; each agent keeps its own
// clone of it, pushes its task's branch, and publishes merges by a plain push, merged again from a fresh fetch when
// the remote moved. Real git, real Redis, real agents and the real claude binary against the scripted model server.

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const TIMINGS = { DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '2000', DAN_REAPER_MS: '250', DAN_IDLE_TIMEOUT_MS: '5000', DAN_SHUTDOWN_GRACE_MS: '300' };
const GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'Someone Else', GIT_AUTHOR_EMAIL: 'else@example.invalid', GIT_COMMITTER_NAME: 'Someone Else', GIT_COMMITTER_EMAIL: 'else@example.invalid' };

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}

class RemoteWorld extends World {
  readonly agents: DomainAgent[] = [];
  remote = '';
  clones = '';
  private readonly dirs: string[] = [];

  /** The bare remote, with a base commit on main; agents' clones go under the workspace folder. */
  async makeRemote(options: { empty?: boolean } = {}): Promise<void> {
    const dir = await this.tempDir('remote');
    this.remote = path.join(dir, 'workspace.git');
    this.clones = path.join(this.workspace, 'clones');
    await execa('git', ['init', '-q', '--bare', '-b', 'main', this.remote], { env: GIT_ENV });
    if (options.empty) return;
    const seed = path.join(dir, 'seed');
    await execa('git', ['clone', '-q', this.remote, seed], { env: GIT_ENV });
    await writeFile(path.join(seed, 'README.md'), 'the project\n');
    await git(seed, 'add', '-A');
    await git(seed, 'commit', '-q', '-m', 'base');
    await git(seed, 'push', '-q', 'origin', 'HEAD:main');
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return { DAN_GIT_REMOTE: this.remote, DAN_GIT_CLONE_DIR: this.clones, ...extra };
  }

  async startAgent(id: string, env: Record<string, string> = {}): Promise<DomainAgent> {
    const config = testConfig(this.net.network, { DAN_WORKSPACE: this.workspace, DAN_CLAUDE_BIN: CLAUDE_BIN, ...TIMINGS, DAN_IDLE_TIMEOUT_MS: '600000', ...this.env(env) });
    const agent = await DomainAgent.start({
      config,
      domain: 'backend',
      agentId: id,
      env: { ...this.modelEnv, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir() },
      logger: createLogger({ level: 'info', destination: this.logs }).child({ agent: id }),
    });
    this.agents.push(agent);
    return agent;
  }

  async spawnAgent(id: string): Promise<DanProcess> {
    const child = this.spawnDan(['agent', '--domain', 'backend', '--id', id], this.env({ DAN_IDLE_TIMEOUT_MS: '600000' }));
    await eventually(async () => (await this.registry().ids()).includes(id), { what: `agent ${id} to register`, timeoutMs: 30_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${child.text()}`);
    });
    return child;
  }

  /** git in the bare remote. */
  remoteGit(...args: string[]): Promise<string> {
    return git(this.remote, ...args);
  }

  async remoteBranches(): Promise<string[]> {
    return (await this.remoteGit('for-each-ref', '--format=%(refname:short)', 'refs/heads/dan/')).split('\n').filter((l) => l.length > 0).sort();
  }

  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `dan-gitremote-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  override async close(): Promise<void> {
    for (const agent of this.agents) await agent.stop('stopped', { graceMs: 0 }).catch(() => {});
    await super.close();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

const it = itWith(async () => {
  const w = await RemoteWorld.create({ label: 'gitremote', settings: TIMINGS, waitTimeoutMs: 120_000 });
  await w.makeRemote();
  return w;
});

const texts = (entries: LogEntry[]): string[] => entries.map((e) => e.text);
const statusTrail = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);

interface ApiMessage {
  role?: string;
  content?: string | Array<{ type?: string; text?: string }>;
}
const messagesOf = (req: RecordedRequest): ApiMessage[] => ((req.body as { messages?: ApiMessage[] } | undefined)?.messages ?? []).filter((m) => m.role === 'user' || m.role === 'assistant');
const textOf = (m: ApiMessage): string =>
  (typeof m.content === 'string' ? m.content : (m.content ?? []).map((b) => (b.type === 'text' ? (b.text ?? '') : '')).join('\n')).replace(/<system-reminder>[\s\S]*?<\/system-reminder>/g, '');
const hasToolResult = (m: ApiMessage): boolean => Array.isArray(m.content) && m.content.some((b) => b.type === 'tool_result');

/** Tool rounds since the last user message holding `marker` (-1: none does), as in git-workspace.test.ts. */
function roundsSince(req: RecordedRequest, marker: string): number {
  const messages = messagesOf(req);
  let at = -1;
  messages.forEach((m, i) => {
    if (m.role === 'user' && textOf(m).includes(marker)) at = i;
  });
  if (at < 0) return -1;
  return messages.slice(at + 1).filter((m) => m.role === 'user' && hasToolResult(m)).length;
}

function writeTurn(req: RecordedRequest, file: string, content: string): Turn {
  if (req.hasToolResult) return { text: `Done: wrote ${file}.` };
  return { text: `Writing ${file}.`, tools: [{ name: 'Write', input: { file_path: path.join(primaryWorkingDirectory(req)!, file), content } }] };
}

/**
 * A git for dan that, the first time dan pushes the integration branch, lets someone else push to it first (a
 * commit from another clone): the remote moves between dan's fetch and its push, as it does when another network
 * or a person pushes. Everything else is plain git.
 */
async function pushRacingGit(w: RemoteWorld): Promise<{ bin: string; mark: string; other: string }> {
  const dir = await w.tempDir('race');
  const other = path.join(dir, 'other');
  await execa('git', ['clone', '-q', w.remote, other], { env: GIT_ENV });
  const mark = path.join(dir, 'raced');
  const bin = path.join(dir, 'git');
  const realGit = (await execa('sh', ['-c', 'command -v git'])).stdout.trim();
  await writeFile(
    bin,
    [
      '#!/bin/sh',
      `if [ "$1" = push ] && [ ! -e '${mark}' ] && echo "$*" | grep -q 'refs/heads/main:refs/heads/main'; then`,
      `  touch '${mark}'`,
      `  ( unset GIT_CONFIG_COUNT; cd '${other}' && export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 && '${realGit}' pull -q --no-rebase origin main && echo 'pushed by someone else' > else.txt && '${realGit}' add else.txt && '${realGit}' -c user.name='Someone Else' -c user.email=else@example.invalid commit -q -m 'someone else' && '${realGit}' push -q origin HEAD:main ) >&2`,
      'fi',
      `exec '${realGit}' "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(bin, 0o755);
  return { bin, mark, other };
}

function startReaper(w: RemoteWorld): () => void {
  const reaper = new Reaper(w.registry()).onReap(async (agent) => {
    await releaseAgentTasks(w.bus, agent, 'stopped heartbeating');
  });
  const timer = setInterval(() => void reaper.reapOnce().catch(() => {}), w.net.config.reaperMs);
  return () => clearInterval(timer);
}

describe('workspace by git remote: each agent its own clone, branches pushed, merges published by plain push', () => {
  it('two agents with their own clones merge six tasks into the remote; the remote moved under a merge push, which is merged again and pushed, nothing forced', { timeout: 300_000 }, async ({ w }) => {
    w.script = writeFileScenario();
    const race = await pushRacingGit(w);
    await w.startAgent('backend-1', { DAN_GIT_BIN: race.bin });
    await w.startAgent('backend-2', { DAN_GIT_BIN: race.bin });
    const names = Array.from({ length: 6 }, (_, i) => `file-${i + 1}.txt`);
    const tasks: TaskRecord[] = [];
    for (const name of names) tasks.push(await w.submit(`Create the file ${name} with a line about it`));
    const done: TaskRecord[] = [];
    for (const task of tasks) done.push(await w.waitForEnd(task.id, 240_000));
    for (const [i, record] of done.entries()) {
      expect(record.status, await w.describe(record.id)).toBe('completed');
      expect(record.git, `${record.id}:\n${texts(await w.entries(record.id)).join('\n')}`).toMatchObject({ branch: `dan/${record.id}`, integration: 'main', merge: 'merged' });
      expect(record.git!.files.map((f) => f.path)).toEqual([names[i]]);
      // The branch is on the remote, as committed, and merged into its main.
      expect(await w.remoteGit('rev-parse', `refs/heads/dan/${record.id}`)).toBe(record.git!.commit);
      expect((await execa('git', ['merge-base', '--is-ancestor', record.git!.commit!, 'main'], { cwd: w.remote, reject: false })).exitCode).toBe(0);
      expect(await w.remoteGit('show', `main:${names[i]}`)).toContain(`Create the file ${names[i]}`);
    }
    // Each agent worked in its own clone.
    expect(existsSync(path.join(w.clones, 'backend-1', '.git'))).toBe(true);
    expect(new Set(done.map((r) => r.agent)).size).toBeGreaterThanOrEqual(1);
    // Someone else's push landed between a merge's fetch and its push: that push was refused, merged again and
    // pushed; their commit is still in main's history (no force push) and their file is there.
    expect(existsSync(race.mark)).toBe(true);
    const theirs = await git(race.other, 'rev-parse', 'HEAD');
    expect((await execa('git', ['merge-base', '--is-ancestor', theirs, 'main'], { cwd: w.remote, reject: false })).exitCode).toBe(0);
    expect(await w.remoteGit('show', 'main:else.txt')).toBe('pushed by someone else');
    expect(await w.remoteGit('show', 'main:README.md')).toBe('the project');
    expect((await w.remoteGit('log', '--merges', '--format=%s', 'main')).split('\n').filter((l) => l.startsWith('Merge dan/'))).toHaveLength(6);
    expect(await w.remoteBranches()).toEqual(tasks.map((t) => `dan/${t.id}`).sort());
  });

  it('two tasks writing the same file: the one merged second conflicts, its agent resolves it in its own clone, and both lines reach the remote', { timeout: 240_000 }, async ({ w }) => {
    const ALPHA = 'alpha: the first intent';
    const BETA = 'beta: the second intent';
    const RESOLVE = 'Merging your change for this task into the branch';
    let arrived = 0;
    let release!: () => void;
    const both = new Promise<void>((resolve) => (release = resolve));
    w.script = async (req) => {
      const rounds = roundsSince(req, RESOLVE);
      const cwd = primaryWorkingDirectory(req)!;
      if (rounds === 0) return { text: 'Reading shared.txt.', tools: [{ name: 'Read', input: { file_path: path.join(cwd, 'shared.txt') } }] };
      if (rounds === 1) return { text: 'Writing shared.txt.', tools: [{ name: 'Write', input: { file_path: path.join(cwd, 'shared.txt'), content: `${ALPHA}\n${BETA}\n` } }] };
      if (rounds > 1) return { text: 'Done: both lines kept.' };
      if (!req.hasToolResult) {
        arrived += 1;
        if (arrived >= 2) release();
        await both;
      }
      return writeTurn(req, 'shared.txt', `${req.prompt.includes('alpha') ? ALPHA : BETA}\n`);
    };
    await w.startAgent('backend-1');
    await w.startAgent('backend-2');
    const alpha = await w.submit('Create the file shared.txt with the alpha line');
    const beta = await w.submit('Create the file shared.txt with the beta line');
    const [a, b] = [await w.waitForEnd(alpha.id), await w.waitForEnd(beta.id)];
    const story = `${texts(await w.entries(a.id)).join('\n')}\n---\n${texts(await w.entries(b.id)).join('\n')}`;
    expect([a.status, b.status, a.git?.merge, b.git?.merge], story).toEqual(['completed', 'completed', 'merged', 'merged']);
    const second = (a.git!.resolutions ?? 0) > 0 ? a : b;
    expect(second.git!.resolutions, story).toBe(1);
    expect(texts(await w.entries(second.id))).toEqual(expect.arrayContaining(['merge conflict in shared.txt: resolving it (1 of 2)', `conflict resolved on dan/${second.id}`]));
    expect(await w.remoteGit('show', 'main:shared.txt')).toBe(`${ALPHA}\n${BETA}`);
    // The resolution was pushed on the task's branch: the remote's branch has it, and main has the branch.
    expect(await w.remoteGit('show', `dan/${second.id}:shared.txt`)).toBe(`${ALPHA}\n${BETA}`);
    expect((await execa('git', ['merge-base', '--is-ancestor', `dan/${second.id}`, 'main'], { cwd: w.remote, reject: false })).exitCode).toBe(0);

    // `dan diff` shows what the merge brought, read from the remote through the CLI's own clone of it.
    const env = w.danEnv(w.env({ DAN_GIT_CLONE_DIR: await w.tempDir('cli') }));
    const diff = await runDan(['diff', second.id], env);
    expect(diff.exitCode, String(diff.stderr)).toBe(0);
    expect(String(diff.stdout)).toContain('+++ b/shared.txt');
    expect(String(diff.stdout)).toContain(`+${second.description.includes('alpha') ? ALPHA : BETA}`);
    const stat = await runDan(['diff', a.id, '--stat'], env);
    expect(stat.exitCode, String(stat.stderr)).toBe(0);
    expect(String(stat.stdout)).toMatch(/shared\.txt\n1 file, \+1 -0$/);
  });

  it('an empty remote gets the base commit from the first agent, and the task merges on top of it', { timeout: 180_000 }, async ({ w }) => {
    await w.makeRemote({ empty: true });
    w.script = writeFileScenario();
    await w.startAgent('backend-1');
    expect(await w.remoteGit('log', '--format=%s', 'main')).toBe('dan: the workspace as it was');
    const done = await w.waitForEnd((await w.submit('Create the file first.txt with a line about it')).id);
    expect(done, texts(await w.entries(done.id)).join('\n')).toMatchObject({ status: 'completed', git: { integration: 'main', merge: 'merged' } });
    expect(await w.remoteGit('show', 'main:first.txt')).toContain('Create the file first.txt');
    expect((await w.remoteGit('log', '--format=%s', 'main')).split('\n')).toEqual([expect.stringMatching(/^Merge dan\//), expect.stringMatching(/^Create the file first\.txt/), 'dan: the workspace as it was']);
  });

  it('an agent SIGKILLed after it committed: its branch is on the remote, kept as the attempt\'s; the retried task completes and merges', { timeout: 240_000 }, async ({ w }) => {
    let firstTurns = 0;
    w.script = (req) => {
      if (!req.hasToolResult) firstTurns += 1;
      return writeTurn(req, 'survivor.txt', `attempt ${firstTurns}\n`);
    };
    await mkdir(w.clones, { recursive: true });
    const first = await w.spawnAgent('backend-killed');
    // The merge lock held elsewhere: the first attempt commits, pushes and waits on the merge train.
    const lock = new MergeLock(w.bus.redis, w.bus.keys, { ttlMs: 60_000 });
    const held = await lock.acquire('the test');
    const task = await w.submit('Create the file survivor.txt');
    let pushed = '';
    try {
      await eventually(async () => (await w.bus.redis.llen(w.bus.keys.mergeQueue)) === 1, { what: 'the merge request on the train', timeoutMs: 90_000 });
      pushed = await w.remoteGit('rev-parse', `refs/heads/dan/${task.id}`);
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      for (const pid of await processesIn(w.workspace)) killQuietly(pid);
    } finally {
      await held.release();
    }
    expect(await w.remoteGit('show', `${pushed}:survivor.txt`)).toBe('attempt 1');
    const stopReaping = startReaper(w);
    try {
      await w.waitFor(task.id, (r) => r.status === 'queued', 'the reaper to requeue the task', 30_000);
      await w.startAgent('backend-second');
      const done = await w.waitForEnd(task.id);
      expect(done, texts(await w.entries(task.id)).join('\n')).toMatchObject({ status: 'completed', attempts: 2, agent: 'backend-second' });
      expect(done.git).toMatchObject({ branch: `dan/${task.id}`, merge: 'merged', keptAttempts: [`dan/${task.id}-attempt-1`] });
    } finally {
      stopReaping();
    }
    expect(statusTrail(await w.entries(task.id))).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    // The dead attempt's commit is on the remote under its attempt's name, never merged; main has the second's.
    expect(await w.remoteGit('rev-parse', `refs/heads/dan/${task.id}-attempt-1`)).toBe(pushed);
    expect((await execa('git', ['merge-base', '--is-ancestor', pushed, 'main'], { cwd: w.remote, reject: false })).exitCode).not.toBe(0);
    expect(await w.remoteGit('show', 'main:survivor.txt')).toBe('attempt 2');
    expect(await w.remoteBranches()).toEqual([`dan/${task.id}`, `dan/${task.id}-attempt-1`]);
  });
});
