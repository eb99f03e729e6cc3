import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './cli.js';

/** The stand-in for the claude CLI: valid stream-json after a sleep, directed by its prompt (see its header). */
export const STAND_IN = path.join(repoRoot(), 'tests', 'fixtures', 'stand-in-claude.sh');

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
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-standin-ws-')));
    const standin = path.join(dir, '.standin');
    await mkdir(standin);
    await writeFile(path.join(standin, 'config'), `MIN_MS=${options.minMs ?? 20}\nMAX_MS=${options.maxMs ?? 200}\n`);
    await writeFile(path.join(standin, 'executions.log'), '');
    // The stand-in's own files are not the tasks' work: kept out of the git workspace's commits.
    await writeFile(path.join(dir, '.gitignore'), '.standin/\n');
    if (options.forContainers) {
      await copyFile(STAND_IN, path.join(standin, 'claude'));
      await chmod(path.join(standin, 'claude'), 0o755);
      // Agents run as uid 1000; this test machine's user may be root or anyone else.
      for (const d of [dir, standin]) await chmod(d, 0o777);
      await chmod(path.join(dir, '.gitignore'), 0o666);
      await chmod(path.join(standin, 'executions.log'), 0o666);
    }
    return new StandInWorkspace(dir);
  }

  /** The settings of a `dan` process that runs the stand-in here, on the process runtime. */
  get settings(): { DAN_WORKSPACE: string; DAN_CLAUDE_BIN: string } {
    return { DAN_WORKSPACE: this.dir, DAN_CLAUDE_BIN: STAND_IN };
  }

  /** The settings of an orchestrator whose agent containers run the stand-in here (made `forContainers`). */
  get containerSettings(): { DAN_WORKSPACE: string; DAN_WORKSPACE_VOLUME: string; DAN_AGENT_CLAUDE_BIN: string } {
    return { DAN_WORKSPACE: this.dir, DAN_WORKSPACE_VOLUME: this.dir, DAN_AGENT_CLAUDE_BIN: '/workspace/.standin/claude' };
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

  /** Start time (ms) of each key's first execution. */
  async starts(): Promise<Map<string, number>> {
    const starts = new Map<string, number>();
    for (const e of await this.executions()) if (!starts.has(e.key)) starts.set(e.key, e.startMs);
    return starts;
  }

  /** Runs the stand-in once here with `prompt`, as the executor starts it, reading (and dropping) its output. */
  runCli(prompt: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(STAND_IN, ['-p', '--output-format', 'stream-json', '--verbose', '--', prompt], {
        cwd: this.dir,
        env: { PATH: process.env.PATH ?? '' },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.resume();
      child.stderr.resume();
      child.once('error', reject);
      child.once('exit', () => resolve());
    });
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
