import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DomainAgent } from '../../lib/agent/index.js';
import { createLogger } from '../../lib/log.js';
import type { Bus } from '../../lib/messaging/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { isTerminal, taskSpecSchema, type TaskRecord, type TaskSpecInput } from '../../lib/task.js';
import { conversationRequests, ModelServer, echoScenario } from '../fixtures/model-server.js';
import type { RecordedRequest, Turn } from '../fixtures/model-server.js';
import { repoRoot } from './cli.js';
import { DanProcess } from './dan-process.js';
import { LogCapture } from './log-capture.js';
import { eventually, openNetwork, testConfig, type TestNetwork } from './network.js';
import { killQuietly, processesIn } from './processes.js';
import { waitForTask } from './wait-for-task.js';

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const API_KEY = 'sk-ant-api03-harness-000000000000000000000000000';

/**
 * A small world for fault tests of the agent's task path: its own network and workspace, a scripted model server
 * (the real claude binary talks to it) and in-process DomainAgents. `gate()` makes the model hold its first
 * answer until the test opens it, so a test can break something while a task is active. `close()` stops it all.
 */
export class AgentHarness {
  script: (req: RecordedRequest) => Turn | Promise<Turn> = echoScenario();
  readonly agents: DomainAgent[] = [];
  readonly children: DanProcess[] = [];
  readonly logs = new LogCapture();

  private constructor(
    readonly net: TestNetwork,
    readonly server: ModelServer,
    readonly workspace: string,
    private readonly settings: Record<string, string>,
  ) {}

  static async create(label: string, settings: Record<string, string> = {}, redisUrl?: string): Promise<AgentHarness> {
    const workspace = await realpath(await mkdtemp(path.join(os.tmpdir(), `dan-${label}-ws-`)));
    const all = { DAN_WORKSPACE: workspace, DAN_CLAUDE_BIN: CLAUDE_BIN, DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '1500', DAN_REAPER_MS: '200', ...settings, ...(redisUrl ? { REDIS_URL: redisUrl } : {}) };
    const net = await openNetwork(all, label);
    let harness: AgentHarness | undefined;
    const server = await ModelServer.start({ script: (req) => harness!.script(req) });
    harness = new AgentHarness(net, server, workspace, all);
    return harness;
  }

  get bus(): Bus {
    return this.net.bus;
  }

  registry(): AgentRegistry {
    return new AgentRegistry(this.bus.redis, this.bus.keys, { heartbeatTtlMs: this.net.config.heartbeatTtlMs });
  }

  /** The model holds its answers until the returned function is called; then it answers as `then` says. */
  gate(then = echoScenario()): () => void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.script = async (req) => {
      await opened;
      return then(req);
    };
    return open;
  }

  async modelCalled(count = 1): Promise<void> {
    await eventually(() => conversationRequests(this.server.requests).length >= count, { what: 'the model to be called', timeoutMs: 30_000 });
  }

  /** `settings`: the agent's DAN_* settings; `claudeEnv`: over the CLI's model variables ('' unsets one). */
  async startAgent(id = `backend-${this.agents.length + 1}`, settings: Record<string, string> = {}, claudeEnv: Record<string, string> = {}): Promise<DomainAgent> {
    const config = testConfig(this.net.network, { ...this.settings, ...settings });
    const agent = await DomainAgent.start({
      config,
      domain: 'backend',
      agentId: id,
      env: { ANTHROPIC_BASE_URL: this.server.url, ANTHROPIC_API_KEY: API_KEY, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir(), ...claudeEnv },
      logger: createLogger({ level: 'debug', destination: this.logs }),
    });
    this.agents.push(agent);
    return agent;
  }

  /** `dan agent --domain backend` as a child process (one a test can SIGKILL); resolves once it has registered. */
  async spawnAgent(id: string): Promise<DanProcess> {
    const env = {
      ...this.settings,
      ANTHROPIC_BASE_URL: this.server.url,
      ANTHROPIC_API_KEY: API_KEY,
      REDIS_URL: this.net.config.redisUrl,
      DAN_NETWORK: this.net.network,
      DAN_LOG_LEVEL: 'info',
    };
    const child = DanProcess.start(['agent', '--domain', 'backend', '--id', id], env);
    this.children.push(child);
    await eventually(async () => (await this.registry().ids()).includes(id), { what: `agent ${id} to register`, timeoutMs: 20_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${child.lines.join('\n')}`);
    });
    return child;
  }

  async submit(description = 'say hi', spec: Partial<TaskSpecInput> = {}): Promise<TaskRecord> {
    return this.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 60, maxAttempts: 3, ...spec }));
  }

  waitFor(id: string, check: (r: TaskRecord) => boolean, what: string, timeoutMs = 40_000): Promise<TaskRecord> {
    return waitForTask(this.bus, id, check, { what, timeoutMs });
  }

  waitForEnd(id: string, timeoutMs?: number): Promise<TaskRecord> {
    return this.waitFor(id, (r) => isTerminal(r.status), 'the task to end', timeoutMs);
  }

  async close(): Promise<void> {
    for (const agent of this.agents) await agent.stop('stopped', { graceMs: 0 }).catch(() => {});
    for (const child of this.children) await child.stop(5_000).catch(() => {});
    for (const pid of await processesIn(this.workspace)) killQuietly(pid);
    await this.server.close();
    await this.net.cleanup();
    await rm(this.workspace, { recursive: true, force: true });
    await rm(path.join(os.tmpdir(), 'dan', this.net.network), { recursive: true, force: true });
  }
}
