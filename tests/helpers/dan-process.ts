import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { danEntry, repoRoot } from './cli.js';

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

/**
 * A long-running `dan` child process (`dan agent`, `dan orchestrator`, `dan up`), from source through tsx, with
 * its output captured line by line.
 */
export class DanProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = { stdout: '', stderr: '' };

  private constructor(readonly child: ChildProcess) {
    for (const name of ['stdout', 'stderr'] as const) {
      child[name]!.setEncoding('utf8');
      child[name]!.on('data', (chunk: string) => {
        const parts = (this.partial[name] + chunk).split('\n');
        this.partial[name] = parts.pop() ?? '';
        this.lines.push(...parts.filter((l) => l.length > 0));
      });
      // A last line without a newline (a crash message) counts too.
      child[name]!.on('end', () => {
        if (this.partial[name].length > 0) this.lines.push(this.partial[name]);
        this.partial[name] = '';
      });
    }
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * `dan <args>` with exactly `env` (plus PATH and HOME, and DAN_ENV_FILE empty unless `env` names a file: a
   * user's `.env` in the repository, the child's working directory, is not the test's), working directory the
   * repository unless `cwd` says otherwise.
   */
  static start(args: string[], env: Record<string, string>, cwd = repoRoot()): DanProcess {
    const [node, ...rest] = danEntry();
    const child = spawn(node!, [...rest, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir(), DAN_ENV_FILE: '', ...env },
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

  /** Everything it has written so far. */
  text(): string {
    return this.lines.join('\n');
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }
}
