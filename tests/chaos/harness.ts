import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus, Redis } from '../../lib/messaging/index.js';
import { connectRedis } from '../../lib/messaging/index.js';
import { isTerminal, newTaskId, taskSpecSchema, type TaskStatus } from '../../lib/task.js';
import { repoRoot } from '../helpers/cli.js';
import { eventually } from '../helpers/network.js';

/**
 * What the chaos tests share: the stand-in CLI and its workspace, `dan` children with captured output, a
 * Redis server of a test's own (to SIGKILL and restart, or to reach from containers), and the audit that
 * every chaos test ends with. Nothing here mocks Redis, Docker or dan: these are the real processes.
 */

export const STAND_IN = path.join(repoRoot(), 'tests', 'fixtures', 'stand-in-claude.sh');
export const DOMAINS = ['backend', 'frontend', 'devops'] as const;

/**
 * How `dan` children start: from source through tsx. The loader is resolved here, because agents run with
 * the workspace as their working directory, where a bare `tsx` cannot be found.
 */
export const DAN = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(repoRoot(), 'bin', 'dan.ts')];

/** Log lines of an in-process component (an Orchestrator's logger), kept for assertions and failure messages. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    done();
  }
}

/** pino JSON lines of a text, each parsed; lines that are not JSON are kept as `{ msg: line }`. */
export function jsonLines(lines: readonly string[]): Array<Record<string, unknown> & { msg?: string; time?: number }> {
  return lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return { msg: line };
    }
  });
}

/** One execution of the stand-in CLI, from its executions file. */
export interface Execution {
  key: string;
  pid: number;
  startMs: number;
}

/**
 * A workspace the stand-in CLI runs in: `.standin/config` holds its sleep bounds and `.standin/executions.log`
 * gets one line per execution (tests/fixtures/stand-in-claude.sh says why through the workspace: the executor
 * passes the CLI no DAN_* variable). With `forContainers`, the stand-in is copied to `.standin/claude` (for
 * DAN_AGENT_CLAUDE_BIN=/workspace/.standin/claude) and the folders are opened to the containers' uid 1000.
 */
export class StandInWorkspace {
  private constructor(readonly dir: string) {}

  static async create(options: { minMs?: number; maxMs?: number; forContainers?: boolean } = {}): Promise<StandInWorkspace> {
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-chaos-ws-')));
    const standin = path.join(dir, '.standin');
    await mkdir(standin);
    await writeFile(path.join(standin, 'config'), `MIN_MS=${options.minMs ?? 20}\nMAX_MS=${options.maxMs ?? 200}\n`);
    await writeFile(path.join(standin, 'executions.log'), '');
    if (options.forContainers) {
      await copyFile(STAND_IN, path.join(standin, 'claude'));
      await chmod(path.join(standin, 'claude'), 0o755);
      // Agents run as uid 1000; this test machine's user may be root or anyone else.
      for (const d of [dir, standin]) await chmod(d, 0o777);
      await chmod(path.join(standin, 'executions.log'), 0o666);
    }
    return new StandInWorkspace(dir);
  }

  get executionsFile(): string {
    return path.join(this.dir, '.standin', 'executions.log');
  }

  async executions(): Promise<Execution[]> {
    const text = await readFile(this.executionsFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((line) => {
        const [key = '', pid = '0', start = '0'] = line.trim().split(/\s+/);
        return { key, pid: Number(pid), startMs: Number(start) };
      });
  }

  /** Keys executed more than once, with their count: where at-least-once delivery ran something again. */
  async duplicates(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const e of await this.executions()) counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
    return new Map([...counts].filter(([, n]) => n > 1));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A `dan` child process with its output captured line by line. */
export class DanProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = { stdout: '', stderr: '' };

  private constructor(readonly child: ChildProcess) {
    for (const name of ['stdout', 'stderr'] as const) {
      child[name]!.setEncoding('utf8');
      child[name]!.on('data', (chunk: string) => {
        const text = this.partial[name] + chunk;
        const parts = text.split('\n');
        this.partial[name] = parts.pop() ?? '';
        this.lines.push(...parts.filter((l) => l.length > 0));
      });
    }
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** `dan <args>` with exactly `env` (plus PATH and HOME), working directory the repository. */
  static start(args: string[], env: Record<string, string>): DanProcess {
    const [node, ...rest] = DAN;
    const child = spawn(node!, [...rest, ...args], {
      cwd: repoRoot(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new DanProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  json(): ReturnType<typeof jsonLines> {
    return jsonLines(this.lines);
  }

  /** Log records whose message is `msg`. */
  logged(msg: string): ReturnType<typeof jsonLines> {
    return this.json().filter((l) => l.msg === msg);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs, false)]);
    if (!done) {
      this.kill('SIGKILL');
      await this.exited;
    }
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

export interface RedisServerOptions {
  /** Addresses to bind. @default ['127.0.0.1'] */
  bind?: string[];
  /** Append-only file with `appendfsync everysec`, as `dan up` runs it. @default false */
  appendOnly?: boolean;
  password?: string;
}

/**
 * A redis-server of the test's own, on a free port, with its data in a temp dir: one to SIGKILL and restart
 * (the shared test Redis must stay up), or one bound where containers reach it.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-chaos-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    await server.launch();
    return server;
  }

  /** The URL from this machine (or, with `host`, as containers reach it). */
  url(host = '127.0.0.1'): string {
    const auth = this.options.password ? `:${this.options.password}@` : '';
    return `redis://${auth}${host}:${this.port}`;
  }

  private args(): string[] {
    const args = ['--port', String(this.port), '--bind', ...(this.options.bind ?? ['127.0.0.1']), '--dir', this.dir, '--save', ''];
    args.push('--maxmemory-policy', 'noeviction');
    if (this.options.appendOnly) args.push('--appendonly', 'yes', '--appendfsync', 'everysec');
    else args.push('--appendonly', 'no');
    if (this.options.password) args.push('--requirepass', this.options.password);
    else args.push('--protected-mode', 'no');
    return args;
  }

  private async launch(): Promise<void> {
    const child = spawn('redis-server', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    this.process = child;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
        (await connectRedis(this.url(), { mode: 'cli', name: 'chaos-probe' })).disconnect();
        return true;
      },
      { what: `redis-server on port ${this.port}`, timeoutMs: 15_000, intervalMs: 50 },
    );
  }

  /** SIGKILL: no shutdown, no final fsync, as a crash or the OOM killer would. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts it again on the same port and data dir (it loads its append-only file). */
  async restart(): Promise<void> {
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Submits `count` tasks round-robin over `domains`, each naming its own id in a `standin:key=` directive so
 * the executions file says which task each CLI run was for. Returns the ids.
 */
export async function submitTasks(
  bus: Bus,
  count: number,
  options: { domains?: readonly string[]; label?: string; maxAttempts?: number; extra?: string } = {},
): Promise<string[]> {
  const domains = options.domains ?? DOMAINS;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = newTaskId();
    const description = `${options.label ?? 'chaos'} task ${i} standin:key=${id}${options.extra ? ` ${options.extra}` : ''}`;
    await bus.submit(
      taskSpecSchema.parse({ domain: domains[i % domains.length], description, timeoutS: 120, maxAttempts: options.maxAttempts ?? 5 }),
      { id },
    );
    ids.push(id);
  }
  return ids;
}

/** Statuses of the records, in the order of `ids` ('missing' for a record that is not there). */
export async function statuses(redis: Redis, prefix: string, ids: readonly string[]): Promise<Array<TaskStatus | 'missing'>> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(`${prefix}task:${id}`, 'status');
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([error, status]) => (error || status === null ? 'missing' : (status as TaskStatus)));
}

/** Waits (generously) until every task is terminal; the error names what is still open. */
export async function waitAllTerminal(bus: Bus, ids: readonly string[], timeoutMs: number): Promise<void> {
  let open: string[] = [];
  await eventually(
    async () => {
      const now = await statuses(bus.redis, bus.keys.prefix, ids);
      open = ids.flatMap((id, i) => {
        const status = now[i]!;
        return status === 'missing' || !isTerminal(status) ? [`${id}:${status}`] : [];
      });
      return open.length === 0;
    },
    { what: 'every task to end', timeoutMs, intervalMs: 500 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; still open: ${open.slice(0, 20).join(', ')}${open.length > 20 ? ` … (${open.length})` : ''}`);
  });
}

/** What the audit of a run found. */
export interface Audit {
  byStatus: Partial<Record<TaskStatus | 'missing', number>>;
  /** Everything that breaks the guarantees; [] when the run was clean. */
  problems: string[];
}

/**
 * The checks every chaos run ends with: each task's record is terminal; a completed task has exactly one
 * `completed` status entry in its log (it was recorded completed once, however often it ran), and any other
 * has none; and the domain queues hold no job, waiting or active.
 */
export async function audit(bus: Bus, ids: readonly string[], domains: readonly string[] = DOMAINS): Promise<Audit> {
  const byStatus: Audit['byStatus'] = {};
  const problems: string[] = [];
  const now = await statuses(bus.redis, bus.keys.prefix, ids);
  for (const [i, id] of ids.entries()) {
    const status = now[i]!;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status === 'missing' || !isTerminal(status)) problems.push(`${id} is ${status}`);
    const entries = await bus.logs.history(id);
    const completed = entries.filter((e) => e.entry.type === 'status' && e.entry.status === 'completed').length;
    if (status === 'completed' && completed !== 1) problems.push(`${id} was recorded completed ${completed} times`);
    if (status !== 'completed' && completed !== 0) problems.push(`${id} is ${status} but its log says completed ${completed} times`);
  }
  for (const domain of domains) {
    const counts = await bus.queues.queue(domain).getJobCounts('wait', 'prioritized', 'delayed', 'active');
    const left = Object.entries(counts).filter(([, n]) => (n ?? 0) > 0);
    if (left.length > 0) problems.push(`queue ${domain} still holds ${left.map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
  return { byStatus, problems };
}

/** Waits until the domain queues are empty (a finished job is removed just after its record is written). */
export async function waitQueuesEmpty(bus: Bus, domains: readonly string[] = DOMAINS, timeoutMs = 30_000): Promise<void> {
  await eventually(
    async () => {
      for (const domain of domains) {
        const counts = await bus.queues.queue(domain).getJobCounts('wait', 'prioritized', 'delayed', 'active');
        if (Object.values(counts).some((n) => (n ?? 0) > 0)) return false;
      }
      return true;
    },
    { what: 'the queues to empty', timeoutMs, intervalMs: 200 },
  );
}

/** One line for the test output: what happened in a run, so a reader sees the figures without a debugger. */
export function report(label: string, figures: Record<string, unknown>): void {
  console.log(`[chaos] ${label}: ${Object.entries(figures).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}`);
}

/** Sends SIGKILL to a pid, quietly when it is already gone. */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export const randomBetween = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));
