import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect } from 'vitest';
import { DomainAgent } from '../../lib/agent/index.js';
import { createLogger } from '../../lib/log.js';
import { releaseAgentTasks } from '../../lib/orchestrator/release-tasks.js';
import { MergeLock } from '../../lib/messaging/index.js';
import { MAX_SPARES } from '../../lib/workspace/index.js';
import { Reaper } from '../../lib/registry/index.js';
import { taskSpecSchema, type LogEntry, type TaskRecord } from '../../lib/task.js';
import { conversationRequests, isPlanningRequest, planScenario, primaryWorkingDirectory, writeFileScenario, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import type { DanProcess } from '../helpers/dan-process.js';
import { eventually, testConfig } from '../helpers/network.js';
import { killQuietly, processesIn } from '../helpers/processes.js';
import { World, itWith } from '../helpers/world.js';

// Issue 10, at the agents' level: every task on its own git worktree and branch `dan/<id>`, merged into the
// workspace's branch one merge at a time. Real git, real Redis, the real claude binary against the scripted
// model server, real agents (in this process, or `dan agent` children). DAN_WORKSPACE_MODE is git by default.

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
/** Short liveness timings: a killed agent's task lease and merge lock lapse within seconds. */
const TIMINGS = { DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '2000', DAN_REAPER_MS: '250', DAN_IDLE_TIMEOUT_MS: '5000', DAN_SHUTDOWN_GRACE_MS: '300' };
const USER = ['-c', 'user.name=A User', '-c', 'user.email=user@example.invalid'];

/** The world of a git workspace test: agents in this process or as children, and git run in the workspace. */
class GitWorld extends World {
  readonly agents: DomainAgent[] = [];
  private readonly dirs: string[] = [];

  /** A domain agent in this process, with the world's settings and `env` on top. */
  async startAgent(id: string, env: Record<string, string> = {}, domain = 'backend'): Promise<DomainAgent> {
    const config = testConfig(this.net.network, { DAN_WORKSPACE: this.workspace, DAN_CLAUDE_BIN: CLAUDE_BIN, ...TIMINGS, DAN_IDLE_TIMEOUT_MS: '600000', ...env });
    const agent = await DomainAgent.start({
      config,
      domain,
      agentId: id,
      env: { ...this.modelEnv, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir() },
      logger: createLogger({ level: 'info', destination: this.logs }).child({ agent: id }),
    });
    this.agents.push(agent);
    return agent;
  }

  /** `dan agent --domain backend` as a child process; resolves once it has registered. */
  async spawnAgent(id: string, extra: Record<string, string> = {}): Promise<DanProcess> {
    const child = this.spawnDan(['agent', '--domain', 'backend', '--id', id], { DAN_IDLE_TIMEOUT_MS: '600000', ...extra });
    await eventually(async () => (await this.registry().ids()).includes(id), { what: `agent ${id} to register`, timeoutMs: 30_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${child.text()}`);
    });
    return child;
  }

  /** git in the workspace, as its user runs it; trimmed standard output. */
  async git(...args: string[]): Promise<string> {
    const result = await execa('git', [...USER, ...args], { cwd: this.workspace, env: { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });
    return result.stdout.trim();
  }

  /** Whether `git <args>` exits 0. */
  async gitSucceeds(...args: string[]): Promise<boolean> {
    return (await execa('git', args, { cwd: this.workspace, reject: false })).exitCode === 0;
  }

  /** The task branches `dan/…` of the workspace. */
  async danBranches(): Promise<string[]> {
    return (await this.git('for-each-ref', '--format=%(refname:short)', 'refs/heads/dan/')).split('\n').filter((l) => l.length > 0).sort();
  }

  async worktrees(): Promise<string[]> {
    return (await this.git('worktree', 'list', '--porcelain')).split('\n').filter((l) => l.startsWith('worktree '));
  }

  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `dan-gitws-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  override async close(): Promise<void> {
    for (const agent of this.agents) await agent.stop('stopped', { graceMs: 0 }).catch(() => {});
    await super.close();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

const it = itWith(() => GitWorld.create({ label: 'gitws', settings: TIMINGS, waitTimeoutMs: 90_000 }));

/** How the merge step's prompt to resolve a conflict begins (lib/agent/merge-change.ts). */
const RESOLVE = 'Merging your change for this task into the branch';
const statusTrail = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);
const texts = (entries: LogEntry[]): string[] => entries.map((e) => e.text);

interface ApiBlock {
  type?: string;
  text?: string;
}
interface ApiMessage {
  role?: string;
  content?: string | ApiBlock[];
}

/** The conversation's messages as the CLI sent them. */
const messagesOf = (req: RecordedRequest): ApiMessage[] => ((req.body as { messages?: ApiMessage[] } | undefined)?.messages ?? []).filter((m) => m.role === 'user' || m.role === 'assistant');
/** A message's own text: the CLI's `<system-reminder>` blocks (CLAUDE.md among them) left out. */
const textOf = (m: ApiMessage): string =>
  (typeof m.content === 'string' ? m.content : (m.content ?? []).map((b) => (b.type === 'text' ? (b.text ?? '') : '')).join('\n')).replace(/<system-reminder>[\s\S]*?<\/system-reminder>/g, '');
const hasToolResult = (m: ApiMessage): boolean => Array.isArray(m.content) && m.content.some((b) => b.type === 'tool_result');

/**
 * How many tool rounds the conversation has had since the last user message whose text holds `marker` (-1 when
 * no user message does): 0 on the turn that answers it, 1 after the first tool result, ….
 */
function roundsSince(req: RecordedRequest, marker: string): number {
  const messages = messagesOf(req);
  let at = -1;
  messages.forEach((m, i) => {
    if (m.role === 'user' && textOf(m).includes(marker)) at = i;
  });
  if (at < 0) return -1;
  return messages.slice(at + 1).filter((m) => m.role === 'user' && hasToolResult(m)).length;
}

/** Read `file`, then Write `content` to it (Claude Code writes an existing file only after reading it), then say so. */
function readThenWrite(req: RecordedRequest, rounds: number, file: string, content: string): Turn {
  const cwd = primaryWorkingDirectory(req)!;
  if (rounds === 0) return { text: `Reading ${file}.`, tools: [{ name: 'Read', input: { file_path: path.join(cwd, file) } }] };
  if (rounds === 1) return { text: `Writing ${file}.`, tools: [{ name: 'Write', input: { file_path: path.join(cwd, file), content } }] };
  return { text: `Done: ${file} is written.` };
}

/** Writes `content` to `file` in the working directory, then says so. */
function writeTurn(req: RecordedRequest, file: string, content: string): Turn {
  if (req.hasToolResult) return { text: `Done: wrote ${file}.` };
  return { text: `Writing ${file}.`, tools: [{ name: 'Write', input: { file_path: path.join(primaryWorkingDirectory(req)!, file), content } }] };
}

/** A promise every caller gets, settled once `count` callers have asked: holds turns until all have arrived. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    arrived += 1;
    if (arrived >= count) release();
    return all;
  };
}

/** The orchestrator's reaper, as `dan orchestrator` runs it: a dead agent's task goes back on the queue. */
function startReaper(w: GitWorld): () => void {
  const reaper = new Reaper(w.registry()).onReap(async (agent) => {
    await releaseAgentTasks(w.bus, agent, 'stopped heartbeating');
  });
  const timer = setInterval(() => void reaper.reapOnce().catch(() => {}), w.net.config.reaperMs);
  return () => clearInterval(timer);
}

describe('git workspaces: a worktree and branch per task, merged one at a time', () => {
  it('6 agents complete 30 tasks each writing its own file: all merged, every file on the branch and in the folder, 30 branches, no worktree left', { timeout: 600_000 }, async ({ w }) => {
    w.script = writeFileScenario();
    // Leases long enough that six agents and their CLIs in one process on two busy cores never lapse one.
    for (let i = 1; i <= 6; i++) await w.startAgent(`backend-${i}`, { DAN_HEARTBEAT_TTL_MS: '15000', DAN_REAPER_MS: '1000' });
    const names = Array.from({ length: 30 }, (_, i) => `file-${String(i + 1).padStart(2, '0')}.txt`);
    const tasks: TaskRecord[] = [];
    for (const name of names) tasks.push(await w.submit(`Create the file ${name} with a line about it`));

    const done: TaskRecord[] = [];
    // About two minutes on two cores; far more when other work shares them (30 CLI starts): a generous deadline.
    for (const task of tasks) done.push(await w.waitForEnd(task.id, 540_000));
    for (const record of done) {
      expect(record.status, await w.describe(record.id)).toBe('completed');
      expect(record.attempts, `${record.id}:\n${texts(await w.entries(record.id)).join('\n')}\n${w.logs.lines.filter((l) => l.includes(record.id)).join('\n')}`).toBe(1);
      expect(record.git, record.id).toMatchObject({ branch: `dan/${record.id}`, integration: 'main', merge: 'merged' });
      expect(record.git!.files.map((f) => f.path)).toEqual([names[done.indexOf(record)]]);
    }

    const onBranch = (await w.git('ls-tree', '--name-only', 'main')).split('\n');
    for (const [i, name] of names.entries()) {
      expect(onBranch).toContain(name);
      expect(await readFile(path.join(w.workspace, name), 'utf8')).toContain(`Create the file ${name}`);
      expect(await w.git('show', `main:${name}`)).toContain(`Create the file ${name}`);
      expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${tasks[i]!.id}`, 'main')).toBe(true);
    }
    expect(await w.danBranches()).toEqual(tasks.map((t) => `dan/${t.id}`).sort());
    // One merge commit per task on the integration branch, and nothing left uncommitted in the workspace.
    expect((await w.git('log', '--merges', '--format=%s', 'main')).split('\n').filter((l) => l.startsWith('Merge dan/'))).toHaveLength(30);
    expect(await w.git('status', '--porcelain')).toBe('');
    // Each worktree leaves its task's place once its result is recorded (parked for the next task, at most
    // MAX_SPARES of them, or removed): the workspace's own and the spares are all that is left.
    const taskWorktrees = async () => (await w.worktrees()).filter((l) => !l.startsWith(`worktree ${w.workspace}/.dan/spare/`));
    await eventually(async () => (await taskWorktrees()).length === 1, { what: 'the worktrees to be removed', timeoutMs: 30_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${(await w.worktrees()).join(', ')}`);
    });
    expect(await taskWorktrees()).toEqual([`worktree ${w.workspace}`]);
    expect((await w.worktrees()).length - 1).toBeLessThanOrEqual(MAX_SPARES);
  });

  describe('two tasks writing the same file differently', () => {
    const ALPHA = 'alpha: the first intent';
    const BETA = 'beta: the second intent';
    const lineOf = (prompt: string): string => (prompt.includes('alpha') ? ALPHA : BETA);

    /** Both tasks' first turns wait for each other, so both start from the same base; then each writes its line. */
    function sameFileScript(w: GitWorld, resolution: (req: RecordedRequest, rounds: number) => Turn): (req: RecordedRequest) => Promise<Turn> {
      const bothStarted = barrier(2);
      return async (req) => {
        const rounds = roundsSince(req, RESOLVE);
        if (rounds >= 0) return resolution(req, rounds);
        if (!req.hasToolResult) await bothStarted();
        return writeTurn(req, 'shared.txt', `${lineOf(req.prompt)}\n`);
      };
    }

    it('one merges first; the other conflicts, its agent resolves the conflict keeping both lines, and it merges', { timeout: 180_000 }, async ({ w }) => {
      w.script = sameFileScript(w, (req, rounds) => readThenWrite(req, rounds, 'shared.txt', `${ALPHA}\n${BETA}\n`));
      await w.startAgent('backend-1');
      await w.startAgent('backend-2');
      const alpha = await w.submit('Create the file shared.txt with the alpha line');
      const beta = await w.submit('Create the file shared.txt with the beta line');
      const [a, b] = [await w.waitForEnd(alpha.id), await w.waitForEnd(beta.id)];
      const story = `${texts(await w.entries(a.id)).join('\n')}\n---\n${texts(await w.entries(b.id)).join('\n')}`;
      expect([a.status, b.status, a.git?.merge, b.git?.merge], story).toEqual(['completed', 'completed', 'merged', 'merged']);
      // Both started from the same commit; the one that merged second resolved a conflict first.
      expect(a.git!.base).toBe(b.git!.base);
      const [first, second] = (a.git!.resolutions ?? 0) === 0 ? [a, b] : [b, a];
      expect(first.git!.resolutions).toBe(0);
      expect(second.git!.resolutions).toBe(1);

      // The model saw the resolution prompt: the conflicting file named, conflict markers mentioned.
      const resolving = conversationRequests(w.server.requests).filter((r) => roundsSince(r, RESOLVE) === 0);
      expect(resolving).toHaveLength(1);
      expect(resolving[0]!.lastUserText).toContain('- shared.txt');
      expect(resolving[0]!.lastUserText).toContain('conflict markers');
      expect(primaryWorkingDirectory(resolving[0]!)).toBe(path.join(w.workspace, '.dan', 'worktrees', second.id));
      expect(texts(await w.entries(second.id))).toEqual(expect.arrayContaining(['merge conflict in shared.txt: resolving it (1 of 2)', `conflict resolved on dan/${second.id}`]));

      // Both intents are in the file, on the branch and in the folder, with no conflict marker.
      const merged = await readFile(path.join(w.workspace, 'shared.txt'), 'utf8');
      expect(merged).toBe(`${ALPHA}\n${BETA}\n`);
      expect(await w.git('show', 'main:shared.txt')).toBe(`${ALPHA}\n${BETA}`);
      expect(await w.git('status', '--porcelain')).toBe('');
      expect(second.git!.files).toEqual([{ path: 'shared.txt', added: 1, removed: 0 }]);
    });

    it('with DAN_MERGE_ATTEMPTS=0 the second ends completed with merge state conflict, both branches intact and nothing lost', { timeout: 180_000 }, async ({ w }) => {
      w.script = sameFileScript(w, () => ({ text: 'not asked to resolve' }));
      await w.startAgent('backend-1', { DAN_MERGE_ATTEMPTS: '0' });
      await w.startAgent('backend-2', { DAN_MERGE_ATTEMPTS: '0' });
      const alpha = await w.submit('Create the file shared.txt with the alpha line');
      const beta = await w.submit('Create the file shared.txt with the beta line');
      const [a, b] = [await w.waitForEnd(alpha.id), await w.waitForEnd(beta.id)];
      expect([a.status, b.status]).toEqual(['completed', 'completed']);
      const story = `${texts(await w.entries(a.id)).join('\n')}\n---\n${texts(await w.entries(b.id)).join('\n')}`;
      expect([a.git?.merge, b.git?.merge].sort(), story).toEqual(['conflict', 'merged']);
      const [winner, loser] = a.git!.merge === 'merged' ? [a, b] : [b, a];
      expect(loser.git!.mergeReason).toMatch(/^conflicts in shared\.txt after 0 resolutions: dan merge \S+ --resolve, or resolve them on dan\/\S+ and dan merge /);
      expect(conversationRequests(w.server.requests).some((r) => roundsSince(r, RESOLVE) >= 0)).toBe(false);

      // The workspace has the winner's line and no marker; each branch keeps its own change.
      const winnerLine = lineOf(winner.description);
      const loserLine = lineOf(loser.description);
      expect(await readFile(path.join(w.workspace, 'shared.txt'), 'utf8')).toBe(`${winnerLine}\n`);
      expect(await w.git('show', `dan/${winner.id}:shared.txt`)).toBe(winnerLine);
      expect(await w.git('show', `dan/${loser.id}:shared.txt`)).toBe(loserLine);
      expect(await w.git('rev-parse', `dan/${loser.id}`)).toBe(loser.git!.commit);
      expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${loser.id}`, 'main')).toBe(false);
      expect(await w.git('status', '--porcelain')).toBe('');
      expect(await w.danBranches()).toEqual([`dan/${a.id}`, `dan/${b.id}`].sort());
    });
  });

  it('a task cancelled while it waits on the merge train leaves it at once, unmerged, its change kept on its branch; the next task merges', { timeout: 180_000 }, async ({ w }) => {
    w.script = writeFileScenario();
    await w.startAgent('backend-1');
    // Someone else holds the merge lock: the task's merge request waits on the train.
    const lock = new MergeLock(w.bus.redis, w.bus.keys, { ttlMs: 60_000 });
    const held = await lock.acquire('the test');
    const task = await w.submit('Create the file waiting.txt');
    await eventually(async () => (await w.bus.redis.llen(w.bus.keys.mergeQueue)) === 1, { what: 'the merge request on the train', timeoutMs: 90_000 });
    expect(await w.bus.cancel(task.id, 'not wanted after all')).toMatchObject({ outcome: 'requested' });
    // It takes its request off the train and ends at once, though the lock is still held.
    const done = await w.waitForEnd(task.id);
    await held.release();
    expect(done).toMatchObject({ status: 'cancelled', git: { branch: `dan/${task.id}` } });
    expect(done.git?.merge).not.toBe('merged');
    expect(done.git?.commit).toBeDefined();
    expect(await w.git('show', `dan/${task.id}:waiting.txt`)).toContain('Create the file waiting.txt');
    expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${task.id}`, 'main')).toBe(false);
    expect(existsSync(path.join(w.workspace, 'waiting.txt'))).toBe(false);
    expect(await w.bus.redis.llen(w.bus.keys.mergeQueue)).toBe(0);

    const next = await w.waitForEnd((await w.submit('Create the file after.txt')).id);
    expect(next).toMatchObject({ status: 'completed', git: { merge: 'merged' } });
    expect(await readFile(path.join(w.workspace, 'after.txt'), 'utf8')).toContain('Create the file after.txt');
  });

  it("a goal's dependent subtask runs in a worktree that has its dependency's file, and both subtasks merge", { timeout: 180_000 }, async ({ w }) => {
    const plan = planScenario();
    const write = writeFileScenario();
    const seen: Array<{ cwd: string | undefined; hadApi: boolean }> = [];
    w.script = (req) => {
      if (isPlanningRequest(req)) return plan(req);
      if (!req.hasToolResult && req.prompt.includes('frontend-form.md')) {
        const cwd = primaryWorkingDirectory(req);
        seen.push({ cwd, hadApi: cwd !== undefined && existsSync(path.join(cwd, 'backend-api.md')) });
      }
      return write(req);
    };
    await w.startOrchestrator('orch-1');
    const goal = await w.bus.submit(taskSpecSchema.parse({ domain: 'main', description: 'Create user registration with an API endpoint and a form component', timeoutS: 90, maxAttempts: 3 }));
    const done = await w.waitForEnd(goal.id, 150_000);
    expect(done.status, await w.describe(goal.id)).toBe('completed');

    const kids = Object.fromEntries((await w.bus.tasks.getMany(done.children)).map((r) => [r.key!, r]));
    const { api, form } = kids;
    expect(api).toMatchObject({ status: 'completed', git: { branch: `dan/${api!.id}`, merge: 'merged' } });
    expect(form).toMatchObject({ status: 'completed', git: { branch: `dan/${form!.id}`, merge: 'merged' } });
    // The form's worktree was made from the integration branch once the api's change had merged into it.
    expect(form!.git!.base).toBe(api!.git!.mergeCommit);
    expect(seen).toEqual([{ cwd: path.join(w.workspace, '.dan', 'worktrees', form!.id), hadApi: true }]);
    expect(await w.git('ls-tree', '--name-only', 'main')).toContain('backend-api.md');
    expect(await w.git('ls-tree', '--name-only', 'main')).toContain('frontend-form.md');
    expect(existsSync(path.join(w.workspace, 'frontend-form.md'))).toBe(true);
  });

  it('after an agent is SIGKILLed mid-task the next attempt starts clean; the dead attempt is kept on its own branch, never merged', { timeout: 180_000 }, async ({ w }) => {
    let firstTurns = 0;
    const cleanAtStart: boolean[] = [];
    w.script = (req) => {
      if (!req.hasToolResult) {
        firstTurns += 1;
        const cwd = primaryWorkingDirectory(req)!;
        if (firstTurns > 1) cleanAtStart.push(!existsSync(path.join(cwd, 'survivor.txt')));
        return writeTurn(req, 'survivor.txt', `attempt ${firstTurns}\n`);
      }
      // The first attempt wrote its file; its next turn never answers.
      return firstTurns === 1 ? { hang: true } : { text: 'Done: wrote survivor.txt.' };
    };
    const first = await w.spawnAgent('backend-killed');
    const task = await w.submit('Create the file survivor.txt');
    const worktree = path.join(w.workspace, '.dan', 'worktrees', task.id);
    await eventually(() => conversationRequests(w.server.requests).length >= 2 && existsSync(path.join(worktree, 'survivor.txt')), { what: 'the first attempt to write its file' });

    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // A dead agent's container goes with its CLI; here the CLI is an orphan: end it as docker would.
    for (const pid of await processesIn(w.workspace)) killQuietly(pid);
    const stopReaping = startReaper(w);
    try {
      await w.waitFor(task.id, (r) => r.status === 'queued', 'the reaper to requeue the task', 30_000);
      await w.startAgent('backend-second');
      const done = await w.waitForEnd(task.id);
      expect(done).toMatchObject({ status: 'completed', attempts: 2, agent: 'backend-second' });
      expect(done.git).toMatchObject({ branch: `dan/${task.id}`, merge: 'merged', keptAttempts: [`dan/${task.id}-attempt-1`] });
    } finally {
      stopReaping();
    }
    expect(cleanAtStart).toEqual([true]);
    expect(statusTrail(await w.entries(task.id))).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    expect(texts(await w.entries(task.id))).toEqual(expect.arrayContaining([`kept the earlier attempt's branch as dan/${task.id}-attempt-1 (never merged)`]));

    // The dead attempt's file is committed on its branch, which never merged; the folder has the second's.
    expect(await w.git('show', `dan/${task.id}-attempt-1:survivor.txt`)).toBe('attempt 1');
    expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${task.id}-attempt-1`, 'main')).toBe(false);
    expect(await readFile(path.join(w.workspace, 'survivor.txt'), 'utf8')).toBe('attempt 2\n');
    expect((await w.git('log', '--merges', '--format=%s', 'main')).split('\n').filter((l) => l.startsWith(`Merge dan/${task.id}`))).toHaveLength(1);
    expect(await w.danBranches()).toEqual([`dan/${task.id}`, `dan/${task.id}-attempt-1`]);
  });

  it('an attempt whose job lock lapsed while it waited to merge hands the task back unmerged; the next attempt merges its own change', { timeout: 180_000 }, async ({ w }) => {
    let firstTurns = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    w.script = async (req) => {
      if (!req.hasToolResult) firstTurns += 1;
      const turn = writeTurn(req, 'lease.txt', `attempt ${firstTurns}\n`);
      if (firstTurns === 1) await gate;
      return turn;
    };
    await w.startAgent('backend-lapsed');
    const task = await w.submit('Create the file lease.txt');
    await eventually(() => conversationRequests(w.server.requests).length >= 1, { what: 'the first attempt to call the model', timeoutMs: 60_000 });
    await w.startAgent('backend-other'); // idle: the only task is the first agent's
    // The network's merge lock, held here so that the first attempt waits for it with its change committed.
    const held = await new MergeLock(w.bus.redis, w.bus.keys, { ttlMs: 60_000 }).acquire('test');
    try {
      openGate();
      const committed = async (n: number): Promise<boolean> => texts(await w.entries(task.id)).filter((t) => t.startsWith('committed 1 file')).length >= n;
      await eventually(() => committed(1), { what: 'the first attempt to commit', timeoutMs: 60_000 });
      // Its job lock lapses (as when its renewal comes too late): the agent stops waiting and hands the task back.
      expect(await w.bus.redis.del(`${w.bus.keys.queuePrefix}:backend:${task.id}:lock`)).toBe(1);
      await w.waitFor(task.id, (r) => r.attempts === 2 && r.status === 'active', 'the second attempt to start', 30_000);
      await eventually(() => committed(2), { what: 'the second attempt to commit', timeoutMs: 60_000 });
    } finally {
      await held.release();
    }
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, git: { merge: 'merged', keptAttempts: [`dan/${done.id}-attempt-1`] } });
    expect(texts(await w.entries(done.id)).some((t) => /job lock lapsed/.test(t))).toBe(true);
    expect(statusTrail(await w.entries(done.id))).toEqual(['queued', 'active', 'queued', 'active', 'completed']);

    // One merge, by the agent that holds the task, of its own change; the lapsed attempt's change is kept, unmerged.
    const merges = (await w.git('log', '--merges', '--format=%s%n%b', 'main')).split('\n').filter((l) => l.length > 0);
    expect(merges).toEqual([`Merge dan/${done.id}: Create the file lease.txt`, `dan task ${done.id} (backend), merged by ${done.agent}`]);
    expect(await readFile(path.join(w.workspace, 'lease.txt'), 'utf8')).toBe('attempt 2\n');
    expect(await w.git('show', `dan/${done.id}-attempt-1:lease.txt`)).toBe('attempt 1');
    expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${done.id}-attempt-1`, 'main')).toBe(false);
  });

  it('send-task --no-merge keeps the branch: dan diff shows the patch, dan diff --stat the stat; dan merge merges it and dan status says merged', { timeout: 120_000 }, async ({ w }) => {
    await w.startAgent('backend-1');
    const env = w.danEnv();
    const sent = await runDan(['send-task', 'backend', 'Create the file review.txt for a reviewer', '--no-merge'], env);
    expect(sent.exitCode, String(sent.stderr)).toBe(0);
    const id = String(sent.stdout).trim();
    const done = await w.waitForEnd(id);
    expect(done).toMatchObject({ status: 'completed', git: { merge: 'skipped', files: [{ path: 'review.txt', added: 2, removed: 0 }] } });
    expect(existsSync(path.join(w.workspace, 'review.txt'))).toBe(false);

    const diff = await runDan(['diff', id], env);
    expect(diff.exitCode, String(diff.stderr)).toBe(0);
    expect(String(diff.stdout)).toContain('+++ b/review.txt');
    expect(String(diff.stdout)).toContain("+Written by dan's scripted model.");
    expect(String(diff.stdout)).toContain('+Task: Create the file review.txt for a reviewer');
    const stat = await runDan(['diff', id, '--stat'], env);
    expect(stat.exitCode, String(stat.stderr)).toBe(0);
    expect(String(stat.stdout)).toMatch(/\+2\s+-0\s+review\.txt/);
    expect(String(stat.stdout)).toContain('1 file, +2 -0');

    const merge = await runDan(['merge', id], env);
    expect(merge.exitCode, String(merge.stderr)).toBe(0);
    expect(String(merge.stdout)).toContain(`merged dan/${id} into main`);
    expect(await readFile(path.join(w.workspace, 'review.txt'), 'utf8')).toContain('Create the file review.txt');
    expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${id}`, 'main')).toBe(true);
    const status = await runDan(['status', id], env);
    expect(status.exitCode, String(status.stderr)).toBe(0);
    expect(String(status.stdout)).toMatch(/merge\s+merged/);
    expect((await w.bus.tasks.get(id)).git).toMatchObject({ merge: 'merged' });
  });

  it("a merge blocked by the user's uncommitted change to the same file names the file and leaves it alone; dan merge merges once they commit", { timeout: 120_000 }, async ({ w }) => {
    const lines = Array.from({ length: 8 }, (_, i) => `line ${i + 1}`);
    await writeFile(path.join(w.workspace, 'notes.txt'), `${lines.join('\n')}\n`);
    const byTask = [`line 1 (by the task)`, ...lines.slice(1)];
    w.script = (req) => readThenWrite(req, roundsSince(req, 'Edit the file notes.txt'), 'notes.txt', `${byTask.join('\n')}\n`);
    await w.startAgent('backend-1'); // makes the workspace a repository, notes.txt in its base commit
    expect(await w.git('ls-tree', '--name-only', 'main')).toBe('notes.txt');
    const mine = `${[...lines.slice(0, 7), 'line 8 (by the user)'].join('\n')}\n`;
    await writeFile(path.join(w.workspace, 'notes.txt'), mine);

    const task = await w.submit('Edit the file notes.txt: change its first line');
    const done = await w.waitForEnd(task.id);
    expect(done.status).toBe('completed');
    expect(done.git).toMatchObject({ merge: 'blocked', files: [{ path: 'notes.txt', added: 1, removed: 1 }] });
    expect(done.git!.mergeReason).toContain('uncommitted changes in the workspace to notes.txt');
    expect(await readFile(path.join(w.workspace, 'notes.txt'), 'utf8')).toBe(mine);
    const env = w.danEnv();
    const status = await runDan(['status', task.id], env);
    expect(String(status.stdout)).toMatch(/merge\s+blocked/);

    // Still blocked while the change is uncommitted: dan merge says so and changes nothing.
    const refused = await runDan(['merge', task.id], env);
    expect(refused.exitCode).not.toBe(0);
    expect(String(refused.stderr)).toContain('notes.txt');
    expect(await readFile(path.join(w.workspace, 'notes.txt'), 'utf8')).toBe(mine);

    await w.git('commit', '-q', '-am', 'my change to the last line');
    const merge = await runDan(['merge', task.id], env);
    expect(merge.exitCode, `${String(merge.stdout)}${String(merge.stderr)}`).toBe(0);
    expect(await readFile(path.join(w.workspace, 'notes.txt'), 'utf8')).toBe(`${[byTask[0], ...lines.slice(1, 7), 'line 8 (by the user)'].join('\n')}\n`);
    expect((await w.bus.tasks.get(task.id)).git).toMatchObject({ merge: 'merged' });
    expect(String((await runDan(['status', task.id], env)).stdout)).toMatch(/merge\s+merged/);
    expect(await w.git('status', '--porcelain')).toBe('');
  });

  it('SIGKILL during the merge step: the next attempt undoes the half-done merge, removes the stale lock, and the task merges exactly once', { timeout: 180_000 }, async ({ w }) => {
    const dir = await w.tempDir('git-wrapper');
    const marker = path.join(dir, 'merging');
    const wrapper = path.join(dir, 'git');
    // git for the first agent: the first update of the integration branch stops as if killed inside git, its
    // ref lock taken; the wrapper's pid goes in the marker.
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        'case " $* " in',
        '  *" update-ref "*" refs/heads/main "*)',
        `    if [ ! -e '${marker}' ]; then`,
        '      : > .git/refs/heads/main.lock',
        `      echo $$ > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'`,
        '      exec sleep 300',
        '    fi;;',
        'esac',
        'exec /usr/bin/git "$@"',
        '',
      ].join('\n'),
    );
    await chmod(wrapper, 0o755);
    let firstTurns = 0;
    w.script = (req) => {
      if (!req.hasToolResult) firstTurns += 1;
      return writeTurn(req, firstTurns === 1 ? 'first-try.txt' : 'second-try.txt', `attempt ${firstTurns}\n`);
    };

    const first = await w.spawnAgent('backend-merging', { DAN_GIT_BIN: wrapper });
    const task = await w.submit('Create the file merged-once.txt');
    const pid = Number(await eventually(async () => (existsSync(marker) ? (await readFile(marker, 'utf8')).trim() : undefined), { what: 'the merge to reach update-ref', timeoutMs: 90_000 }));
    // The merge's files are in the folder already; the branch has not moved.
    expect(existsSync(path.join(w.workspace, 'first-try.txt'))).toBe(true);
    expect(await w.git('ls-tree', '--name-only', 'main')).toBe('');
    expect(await w.bus.redis.get(w.bus.keys.mergePending)).not.toBeNull();

    first.child.kill('SIGKILL');
    killQuietly(pid);
    expect((await first.exited).signal).toBe('SIGKILL');
    const stopReaping = startReaper(w);
    try {
      await w.waitFor(task.id, (r) => r.status === 'queued', 'the reaper to requeue the task', 30_000);
      await w.startAgent('backend-second');
      const done = await w.waitForEnd(task.id);
      expect(done).toMatchObject({ status: 'completed', attempts: 2, agent: 'backend-second' });
      expect(done.git).toMatchObject({ merge: 'merged', keptAttempts: [`dan/${task.id}-attempt-1`], files: [{ path: 'second-try.txt', added: 1, removed: 0 }] });
    } finally {
      stopReaping();
    }

    const log = texts(await w.entries(task.id));
    expect(log.some((t) => /^removed a stale git lock \.git\/refs\/heads\/main\.lock \(\d+ s old\) left by a killed process$/.test(t))).toBe(true);
    expect(log.some((t) => t.startsWith('undid an interrupted merge') && t.includes('its files are back as main has them'))).toBe(true);
    expect(statusTrail(await w.entries(task.id))).toEqual(['queued', 'active', 'queued', 'active', 'completed']);

    // Not half-merged: the dead attempt's file is gone from the folder, the branch and folder agree, no lock is left.
    expect(existsSync(path.join(w.workspace, 'first-try.txt'))).toBe(false);
    expect(await readFile(path.join(w.workspace, 'second-try.txt'), 'utf8')).toBe('attempt 2\n');
    expect(await w.git('ls-tree', '--name-only', 'main')).toBe('second-try.txt');
    expect(await w.git('status', '--porcelain')).toBe('');
    expect(existsSync(path.join(w.workspace, '.git', 'refs', 'heads', 'main.lock'))).toBe(false);
    expect(await w.bus.redis.get(w.bus.keys.mergePending)).toBeNull();
    expect(await w.bus.redis.get(w.bus.keys.merge)).toBeNull();
    // Merged exactly once; the dead attempt's change is kept on its branch, committed, never merged.
    expect((await w.git('log', '--merges', '--format=%s', 'main')).split('\n').filter((l) => l.startsWith(`Merge dan/${task.id}`))).toHaveLength(1);
    expect(await w.git('show', `dan/${task.id}-attempt-1:first-try.txt`)).toBe('attempt 1');
    expect(await w.gitSucceeds('merge-base', '--is-ancestor', `dan/${task.id}-attempt-1`, 'main')).toBe(false);
  });
});
