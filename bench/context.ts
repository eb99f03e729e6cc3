import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile, chmod, copyFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, packageRoot, type DanConfig } from '../lib/config.js';
import { Bus, connectRedis, createRedis, type Redis } from '../lib/messaging/index.js';

/**
 * What every benchmark shares: the Redis they run against, a network per benchmark (removed afterwards), the
 * compiled `dan` CLI as child processes, and a workspace for the stand-in CLI (tests/fixtures/stand-in-claude.sh).
 */

export const ROOT = packageRoot();
export const STAND_IN = path.join(ROOT, 'tests', 'fixtures', 'stand-in-claude.sh');
/**
 * The compiled CLI, as users run it (`npm run build` first: run.ts does). With BENCH_CPU_PROF=<dir>, every
 * `dan` child writes a CPU profile there when it exits: how the figures below were explained.
 */
export const DAN = [
  process.execPath,
  ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
  path.join(ROOT, 'dist', 'bin', 'dan.js'),
];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

/**
 * The Redis of a run: REDIS_URL when set, else a redis-server of its own on a free port, configured as `dan up`
 * runs it (append-only file, fsync every second, noeviction), bound to loopback and, when Docker is here, to
 * the Docker bridge's gateway so agent containers reach it as host.docker.internal.
 */
export class BenchRedis {
  private constructor(
    readonly url: string,
    /** The URL as agent containers reach it; undefined when they cannot. */
    readonly containerUrl: string | undefined,
    private readonly child: ChildProcess | undefined,
    private readonly dir: string | undefined,
  ) {}

  static async start(env: NodeJS.ProcessEnv, dockerGateway: string | undefined): Promise<BenchRedis> {
    if (env.REDIS_URL) return new BenchRedis(env.REDIS_URL, env.DAN_AGENT_REDIS_URL, undefined, undefined);
    const port = await freePort();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-bench-redis-'));
    const password = randomBytes(12).toString('hex');
    const bind = ['127.0.0.1', ...(dockerGateway ? [dockerGateway] : [])];
    const args = ['--port', String(port), '--bind', ...bind, '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'];
    args.push('--maxmemory-policy', 'noeviction', '--requirepass', password);
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    // However this process ends (an error, Ctrl-C: run.ts turns SIGINT into an exit), the server ends with it.
    process.once('exit', () => child.kill('SIGKILL'));
    const url = `redis://:${password}@127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      try {
        (await connectRedis(url, { mode: 'cli' })).disconnect();
        const containerUrl = dockerGateway ? `redis://:${password}@host.docker.internal:${port}` : undefined;
        return new BenchRedis(url, containerUrl, child, dir);
      } catch {
        if (child.exitCode !== null) break;
        await sleep(100);
      }
    }
    child.kill('SIGKILL');
    throw new Error('redis-server did not start: install it (apt-get install redis-server) or set REDIS_URL');
  }

  get own(): boolean {
    return this.child !== undefined;
  }

  /** The redis-server's pid, when this run started it. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** One benchmark's network: its config, a bus, and a cleanup that removes every key it made. */
export class BenchNetwork {
  private constructor(
    readonly config: DanConfig,
    readonly bus: Bus,
  ) {}

  static async open(redisUrl: string, label: string, env: Record<string, string> = {}): Promise<BenchNetwork> {
    const network = `dan-bench-${label}-${randomBytes(3).toString('hex')}`;
    const config = loadConfig({ REDIS_URL: redisUrl, DAN_NETWORK: network, DAN_LOG_LEVEL: 'warn', ...env });
    const bus = await Bus.connect(config, { name: `bench-${label}` });
    bus.redis.on('error', () => {});
    return new BenchNetwork(config, bus);
  }

  get redis(): Redis {
    return this.bus.redis;
  }

  /** The variables a `dan` child needs to join this network. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return { REDIS_URL: this.config.redisUrl, DAN_NETWORK: this.config.network, DAN_LOG_LEVEL: 'warn', ...extra };
  }

  async close(): Promise<void> {
    const redis = createRedis(this.config.redisUrl, { name: 'bench-cleanup' });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.config.prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
    await this.bus.close();
  }
}

/** A workspace for the stand-in CLI: its sleep bounds, its executions file (see the script's header). */
export class StandInWorkspace {
  private constructor(readonly dir: string) {}

  static async create(options: { minMs: number; maxMs: number; forContainers?: boolean }): Promise<StandInWorkspace> {
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-bench-ws-')));
    await mkdir(path.join(dir, '.standin'));
    await writeFile(path.join(dir, '.standin', 'config'), `MIN_MS=${options.minMs}\nMAX_MS=${options.maxMs}\n`);
    await writeFile(path.join(dir, '.standin', 'executions.log'), '');
    if (options.forContainers) {
      await copyFile(STAND_IN, path.join(dir, '.standin', 'claude'));
      await chmod(path.join(dir, '.standin', 'claude'), 0o755);
      for (const d of [dir, path.join(dir, '.standin')]) await chmod(d, 0o777);
      await chmod(path.join(dir, '.standin', 'executions.log'), 0o666);
    }
    return new StandInWorkspace(dir);
  }

  /** Start time (ms) of each key's first execution. */
  async starts(): Promise<Map<string, number>> {
    const text = await readFile(path.join(this.dir, '.standin', 'executions.log'), 'utf8');
    const starts = new Map<string, number>();
    for (const line of text.split('\n')) {
      const [key, , start] = line.trim().split(/\s+/);
      if (key && start && !starts.has(key)) starts.set(key, Number(start));
    }
    return starts;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A `dan` child process (compiled CLI). Its output goes to a file, as a container's goes to the engine's log:
 * a pipe read by this (busy) process would slow the child's synchronous log writes and skew the figures.
 */
export class DanChild {
  readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    private readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static start(args: string[], env: Record<string, string>, cwd = ROOT): DanChild {
    const [node, ...rest] = DAN;
    const logFile = path.join(os.tmpdir(), `dan-bench-${process.pid}-${randomBytes(4).toString('hex')}.log`);
    const fd = openSync(logFile, 'w');
    const child = spawn(node!, [...rest, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir(), ...env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    return new DanChild(child, logFile);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What the child has written so far. */
  output(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      if (!(await Promise.race([this.exited.then(() => true), sleep(15_000, false)]))) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    await rm(this.logFile, { force: true });
  }

  tail(): string {
    return this.output().split('\n').slice(-20).join('\n');
  }
}

/** Polls until `check` is truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 60_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Whether a Docker engine answers and the agent image exists; the reason when not. */
export function dockerStatus(image: string): { ok: true; gateway: string } | { ok: false; reason: string } {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return { ok: false, reason: 'no Docker engine answers (start dockerd, or see scripts/ci-docker.sh)' };
  }
  try {
    execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return { ok: false, reason: `the agent image ${image} is missing (scripts/build-image.sh builds it)` };
  }
  let gateway = '172.17.0.1';
  try {
    gateway = execFileSync('docker', ['network', 'inspect', 'bridge', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}'], { encoding: 'utf8' }).trim() || gateway;
  } catch {
    // keep the usual default
  }
  return { ok: true, gateway };
}

/** CPU time a process has used (user + system), and that of its waited-for children, from /proc, in ms. */
export async function cpuMs(pid: number): Promise<{ self: number; children: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  return {
    self: (Number(fields[11]) + Number(fields[12])) * tick,
    children: (Number(fields[13]) + Number(fields[14])) * tick,
  };
}

/** Resident memory of a process from /proc, in MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
  return kb / 1024;
}
