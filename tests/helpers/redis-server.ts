import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis } from '../../lib/messaging/index.js';
import { eventually } from './eventually.js';

/** A TCP port nothing listens on now, on 127.0.0.1. */
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
 * A redis-server of its own, on a free port, with its data in a temp dir: one a test can SIGKILL and restart
 * (the shared test Redis must stay up), one bound where containers reach it, or a benchmark's.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    try {
      await server.launch();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** The URL from this machine (or, with `host`, as containers reach it). */
  url(host = '127.0.0.1'): string {
    const auth = this.options.password ? `:${this.options.password}@` : '';
    return `redis://${auth}${host}:${this.port}`;
  }

  /** The pid of the running server. */
  get pid(): number | undefined {
    return this.process?.pid;
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
    let failed: Error | undefined; // not there (ENOENT), not executable …
    child.once('error', (error) => (failed = error));
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    this.process = child;
    await eventually(
      async () => {
        if (failed) throw failed;
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
        (await connectRedis(this.url(), { mode: 'cli', name: 'redis-server-probe' })).disconnect();
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
