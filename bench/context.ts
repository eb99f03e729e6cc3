import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, packageRoot, type DanConfig } from '../lib/config.js';
import { Bus, type Redis } from '../lib/messaging/index.js';
import { deleteNetworkKeys } from '../tests/helpers/network-keys.js';
import { killQuietly } from '../tests/helpers/processes.js';
import { RedisServer } from '../tests/helpers/redis-server.js';

export { STAND_IN, StandInWorkspace } from '../tests/helpers/stand-in-workspace.js';

/**
 * What every benchmark shares: the Redis they run against, a network per benchmark (removed afterwards), the
 * compiled `dan` CLI as child processes, and a workspace for the stand-in CLI (tests/fixtures/stand-in-claude.sh).
 */

export const ROOT = packageRoot();
/**
 * The compiled CLI, as users run it (`npm run build` first: run.ts does). With BENCH_CPU_PROF=<dir>, every
 * `dan` child writes a CPU profile there when it exits: how the figures below were explained.
 */
export const DAN = [
  process.execPath,
  ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
  path.join(ROOT, 'dist', 'bin', 'dan.js'),
];

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
    private readonly server: RedisServer | undefined,
  ) {}

  static async start(env: NodeJS.ProcessEnv, dockerGateway: string | undefined): Promise<BenchRedis> {
    if (env.REDIS_URL) return new BenchRedis(env.REDIS_URL, env.DAN_AGENT_REDIS_URL, undefined);
    const server = await RedisServer.start({
      bind: ['127.0.0.1', ...(dockerGateway ? [dockerGateway] : [])],
      appendOnly: true,
      password: randomBytes(12).toString('hex'),
    }).catch((error: Error) => {
      throw new Error(`redis-server did not start: install it (apt-get install redis-server) or set REDIS_URL (${error.message})`);
    });
    // However this process ends (an error, Ctrl-C: run.ts turns SIGINT into an exit), the server ends with it.
    process.once('exit', () => server.pid && killQuietly(server.pid));
    return new BenchRedis(server.url(), dockerGateway ? server.url('host.docker.internal') : undefined, server);
  }

  get own(): boolean {
    return this.server !== undefined;
  }

  /** The redis-server's pid, when this run started it. */
  get pid(): number | undefined {
    return this.server?.pid;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
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
    return { REDIS_URL: this.config.redisUrl, DAN_NETWORK: this.config.network, DAN_LOG_LEVEL: 'warn', ...(process.env.DAN_GIT_BIN ? { DAN_GIT_BIN: process.env.DAN_GIT_BIN } : {}), ...extra };
  }

  async close(): Promise<void> {
    await deleteNetworkKeys(this.config.redisUrl, this.config.prefix);
    await this.bus.close();
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
