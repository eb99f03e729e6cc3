import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it as base } from 'vitest';
import { createLogger } from '../../lib/log.js';
import type { Bus } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { AgentRegistry, type AgentRecord } from '../../lib/registry/index.js';
import { ProcessRuntime, danArgs } from '../../lib/runtime/index.js';
import { isTerminal, taskSpecSchema, type LogEntry, type TaskRecord, type TaskSpecInput } from '../../lib/task.js';
import { ModelServer, writeFileScenario, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { danEntry, repoRoot } from './cli.js';
import { DanProcess } from './dan-process.js';
import { LogCapture } from './log-capture.js';
import { eventually, openNetwork, testConfig, type TestNetwork } from './network.js';
import { isDanProcess, killQuietly, processesIn } from './processes.js';
import { describeTask, waitForTask } from './wait-for-task.js';

/**
 * The world of an orchestrator test, end to end: real Orchestrators (in this process, or `dan orchestrator` and
 * `dan up` as children) spawn real `dan agent` processes on the process runtime, which run the real claude
 * binary against a scripted model server and Redis. Nothing is mocked.
 */

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const API_KEY = 'sk-ant-api03-world-test-0000000000000000000000000';

/** How the model answers a request (a scripted turn, or one the test awaits). */
export type ModelScript = (req: RecordedRequest) => Turn | Promise<Turn>;

export interface WorldOptions {
  /** Names the network (`dan-<label>-…`) and the workspace folder. */
  label: string;
  /** Settings of every process of the world, as environment variables: its liveness timings above all. */
  settings: Record<string, string>;
  /** How long `waitFor` waits when the test does not say. */
  waitTimeoutMs: number;
}

/** What `World.create` made: the world's dependencies. */
export interface WorldParts {
  net: TestNetwork;
  server: ModelServer;
  workspace: string;
  /** The settings of the world's processes, the workspace and the claude binary included. */
  settings: Record<string, string>;
  waitTimeoutMs: number;
}

/**
 * One test's world: its own network (key prefix), workspace, model server, orchestrators and `dan` children.
 * The model answers with `script`, which a test may swap at any time; `close()` stops all of it, and every
 * process the test's orchestrators started (agents of a SIGKILLed orchestrator child included), even when the
 * test failed.
 */
export class World {
  script: ModelScript = writeFileScenario();
  readonly orchestrators: Orchestrator[] = [];
  readonly runtimes: ProcessRuntime[] = [];
  readonly children: DanProcess[] = [];
  readonly logs = new LogCapture();
  readonly net: TestNetwork;
  readonly server: ModelServer;
  readonly workspace: string;
  private readonly settings: Record<string, string>;
  private readonly waitTimeoutMs: number;

  constructor(parts: WorldParts) {
    this.net = parts.net;
    this.server = parts.server;
    this.workspace = parts.workspace;
    this.settings = parts.settings;
    this.waitTimeoutMs = parts.waitTimeoutMs;
  }

  /** A world of this class (`World` or a test's own subclass), with its network, workspace and model server. */
  static async create<W extends World>(this: new (parts: WorldParts) => W, options: WorldOptions): Promise<W> {
    // The real path: it is what /proc shows as a process's working directory.
    const workspace = await realpath(await mkdtemp(path.join(os.tmpdir(), `dan-${options.label}-ws-`)));
    const settings = { DAN_WORKSPACE: workspace, DAN_CLAUDE_BIN: CLAUDE_BIN, DAN_LOG_LEVEL: 'info', ...options.settings };
    const net = await openNetwork(settings, options.label);
    let world: W | undefined;
    const server = await ModelServer.start({ script: (req) => world!.script(req) });
    world = new this({ net, server, workspace, settings, waitTimeoutMs: options.waitTimeoutMs });
    return world;
  }

  get bus(): Bus {
    return this.net.bus;
  }

  /** What the claude CLI needs, passed through the orchestrator to its agents. */
  get modelEnv(): Record<string, string> {
    return { ANTHROPIC_BASE_URL: this.server.url, ANTHROPIC_API_KEY: API_KEY, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' };
  }

  /** The environment of a `dan` child on this network. */
  danEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.modelEnv,
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.homedir(),
      REDIS_URL: this.net.config.redisUrl,
      DAN_NETWORK: this.net.network,
      ...this.settings,
      ...extra,
    };
  }

  /**
   * An orchestrator in this process, on the process runtime, spawning real `dan agent` children. `settings`
   * go on top of the world's; `env` is its own environment, which its planner and the agents it spawns get the
   * model variables from (default: the scripted model).
   */
  async startOrchestrator(id: string, options: { settings?: Record<string, string>; env?: Record<string, string> } = {}): Promise<Orchestrator> {
    const config = testConfig(this.net.network, { ...this.settings, ...options.settings });
    const logger = createLogger({ level: 'info', destination: this.logs }).child({ orchestrator: id });
    const runtime = await ProcessRuntime.create(config, { entry: (spec) => [...danEntry(), ...danArgs(spec)], parentEnv: process.env, logger });
    this.runtimes.push(runtime);
    const orchestrator = await Orchestrator.start({ config, runtime, logger, env: options.env ?? this.modelEnv, id });
    this.orchestrators.push(orchestrator);
    return orchestrator;
  }

  /** `dan <args>` as a long-running child (an orchestrator, `dan up`). */
  spawnDan(args: string[], extra: Record<string, string> = {}, cwd?: string): DanProcess {
    const child = DanProcess.start(args, this.danEnv(extra), cwd);
    this.children.push(child);
    return child;
  }

  /** Resolves once `child`, started as `id`, holds the leader lease; the error carries its output. */
  async leads(child: DanProcess, id: string, timeoutMs: number): Promise<void> {
    await eventually(async () => (await this.bus.redis.get(this.bus.keys.leader)) === id, { what: `${id} to lead`, timeoutMs }).catch((error: Error) => {
      throw new Error(`${error.message}\n${child.text()}`);
    });
  }

  registry(): AgentRegistry {
    return new AgentRegistry(this.bus.redis, this.bus.keys, { heartbeatTtlMs: this.net.config.heartbeatTtlMs });
  }

  /** Live (registered, heartbeating) domain agents. */
  async liveAgents(domain?: string): Promise<AgentRecord[]> {
    return (await this.registry().list()).filter((a) => a.role === 'domain' && a.alive && (domain === undefined || a.domain === domain));
  }

  async submit(description: string, spec: Partial<TaskSpecInput> = {}): Promise<TaskRecord> {
    return this.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 60, maxAttempts: 3, ...spec }));
  }

  /** Waits until the task's record satisfies `check`; the error says where the task and the processes are. */
  async waitFor(id: string, check: (r: TaskRecord) => boolean, what = 'the task', timeoutMs = this.waitTimeoutMs): Promise<TaskRecord> {
    return waitForTask(this.bus, id, check, { what, timeoutMs, context: async () => `${await this.describe(id)}\n${this.recentLogs()}` });
  }

  waitForEnd(id: string, timeoutMs?: number): Promise<TaskRecord> {
    return this.waitFor(id, (r) => isTerminal(r.status), `task ${id} to end`, timeoutMs);
  }

  async entries(id: string): Promise<LogEntry[]> {
    return (await this.bus.logs.history(id)).map((e) => e.entry);
  }

  /** A task as it stands: context for a failure message. */
  describe(id: string): Promise<string> {
    return describeTask(this.bus, id);
  }

  /** The tail of what the orchestrators and `dan` children logged: context for a failure message. */
  recentLogs(): string {
    return [...this.logs.lines.slice(-15), ...this.children.flatMap((c) => c.lines.slice(-10))].join('\n');
  }

  async close(): Promise<void> {
    for (const orchestrator of this.orchestrators) await orchestrator.stop('down').catch(() => {});
    for (const runtime of this.runtimes) await runtime.stopAll({ timeoutMs: 2000 }).catch(() => {});
    for (const child of this.children) {
      child.kill('SIGKILL');
      await child.exited;
    }
    // Agents an orchestrator child started outlive it when it is SIGKILLed: end them by the pids they registered.
    for (const agent of await this.registry().list().catch(() => [])) {
      if (agent.pid && isDanProcess(agent.pid)) killQuietly(agent.pid);
    }
    for (const pid of await processesIn(this.workspace)) killQuietly(pid);
    await this.server.close();
    await this.net.cleanup();
    await rm(this.workspace, { recursive: true, force: true });
    await rm(path.join(os.tmpdir(), 'dan', this.net.network), { recursive: true, force: true });
  }
}

/** Something a test opens and must close, whether it passed or not. */
export interface Closable {
  close(): Promise<void>;
}

/** A vitest `it` whose tests get a fresh world from `open` as their `w` fixture, closed after each test even when it failed. */
export function itWith<W extends Closable>(open: () => Promise<W>) {
  return base.extend<{ w: W }>({
    w: async ({}, use) => {
      const world = await open();
      try {
        await use(world);
      } finally {
        await world.close();
      }
    },
  });
}
