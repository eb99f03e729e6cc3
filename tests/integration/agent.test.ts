import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { DomainAgent } from '../../lib/agent/index.js';
import { createLogger } from '../../lib/log.js';
import { releaseAgentTasks } from '../../lib/orchestrator/release-tasks.js';
import { AgentRegistry, Reaper } from '../../lib/registry/index.js';
import type { Bus } from '../../lib/messaging/index.js';
import { isTerminal, taskSpecSchema, type LogEntry, type TaskRecord, type TaskSpecInput } from '../../lib/task.js';
import {
  conversationRequests,
  DELEGATION_MARKER,
  delegateScenario,
  echoScenario,
  isSubagentRequest,
  ModelServer,
  offeredAgentTypes,
  writeFileScenario,
  type TurnChooser,
} from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { DanProcess } from '../helpers/dan-process.js';
import { LogCapture } from '../helpers/log-capture.js';
import { eventually, openNetwork, testConfig, type TestNetwork } from '../helpers/network.js';
import { killQuietly, processesIn } from '../helpers/processes.js';
import { waitForTask } from '../helpers/wait-for-task.js';
import { itWith } from '../helpers/world.js';

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const API_KEY = 'sk-ant-api03-test-0000000000000000000000000000';
/** Every agent of these tests: the real CLI, short liveness timings. */
const AGENT_ENV = { DAN_CLAUDE_BIN: CLAUDE_BIN, DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '1200', DAN_REAPER_MS: '200' };

/** A `dan agent` child process and the id it registers under. */
type ChildAgent = DanProcess & { readonly id: string };

/**
 * One test's world: its own network (key prefix), workspace, model server and agents. The model answers with
 * `script`, which a test may swap at any time; `close()` stops everything even when the test failed.
 */
class Harness {
  script: TurnChooser = writeFileScenario();
  readonly agents: DomainAgent[] = [];
  readonly children: DanProcess[] = [];
  readonly logs = new LogCapture();
  private readonly dirs: string[] = [];

  private constructor(
    readonly net: TestNetwork,
    readonly server: ModelServer,
    readonly workspace: string,
  ) {}

  static async create(): Promise<Harness> {
    // The real path: it is what /proc shows as a process's working directory.
    const workspace = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-agent-ws-')));
    const net = await openNetwork({ DAN_WORKSPACE: workspace, ...AGENT_ENV }, 'agent');
    let harness: Harness | undefined;
    const server = await ModelServer.start({ script: (req) => harness!.script(req) });
    harness = new Harness(net, server, workspace);
    // The agents' CLI config dirs live under <tmp>/dan/<network>/ (a killed agent leaves its own behind).
    harness.dirs.push(workspace, path.join(os.tmpdir(), 'dan', net.network));
    return harness;
  }

  get bus(): Bus {
    return this.net.bus;
  }

  /** What the CLI needs from the agent's environment. */
  get claudeEnv(): Record<string, string> {
    return { ANTHROPIC_BASE_URL: this.server.url, ANTHROPIC_API_KEY: API_KEY, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir() };
  }

  /** The environment of a `dan` process on this network. */
  danEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.claudeEnv,
      REDIS_URL: this.net.config.redisUrl,
      DAN_NETWORK: this.net.network,
      DAN_WORKSPACE: this.workspace,
      DAN_LOG_LEVEL: 'info',
      ...AGENT_ENV,
      ...extra,
    };
  }

  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `dan-agent-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** A domain agent in this process. */
  /** `env`: settings of the agent; `claudeEnv`: over the CLI's model variables ('' unsets one). */
  async startAgent(options: { domain?: string; id?: string; env?: Record<string, string>; claudeEnv?: Record<string, string> } = {}): Promise<DomainAgent> {
    const domain = options.domain ?? 'backend';
    const config = testConfig(this.net.network, { DAN_WORKSPACE: this.workspace, ...AGENT_ENV, ...options.env });
    const agent = await DomainAgent.start({
      config,
      domain,
      agentId: options.id ?? `${domain}-${this.agents.length + 1}`,
      env: { ...this.claudeEnv, ...options.claudeEnv },
      logger: createLogger({ level: 'debug', destination: this.logs }),
    });
    this.agents.push(agent);
    return agent;
  }

  /** `dan agent --domain <domain>` as a child process; resolves once it has registered. */
  async spawnAgent(id: string, extra: Record<string, string> = {}, domain = 'backend'): Promise<ChildAgent> {
    const agent: ChildAgent = Object.assign(DanProcess.start(['agent', '--domain', domain, '--id', id], this.danEnv(extra)), { id });
    this.children.push(agent);
    await eventually(async () => (await this.registry().ids()).includes(id), { what: `agent ${id} to register`, timeoutMs: 20_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${agent.text()}`);
    });
    return agent;
  }

  /** The registry as the orchestrator sees it, through the test's connection. */
  registry(): AgentRegistry {
    return new AgentRegistry(this.bus.redis, this.bus.keys, { heartbeatTtlMs: this.net.config.heartbeatTtlMs });
  }

  async submit(description: string, spec: Partial<TaskSpecInput> = {}): Promise<TaskRecord> {
    return this.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 60, maxAttempts: 3, ...spec }));
  }

  /** Waits until the task's record satisfies `check`. */
  async waitFor(id: string, check: (r: TaskRecord) => boolean, what = 'the task', timeoutMs = 40_000): Promise<TaskRecord> {
    return waitForTask(this.bus, id, check, { what, timeoutMs });
  }

  waitForEnd(id: string, timeoutMs?: number): Promise<TaskRecord> {
    return this.waitFor(id, (r) => isTerminal(r.status), 'the task to end', timeoutMs);
  }

  async entries(id: string): Promise<LogEntry[]> {
    return (await this.bus.logs.history(id)).map((e) => e.entry);
  }

  async close(): Promise<void> {
    for (const agent of this.agents) await agent.stop('stopped', { graceMs: 0 }).catch(() => {});
    for (const child of this.children) {
      child.kill('SIGKILL');
      await child.exited;
    }
    for (const pid of await processesIn(this.workspace)) killQuietly(pid);
    await this.server.close();
    await this.net.cleanup();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

const it = itWith(() => Harness.create());

/** A script whose first conversation turn never answers (the first attempt hangs); later turns use `then`. */
function hangFirst(then: TurnChooser = writeFileScenario()): TurnChooser {
  let calls = 0;
  return (req) => (calls++ === 0 ? { hang: true } : then(req));
}

/** Resolves once the CLI has sent `count` conversation turns to the model: the run is under way. */
async function modelCalled(w: Harness, count = 1): Promise<void> {
  await eventually(() => conversationRequests(w.server.requests).length >= count, { what: 'the model to be called', timeoutMs: 30_000 });
}

const statusTrail = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);

describe('domain agent with the real claude CLI', () => {
  it('completes a task whose model writes a file, with the whole run in the log', async ({ w }) => {
    const agent = await w.startAgent();
    const task = await w.submit('Create the file hello.txt saying hi');
    const done = await w.waitForEnd(task.id);

    expect(done).toMatchObject({ status: 'completed', attempts: 1, agent: agent.id });
    expect(done.result).toContain('Done: wrote hello.txt');
    expect(done.turns).toBe(2);
    expect(done.costUsd).toBeGreaterThan(0);
    expect(done.usage?.input_tokens).toBeGreaterThan(0);
    expect(await readFile(path.join(w.workspace, 'hello.txt'), 'utf8')).toContain('Create the file hello.txt saying hi');

    const entries = await w.entries(task.id);
    const run = entries.filter((e) => ['init', 'assistant', 'tool_use', 'tool_result', 'result', 'status'].includes(e.type));
    expect(run.map((e) => (e.type === 'status' ? `status:${e.status}` : e.type))).toEqual([
      'status:queued',
      'status:active',
      'init',
      'assistant',
      'tool_use',
      'tool_result',
      'assistant',
      'result',
      'status:completed',
    ]);
    expect(entries.at(-1)).toMatchObject({ type: 'status', status: 'completed', agent: agent.id });
    expect(run.find((e) => e.type === 'tool_use')).toMatchObject({ agent: agent.id, data: { tool: 'Write' } });
  });

  it("gives the model the domain's CLAUDE.md and workers, and a delegation reaches api-worker as a subagent", async ({ w }) => {
    const templates = path.join(repoRoot(), 'agents', 'domain-templates', 'backend');
    const instructions = await readFile(path.join(templates, 'CLAUDE.md'), 'utf8');
    const apiWorker = await readFile(path.join(templates, '.claude', 'agents', 'api-worker.md'), 'utf8');
    w.script = delegateScenario({ workerBody: apiWorker });
    await w.startAgent();
    const task = await w.submit('Create the file api.md describing the API');
    const done = await w.waitForEnd(task.id, 60_000);
    expect(done.status).toBe('completed');
    expect(done.result).toContain('Delegated to api-worker');

    const turns = conversationRequests(w.server.requests);
    const main = turns.filter((r) => !isSubagentRequest(r, apiWorker));
    const instructionLine = 'You are the **backend** agent of a dan network';
    expect(instructions).toContain(instructionLine);
    expect(main[0]!.reminders + main[0]!.system).toContain(instructionLine);
    expect(offeredAgentTypes(main[0]!)).toEqual(expect.arrayContaining(['api-worker', 'db-worker', 'auth-worker']));

    const delegated = turns.filter((r) => isSubagentRequest(r, apiWorker));
    expect(delegated.length).toBeGreaterThan(0);
    expect(delegated[0]!.prompt.startsWith(DELEGATION_MARKER)).toBe(true);
    expect(delegated[0]!.prompt).toContain('Create the file api.md describing the API');
    expect(await readFile(path.join(w.workspace, 'api.md'), 'utf8')).toContain('Written by');

    const entries = await w.entries(task.id);
    expect(entries.find((e) => e.type === 'init')?.data?.agents).toEqual(expect.arrayContaining(['api-worker', 'db-worker', 'auth-worker']));
    expect(entries.some((e) => e.type === 'tool_use' && e.data?.tool === 'Agent' && e.text.includes('api-worker'))).toBe(true);
  });

  it('ends a task timed_out when the model hangs past its timeout, leaving no claude process behind', { timeout: 150_000 }, async ({ w }) => {
    w.script = () => ({ hang: true });
    await w.startAgent();
    // The timeout counts from the CLI's start: on a busy 2-core machine the CLI has taken over 10 s to send its
    // first turn, and a run that times out before the model is called proves nothing about a hanging model.
    const task = await w.submit('Create the file slow.txt', { timeoutS: 30 });
    await modelCalled(w);
    expect((await processesIn(w.workspace)).length).toBeGreaterThan(0);

    const done = await w.waitForEnd(task.id, 90_000);
    expect(done.status).toBe('timed_out');
    expect(done.error).toMatch(/timed out after 30000 ms/);
    // The CLI's whole tree is killed (its MCP server too); a SIGKILLed process can still be in /proc a moment.
    await eventually(async () => (await processesIn(w.workspace)).length === 0, { what: 'no process left in the workspace', timeoutMs: 15_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${(await processesIn(w.workspace)).join(', ')}`);
    });
    expect(statusTrail(await w.entries(task.id))).toEqual(['queued', 'active', 'timed_out']);
  });

  it('cancels an active task through its control channel', async ({ w }) => {
    w.script = hangFirst();
    const agent = await w.startAgent();
    const task = await w.submit('Create the file never.txt');
    await modelCalled(w);

    expect(await w.bus.cancel(task.id, 'changed my mind')).toEqual({ outcome: 'requested', agent: agent.id });
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'cancelled', attempts: 1, agent: agent.id, reason: 'changed my mind', error: 'changed my mind' });
    expect(await processesIn(w.workspace)).toEqual([]);
    const entries = await w.entries(task.id);
    expect(entries.some((e) => e.type === 'info' && e.text === 'cancel requested: changed my mind')).toBe(true);
    expect(statusTrail(entries)).toEqual(['queued', 'active', 'cancelled']);
    expect(entries.at(-1)).toMatchObject({ type: 'status', status: 'cancelled', text: 'cancelled: changed my mind', agent: agent.id });

    // The agent goes on serving.
    const next = await w.submit('Create the file after.txt');
    expect((await w.waitForEnd(next.id)).status).toBe('completed');
  });

  it("runs a task on its own --model and effort, and records the model that ran", async ({ w }) => {
    await w.startAgent();
    const task = await w.submit('Create the file modelled.txt', { model: 'scripted-model-z', effort: 'low' });
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', model: 'scripted-model-z', effort: 'low', modelUsed: 'scripted-model-z' });
    const models = conversationRequests(w.server.requests).map((q) => q.model);
    expect(models.length).toBeGreaterThan(0);
    expect(models.every((m) => m === 'scripted-model-z')).toBe(true);
  });

  it('fails a task whose run spends its budget, with reason budget and the cost, without a retry', async ({ w }) => {
    await w.startAgent();
    const task = await w.submit('Create the file costly.txt', { budgetUsd: 0.000001 });
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'failed', reason: 'budget', budgetUsd: 0.000001, attempts: 1 });
    expect(done.costUsd).toBeGreaterThan(0.000001);
    expect(done.error).toMatch(/budget of \$0\.000001 is spent/);
  });

  it('puts a task whose run ended on a usage limit back on its queue, no attempt used, and pauses until the reset the CLI printed', async ({ w }) => {
    const resetsAt = Date.UTC(2030, 0, 1);
    w.script = () => ({
      status: 429,
      errorType: 'rate_limit_error',
      message: 'usage limit',
      headers: { 'anthropic-ratelimit-unified-status': 'rejected', 'anthropic-ratelimit-unified-reset': String(resetsAt / 1000), 'anthropic-ratelimit-unified-representative-claim': 'five_hour', 'retry-after': '30' },
    });
    await w.startAgent({ claudeEnv: { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-agent-test-token' } });
    const task = await w.submit('Create the file limited.txt');
    const back = await w.waitFor(task.id, (r) => r.status === 'queued' && r.attempts === 0 && /usage limit/.test(r.reason ?? ''), 'the task back on its queue');
    // No subscription token index (no pool): the network pauses. A reset years ahead is believed for a week at most.
    expect(back.reason).toMatch(/^the network hit a usage limit: paused until \d\d:\d\d UTC \(usage limit\); the task waits, no attempt used$/);
    const [pause] = await w.bus.gate.pauses();
    expect(pause).toMatchObject({ scope: 'network', kind: 'usage_limit' });
    expect(pause!.untilMs).toBeLessThanOrEqual(Date.now() + 7 * 86_400_000);
    expect(pause!.message).toMatch(/^You've hit your session limit/);
    const result = (await w.entries(task.id)).find((e) => e.type === 'result');
    expect(result?.text).toMatch(/session limit/);
  });

  it('fails a task whose token the API rejects (401) with a clear reason', async ({ w }) => {
    w.script = () => ({ status: 401, errorType: 'authentication_error', message: 'OAuth token has expired or been revoked' });
    await w.startAgent({ claudeEnv: { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-agent-test-revoked' } });
    const task = await w.submit('Create the file rejected.txt');
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'failed', reason: 'unauthorized' });
    expect(done.error).toMatch(/^the API rejected the credential \(401\): Failed to authenticate/);
  });

  it("fails a task with the API's message when the model answers HTTP 400", async ({ w }) => {
    w.script = () => ({ status: 400, message: 'scripted: max_tokens must be at most 8192 in this test' });
    await w.startAgent();
    const task = await w.submit('Create the file bad.txt');
    const done = await w.waitForEnd(task.id);
    expect(done.status).toBe('failed');
    expect(done.error).toContain('scripted: max_tokens must be at most 8192 in this test');
    expect(done.attempts).toBe(1);
  });

  it('survives garbage on the CLI’s stdout, logs it raw, completes, and serves the next task', async ({ w }) => {
    const dir = await w.tempDir('fake-claude');
    const bin = path.join(dir, 'claude');
    const result = JSON.stringify({ type: 'result', subtype: 'success', is_error: false, num_turns: 1, result: 'fake claude done', total_cost_usd: 0.001, usage: { input_tokens: 3, output_tokens: 4 }, session_id: 'fake' });
    await writeFile(
      bin,
      [
        '#!/bin/sh',
        "echo 'this line is not JSON'",
        "echo '{\"type\":\"mystery\",\"x\":1}'",
        "echo '{\"broken\": '",
        "echo '{\"type\":\"assistant\",\"message\":\"not an object\"}'",
        "printf '\\001\\002\\377 binary junk\\n'",
        "head -c 100000 /dev/zero | tr '\\0' x; echo",
        'echo',
        `echo '${result}'`,
        'exit 0',
      ].join('\n'),
      { mode: 0o755 },
    );
    const agent = await w.startAgent({ env: { DAN_CLAUDE_BIN: bin } });
    const first = await w.submit('first garbage task');
    const second = await w.submit('second garbage task');
    for (const id of [first.id, second.id]) {
      const done = await w.waitForEnd(id);
      expect(done).toMatchObject({ status: 'completed', result: 'fake claude done', agent: agent.id, turns: 1 });
    }
    const raw = (await w.entries(first.id)).filter((e) => e.type === 'raw').map((e) => e.text);
    expect(raw).toEqual(expect.arrayContaining(['this line is not JSON', '{"type":"mystery","x":1}', '{"broken":']));
    expect(raw.length).toBeGreaterThanOrEqual(5);
    expect(raw.every((t) => t.length <= 2100)).toBe(true);
    expect(await w.registry().ids()).toContain(agent.id);
  });

  it('puts the task of a SIGKILLed agent back on the queue, and a second agent completes it exactly once', { timeout: 90_000 }, async ({ w }) => {
    w.script = hangFirst();
    const first = await w.spawnAgent('backend-killed');
    const task = await w.submit('Create the file survivor.txt');
    await modelCalled(w);
    await w.waitFor(task.id, (r) => r.status === 'active' && r.agent === first.id);

    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // The container of a dead agent goes with everything in it; here its CLI is an orphan: end it as docker would.
    for (const pid of await processesIn(w.workspace)) killQuietly(pid);

    // The orchestrator's reaper, as `dan orchestrator` runs it.
    const registry = w.registry();
    const reaped: string[] = [];
    const reaper = new Reaper(registry).onReap(async (agent) => {
      reaped.push(agent.id);
      await releaseAgentTasks(w.bus, agent, 'stopped heartbeating');
    });
    const reaping = setInterval(() => void reaper.reapOnce().catch(() => {}), w.net.config.reaperMs);
    try {
      const requeued = await w.waitFor(task.id, (r) => r.status === 'queued', 'the reaper to requeue the task', 20_000);
      expect(requeued.reason).toMatch(/back on the queue/);
      expect(reaped).toEqual([first.id]);
      expect((await registry.get(first.id))?.status).toBe('dead');

      const second = await w.startAgent({ id: 'backend-second' });
      const done = await w.waitForEnd(task.id);
      expect(done).toMatchObject({ status: 'completed', attempts: 2, agent: second.id });
      expect(await readFile(path.join(w.workspace, 'survivor.txt'), 'utf8')).toContain('survivor.txt');
    } finally {
      clearInterval(reaping);
    }

    const entries = await w.entries(task.id);
    expect(statusTrail(entries)).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    const back = entries.find((e) => e.type === 'status' && e.status === 'queued' && e.agent === first.id);
    expect(back?.text).toBe(`agent ${first.id} stopped heartbeating during attempt 1 of 3; back on the queue`);
    expect(entries.filter((e) => e.type === 'status' && e.status === 'completed')).toHaveLength(1);
    expect(entries.filter((e) => e.type === 'result')).toHaveLength(1);
  });

  it('on SIGTERM hands the running task back to the queue, exits 0 and deregisters; another agent completes it', { timeout: 90_000 }, async ({ w }) => {
    w.script = hangFirst();
    const first = await w.spawnAgent('backend-terminated', { DAN_SHUTDOWN_GRACE_MS: '300' });
    const task = await w.submit('Create the file handed-over.txt');
    await modelCalled(w);
    await w.waitFor(task.id, (r) => r.status === 'active' && r.agent === first.id);

    first.child.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit, first.text()).toEqual({ code: 0, signal: null });
    const requeued = await w.bus.tasks.get(task.id);
    expect(requeued).toMatchObject({ status: 'queued', attempts: 1, reason: `agent ${first.id} stopped before the task finished` });
    expect(await w.registry().ids()).not.toContain(first.id);
    expect((await w.registry().get(first.id))?.status).toBe('stopped');
    expect(await processesIn(w.workspace)).toEqual([]);

    const second = await w.startAgent({ id: 'backend-second' });
    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, agent: second.id });
    const entries = await w.entries(task.id);
    expect(statusTrail(entries)).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    expect(entries.find((e) => e.type === 'status' && e.status === 'queued' && e.agent === first.id)?.text).toBe(
      `agent ${first.id} stopped before the task finished; back on the queue`,
    );
  });

  it('exits by itself after its idle timeout and deregisters', async ({ w }) => {
    const agent = await w.spawnAgent('backend-idle', { DAN_IDLE_TIMEOUT_MS: '1500' });
    const exit = await agent.exited;
    expect(exit, agent.text()).toEqual({ code: 0, signal: null });
    expect(await w.registry().ids()).not.toContain(agent.id);
    expect((await w.registry().get(agent.id))?.status).toBe('stopped');
    expect(agent.text()).toContain('"reason":"idle"');
    // Its CLI config dir went with it, and so did the network's folder it was the last one in.
    expect(existsSync(path.join(os.tmpdir(), 'dan', w.net.network))).toBe(false);
  });

  it('when reaped while it works, stops its task without recording a result and exits "reaped"', async ({ w }) => {
    w.script = () => ({ hang: true });
    const agent = await w.startAgent();
    const task = await w.submit('Create the file orphan.txt');
    await modelCalled(w);
    await w.waitFor(task.id, (r) => r.status === 'active');

    // A long pause: the heartbeat lapses and the orchestrator reaps the agent while its CLI still runs.
    const registry = w.registry();
    const reaper = new Reaper(registry).onReap((dead) => releaseAgentTasks(w.bus, dead, 'stopped heartbeating').then(() => {}));
    await eventually(
      async () => {
        await w.bus.redis.del(w.bus.keys.heartbeat(agent.id));
        return (await reaper.reapOnce()).some((a) => a.id === agent.id);
      },
      { what: 'the agent to be reaped' },
    );

    expect(await agent.exited).toBe('reaped');
    const record = await w.bus.tasks.get(task.id);
    expect(record).toMatchObject({ status: 'queued', attempts: 1 });
    expect(record.result).toBeUndefined();
    expect(record.finishedAt).toBeUndefined();
    const entries = await w.entries(task.id);
    expect(statusTrail(entries)).toEqual(['queued', 'active', 'queued']);
    expect(entries.some((e) => e.type === 'result')).toBe(false);
    expect(await processesIn(w.workspace)).toEqual([]);
    expect(w.logs.messages()).toContain('this agent was reaped: the task belongs to another agent now; no result recorded');
  });

  it('serves a new domain that is only a new folder', async ({ w }) => {
    const templates = await w.tempDir('templates');
    await cp(path.join(repoRoot(), 'agents'), templates, { recursive: true });
    const data = path.join(templates, 'domain-templates', 'data');
    await mkdir(path.join(data, '.claude', 'agents'), { recursive: true });
    const instructions = 'You are the data agent of this network: pipelines, warehouses and ETL jobs.';
    await writeFile(path.join(data, 'CLAUDE.md'), `# Data domain agent\n\n${instructions}\n`);
    await writeFile(
      path.join(data, '.claude', 'agents', 'etl-worker.md'),
      '---\nname: etl-worker\ndescription: Builds extract-transform-load jobs.\ntools: Read, Write\n---\n\nYou write ETL jobs for the data domain.\n',
    );
    w.script = echoScenario();

    // Without the folder the domain does not exist; with it, nothing else changes.
    const unknown = await runDan(['send-task', 'data', 'Load the sales export into the warehouse'], w.danEnv());
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr)).toMatch(/data/);
    const sent = await runDan(['send-task', 'data', 'Load the sales export into the warehouse'], w.danEnv({ DAN_TEMPLATES: templates }));
    expect(sent.exitCode, String(sent.stderr)).toBe(0);
    const id = String(sent.stdout).trim();
    expect((await w.bus.tasks.get(id)).domain).toBe('data');

    const agent = await w.startAgent({ domain: 'data', env: { DAN_TEMPLATES: templates } });
    const done = await w.waitForEnd(id);
    expect(done).toMatchObject({ status: 'completed', agent: agent.id });
    expect(done.result).toContain('Echo: Load the sales export into the warehouse');
    const [turn] = conversationRequests(w.server.requests);
    expect(turn!.reminders + turn!.system).toContain(instructions);
    expect(offeredAgentTypes(turn!)).toContain('etl-worker');
  });

  it('marks a run whose every write was refused: completed (no changes, 1 refused write), a warning in the log, --strict exits 1', { timeout: 300_000 }, async ({ w }) => {
    // A domain folder without .claude/settings.json: the CLI refuses the model's Write (it runs headless, nobody
    // can grant it), and the run still ends `completed`, as the CLI reports no error.
    const templates = await w.tempDir('templates');
    await cp(path.join(repoRoot(), 'agents'), templates, { recursive: true });
    const data = path.join(templates, 'domain-templates', 'data');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'CLAUDE.md'), '# Data domain agent\n');
    w.script = writeFileScenario();
    await w.startAgent({ domain: 'data', env: { DAN_TEMPLATES: templates } });

    const sent = await runDan(['send-task', 'data', 'Create the file refused.txt', '--wait', '--strict'], w.danEnv({ DAN_TEMPLATES: templates }));
    expect(sent.exitCode, String(sent.stderr)).toBe(1);
    expect(String(sent.stderr)).toMatch(/^completed \(no changes, 1 refused write\) [0-9A-Z]{26}$/m);
    expect(String(sent.stdout)).toMatch(/warning +no changes, 1 refused write: refused Write ×1 \(the domain's \.claude\/settings\.json does not allow them/);
    const [id] = /[0-9A-Z]{26}/.exec(String(sent.stderr))!;

    const record = await w.bus.tasks.get(id);
    expect(record).toMatchObject({ status: 'completed', warnings: ['no changes', '1 refused write'] });
    expect(existsSync(path.join(w.workspace, 'refused.txt'))).toBe(false);
    const status = await runDan(['status', id], w.danEnv({ DAN_TEMPLATES: templates }));
    expect(String(status.stdout)).toMatch(/^status +completed \(no changes, 1 refused write\)$/m);
    const entries = await w.entries(id);
    expect(entries.filter((e) => e.type === 'warning').map((e) => e.data?.warnings)).toEqual([['no changes', '1 refused write']]);
  });

  it('`dan domain new` scaffolds a domain that works at once: its worker writes, no warnings', { timeout: 300_000 }, async ({ w }) => {
    const templates = await w.tempDir('templates');
    await cp(path.join(repoRoot(), 'agents'), templates, { recursive: true });
    const env = w.danEnv({ DAN_TEMPLATES: templates });
    const made = await runDan(['domain', 'new', 'data'], env);
    expect(made.exitCode, String(made.stderr)).toBe(0);
    expect(String(made.stdout)).toMatch(/^created domain data in .*domain-templates\/data\/$/m);
    expect(String(made.stdout)).toContain('dan send-task data "..." --wait');
    expect(String(made.stdout)).toContain('scripts/build-image.sh && docker compose up -d --force-recreate orchestrator');
    const dir = path.join(templates, 'domain-templates', 'data');
    for (const file of ['CLAUDE.md', '.claude/agents/data-worker.md', '.claude/settings.json']) expect(existsSync(path.join(dir, file)), file).toBe(true);

    // Bad input writes nothing: a taken name, an invalid one, `main`.
    for (const [name, why] of [['data', /exists already/], ['Bad Name', /must be a folder name/], ['main', /reserved/]] as const) {
      const bad = await runDan(['domain', 'new', name], env);
      expect(bad.exitCode).toBe(2);
      expect(String(bad.stderr)).toMatch(why);
    }

    // The worker it made is offered to the model and its writes are allowed: the task does what it says.
    w.script = delegateScenario({ subagentType: 'data-worker' });
    await w.startAgent({ domain: 'data', env: { DAN_TEMPLATES: templates } });
    const sent = await runDan(['send-task', 'data', 'Create the file loaded.txt', '--wait', '--strict'], env);
    expect(sent.exitCode, `${String(sent.stdout)}\n${String(sent.stderr)}`).toBe(0);
    expect(String(sent.stdout)).toMatch(/Agent → data-worker/);
    expect(await readFile(path.join(w.workspace, 'loaded.txt'), 'utf8')).toContain('loaded.txt');
    const [id] = /[0-9A-Z]{26}/.exec(String(sent.stderr))!;
    expect((await w.bus.tasks.get(id)).warnings).toBeUndefined();
  });

  it('send-task --wait prints a readable summary and the result at the end; --verbose everything; --quiet the id and outcome', { timeout: 300_000 }, async ({ w }) => {
    w.script = delegateScenario();
    await w.startAgent();
    const summary = await runDan(['send-task', 'backend', 'Create the file summary.txt', '--wait'], w.danEnv());
    expect(summary.exitCode, String(summary.stderr)).toBe(0);
    const out = String(summary.stdout);
    // One line per step: the delegation, the worker's write (indented), no tool results, init or worker prompts.
    expect(out).toMatch(/tool_use +Agent → api-worker: /);
    expect(out).toMatch(/tool_use +  ↳ Write .*summary\.txt/);
    expect(out).not.toMatch(/ (init|tool_result|result) +/);
    expect(out).not.toContain('prompt to subagent');
    expect(out).not.toContain(DELEGATION_MARKER);
    // The answer comes last, once.
    expect(out.trimEnd()).toMatch(/\nresult\nDelegated to api-worker: .*$/);
    expect(String(summary.stderr)).toMatch(/; --verbose for every event\n/);
    expect(String(summary.stderr)).toMatch(/^completed [0-9A-Z]{26}$/m);

    const verbose = await runDan(['send-task', 'backend', 'Create the file verbose.txt', '--wait', '--verbose'], w.danEnv());
    expect(verbose.exitCode).toBe(0);
    expect(String(verbose.stdout)).toMatch(/ init +claude /);
    expect(String(verbose.stdout)).toMatch(/ tool_result +/);
    expect(String(verbose.stdout)).toContain('prompt to subagent');

    const quiet = await runDan(['send-task', 'backend', 'Create the file quiet.txt', '--wait', '--quiet'], w.danEnv());
    expect(quiet.exitCode).toBe(0);
    expect(String(quiet.stdout)).toMatch(/^[0-9A-Z]{26}$/);
    expect(String(quiet.stderr)).toBe(`completed ${String(quiet.stdout)}`);

    // Off a terminal (as here) there is never a progress line; --quiet without --wait is bad input.
    expect(String(summary.stderr)).not.toContain('\u001b[2K');
    const bad = await runDan(['send-task', 'backend', 'x', '--quiet'], w.danEnv());
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toMatch(/--quiet needs --wait/);
  });

  it('logs and skips a queue job with bad data, and keeps serving', async ({ w }) => {
    const queue = w.bus.queues.queue('backend');
    await queue.add('task', { foo: 1 } as never);
    await w.startAgent();
    const task = await w.submit('Create the file real.txt');
    expect((await w.waitForEnd(task.id)).status).toBe('completed');
    await eventually(() => w.logs.messages().includes('dropped a queue job with malformed data'), { what: 'the bad job to be logged' });
    // The record says completed a moment before BullMQ moves the job off the active list.
    const counts = await eventually(
      async () => {
        const c = await w.bus.queues.counts('backend');
        return c.waiting === 0 && c.active === 0 ? c : undefined;
      },
      { what: 'the backend queue to empty', timeoutMs: 10_000 },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await w.bus.queues.counts('backend'))}`);
    });
    expect(counts).toEqual({ waiting: 0, active: 0 });
  });

  it('fails a task whose record was corrupted before it was taken, saying the record is malformed', async ({ w }) => {
    const task = await w.submit('Create the file corrupt.txt');
    await w.bus.redis.hdel(w.bus.keys.task(task.id), 'description');
    const agent = await w.startAgent();
    const hash = await eventually(
      async () => {
        const stored = await w.bus.redis.hgetall(w.bus.keys.task(task.id));
        return stored.status === 'failed' ? stored : undefined;
      },
      { what: 'the corrupt task to fail' },
    );
    expect(hash).toMatchObject({ agent: agent.id, attempts: '1' });
    expect(hash.error).toMatch(/^the task record is malformed: .*description/);
    expect(conversationRequests(w.server.requests)).toEqual([]);
    // The agent goes on serving.
    const next = await w.submit('Create the file fine.txt');
    expect((await w.waitForEnd(next.id)).status).toBe('completed');
  });
});
