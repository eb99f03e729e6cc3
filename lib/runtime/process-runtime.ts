import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot, type DanConfig } from '../config.js';
import { AGENT_TAG, killTagged } from '../executor/index.js';
import { secretsLine, SECRETS_FROM_STDIN, SECRETS_VARIABLE } from '../secrets.js';
import { silentLogger, type Logger } from '../log.js';
import type { AgentHandle, AgentSpec, Runtime, StopOptions } from './runtime.js';
import { LineBuffer } from './line-buffer.js';
import { RuntimeError } from './runtime-errors.js';

/** The parts of the configuration the process runtime uses. */
export type ProcessRuntimeConfig = Pick<DanConfig, 'network' | 'redisUrl' | 'workspace'>;

export interface ProcessRuntimeOptions {
  /**
   * The command line that starts an agent, `[file, ...args]`, or a function of the spec returning one.
   * @default `[process.execPath, <package>/dist/bin/dan.js, ...danArgs(spec)]`
   */
  entry?: readonly string[] | ((spec: AgentSpec) => readonly string[]);
  /** Working directory of agents; created if missing. @default config.workspace */
  cwd?: string;
  /** The parent's environment (`bin/` passes `process.env`); only the names in `inherit` are taken from it. @default {} */
  parentEnv?: Readonly<Record<string, string | undefined>>;
  /** Variables passed from `parentEnv` to agents, under the spec's env. @default ['PATH', 'HOME'] */
  inherit?: readonly string[];
  /** Output lines kept per agent for `logs`. @default 1000 */
  logLines?: number;
  /** When set, each agent's output is also appended to `<logDir>/<agentId>.log`. */
  logDir?: string;
  /** Lines `logs` returns when no tail is asked. @default 200 */
  logTail?: number;
  /** How long `remove` waits for a killed process to be reaped. @default 5000 */
  killWaitMs?: number;
  logger?: Logger;
}

/** The dan subcommand an agent of this spec runs: `orchestrator`, `agent --domain <domain>`, or `planner`. */
export function danArgs(spec: AgentSpec): string[] {
  if (spec.role === 'planner') return ['planner'];
  return spec.role === 'main' ? ['orchestrator'] : ['agent', '--domain', spec.domain];
}

interface Child {
  spec: AgentSpec;
  process: ChildProcess;
  pid: number;
  running: boolean;
  exited: Promise<void>;
  output: LineBuffer;
  file: WriteStream | undefined;
  /** Stdout, line by line, for {@link ProcessRuntime.output}: kept until a follower comes, then handed to it. */
  stdout: StdoutLines;
  exitCode: number | null;
}

/** A child's stdout split into lines, buffered until someone follows it. */
class StdoutLines {
  private partial = '';
  private pending: string[] = [];
  private follower: ((line: string) => void) | undefined;
  private endedResolve!: () => void;
  readonly ended = new Promise<void>((resolve) => (this.endedResolve = resolve));

  constructor(private readonly maxPending: number) {}

  write(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.emit(line.replace(/\r$/, ''));
  }

  end(): void {
    if (this.partial) this.emit(this.partial);
    this.partial = '';
    this.endedResolve();
  }

  follow(onLine: (line: string) => void): void {
    this.follower = onLine;
    for (const line of this.pending.splice(0)) onLine(line);
  }

  private emit(line: string): void {
    if (this.follower) this.follower(line);
    else if (this.pending.length < this.maxPending) this.pending.push(line);
  }
}

/**
 * Agents as child processes of this process (DESIGN.md, Runtimes: the embedded default without Docker).
 * Each agent is detached into its own process group. An agent behaves like a container: when its main
 * process exits, whatever is left of it is killed: its group, and every process tagged with its id
 * (`DAN_AGENT_ID`, which the CLI it runs and the tools the CLI starts inherit).
 *
 * The network is implicit: an instance knows only the children it started itself (running, or exited and
 * not yet removed); another process's ProcessRuntime cannot see or touch them. `close` keeps agents running,
 * but once this process exits they lose the pipe their output goes to.
 */
export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  private readonly children = new Map<string, Child>();

  constructor(
    private readonly settings: Required<Omit<ProcessRuntimeOptions, 'logger' | 'logDir' | 'entry'>> & {
      entry: (spec: AgentSpec) => readonly string[];
      logDir: string | undefined;
      network: string;
      redisUrl: string;
    },
    private readonly logger: Logger,
  ) {}

  /** Resolves the options and creates the agents' working directory (and the log directory, if any). */
  static async create(config: ProcessRuntimeConfig, options: ProcessRuntimeOptions = {}): Promise<ProcessRuntime> {
    const entry = options.entry;
    const danEntry = path.join(packageRoot(), 'dist', 'bin', 'dan.js');
    const settings = {
      entry:
        typeof entry === 'function'
          ? entry
          : entry
            ? () => entry
            : (spec: AgentSpec) => [process.execPath, danEntry, ...danArgs(spec)],
      cwd: options.cwd ?? config.workspace,
      parentEnv: options.parentEnv ?? {},
      inherit: options.inherit ?? ['PATH', 'HOME'],
      logLines: options.logLines ?? 1000,
      logDir: options.logDir,
      logTail: options.logTail ?? 200,
      killWaitMs: options.killWaitMs ?? 5000,
      network: config.network,
      redisUrl: config.redisUrl,
    };
    await mkdir(settings.cwd, { recursive: true });
    if (settings.logDir) await mkdir(settings.logDir, { recursive: true });
    const logger = (options.logger ?? silentLogger()).child({ component: 'process-runtime', network: config.network });
    return new ProcessRuntime(settings, logger);
  }

  async spawn(spec: AgentSpec): Promise<AgentHandle> {
    if (this.children.has(spec.agentId)) {
      throw new RuntimeError(`agent ${spec.agentId} is already running here`, { details: { agentId: spec.agentId } });
    }
    const [file, ...args] = this.settings.entry(spec);
    if (file === undefined) throw new RuntimeError('the process runtime entry is empty', { details: { agentId: spec.agentId } });
    const child = spawn(file, args, {
      cwd: this.settings.cwd,
      env: this.environment(spec),
      detached: true,
      stdio: [spec.secrets ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    try {
      await once(child, 'spawn');
      if (spec.secrets) {
        // On stdin, not in the environment: /proc/<pid>/environ of the agent shows none of them.
        child.stdin!.on('error', () => {}); // an agent that died at once: its exit says so
        child.stdin!.end(secretsLine(spec.secrets));
      }
    } catch (error) {
      throw new RuntimeError(`cannot start agent ${spec.agentId} (${file}): ${(error as Error).message}`, {
        cause: error,
        details: { agentId: spec.agentId, file },
      });
    }
    const record = this.track(spec, child);
    this.logger.info({ agentId: spec.agentId, pid: record.pid, domain: spec.domain }, 'agent process started');
    return this.handle(record);
  }

  async stop(agentId: string, options: StopOptions = {}): Promise<void> {
    const child = this.children.get(agentId);
    if (!child) return;
    if (child.running) {
      signal(child.pid, 'SIGTERM');
      // Unref'd: a grace timer must not keep this process (`dan up` after `dan down`) alive once the agent is gone.
      const exited = await Promise.race([child.exited.then(() => true), sleep(options.timeoutMs ?? 10_000, false, { ref: false })]);
      if (!exited) {
        this.logger.warn({ agentId, pid: child.pid }, 'agent ignored SIGTERM; killing its process group');
        signal(-child.pid, 'SIGKILL');
        await child.exited;
      }
    }
    signal(-child.pid, 'SIGKILL');
    this.forget(child);
  }

  async remove(agentId: string): Promise<void> {
    const child = this.children.get(agentId);
    if (!child) return;
    signal(-child.pid, 'SIGKILL');
    if (child.running) await Promise.race([child.exited, sleep(this.settings.killWaitMs, undefined, { ref: false })]);
    this.forget(child);
  }

  /** Stops and removes every agent this runtime started. Returns how many there were. */
  async stopAll(options: StopOptions = {}): Promise<number> {
    const ids = [...this.children.keys()];
    await Promise.all(ids.map((id) => this.stop(id, options)));
    return ids.length;
  }

  async list(): Promise<AgentHandle[]> {
    return [...this.children.values()].map((child) => this.handle(child));
  }

  /** Follows the agent's stdout from its start until it exits; resolves with its exit code (null: unknown agent or a signal). */
  async output(agentId: string, onLine: (line: string) => void): Promise<number | null> {
    const child = this.children.get(agentId);
    if (!child) return null;
    child.stdout.follow(onLine);
    await Promise.all([child.exited, child.stdout.ended]);
    return child.exitCode;
  }

  /** The last lines of an agent's stdout and stderr, in the order read; '' for an unknown agent. */
  async logs(agentId: string, options: { tail?: number } = {}): Promise<string> {
    return this.children.get(agentId)?.output.tail(options.tail ?? this.settings.logTail) ?? '';
  }

  /** Stops writing log files and lets this process exit while agents still run. Agents keep running. Safe to call twice. */
  async close(): Promise<void> {
    for (const child of this.children.values()) {
      child.file?.end();
      child.file = undefined;
      child.process.unref();
      for (const stream of [child.process.stdout, child.process.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private environment(spec: AgentSpec): Record<string, string> {
    const inherited: Record<string, string> = {};
    for (const name of this.settings.inherit) {
      const value = this.settings.parentEnv[name];
      if (value !== undefined) inherited[name] = value;
    }
    const env: Record<string, string> = {
      ...inherited,
      // With secrets, the Redis URL is one of them (on stdin); without, the runtime's own.
      ...(spec.secrets ? { [SECRETS_VARIABLE]: SECRETS_FROM_STDIN } : { REDIS_URL: this.settings.redisUrl }),
      DAN_NETWORK: this.settings.network,
      DAN_WORKSPACE: this.settings.cwd,
      ...spec.env,
      AGENT_ID: spec.agentId,
      AGENT_ROLE: spec.role,
      DOMAIN_TYPE: spec.domain,
    };
    // A planner run gets no Redis at all, not even when a caller's env names one: its answer goes back on stdout.
    if (spec.role === 'planner') delete env.REDIS_URL;
    return env;
  }

  private track(spec: AgentSpec, proc: ChildProcess): Child {
    const output = new LineBuffer(this.settings.logLines);
    const file = this.settings.logDir
      ? createWriteStream(path.join(this.settings.logDir, `${spec.agentId}.log`), { flags: 'a' })
      : undefined;
    file?.on('error', (error) => this.logger.warn({ err: error, agentId: spec.agentId }, 'cannot write the agent log file'));
    const stdout = new StdoutLines(this.settings.logLines);
    const record: Child = { spec, process: proc, pid: proc.pid!, running: true, exited: Promise.resolve(), output, file, stdout, exitCode: null };
    proc.on('error', (error) => this.logger.warn({ err: error, agentId: spec.agentId }, 'agent process error'));
    for (const [name, stream] of [['stdout', proc.stdout], ['stderr', proc.stderr]] as const) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        output.write(name, chunk);
        if (name === 'stdout') stdout.write(chunk);
        record.file?.write(chunk);
      });
      stream?.on('end', () => {
        output.end(name);
        if (name === 'stdout') stdout.end();
      });
      stream?.on('close', () => {
        if (name === 'stdout') stdout.end();
      });
    }
    if (!proc.stdout) stdout.end();
    record.exited = new Promise((resolve) => {
      proc.once('exit', (code, signalName) => {
        record.running = false;
        record.exitCode = code;
        this.logger.info({ agentId: spec.agentId, pid: record.pid, code, signal: signalName }, 'agent process exited');
        // As in a container: the agent's end is the end of everything it started. Its own group, and the CLI
        // it ran, which leads a group of its own (and its tools, sessions of their own): an agent killed with
        // SIGKILL could not stop them, and a CLI left running would go on editing the workspace while the
        // task runs again elsewhere. They carry the agent's id in their environment.
        void this.killLeftovers(spec.agentId, record.pid).finally(resolve); // logs its own failure
      });
    });
    this.children.set(spec.agentId, record);
    return record;
  }

  private async killLeftovers(agentId: string, pid: number): Promise<void> {
    try {
      signal(-pid, 'SIGKILL');
      const killed = await killTagged(AGENT_TAG, agentId);
      if (killed > 0) this.logger.warn({ agentId, killed }, 'killed processes the agent left running');
    } catch (error) {
      this.logger.warn({ err: error, agentId }, 'cannot kill what the agent left running');
    }
  }

  private forget(child: Child): void {
    child.file?.end();
    child.file = undefined;
    this.children.delete(child.spec.agentId);
  }

  private handle(child: Child): AgentHandle {
    const { spec } = child;
    return {
      agentId: spec.agentId,
      role: spec.role,
      domain: spec.domain,
      runtime: 'process',
      name: `pid:${child.pid}`,
      ref: String(child.pid),
      running: child.running,
    };
  }
}

/** Sends a signal to a process (or, with a negative pid, its group); one that is already gone is not an error. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
