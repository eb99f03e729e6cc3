import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { ProcessRuntime, danArgs } from '../../lib/runtime/index.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';
import {
  DAN,
  LogCapture,
  STAND_IN,
  StandInWorkspace,
  audit,
  killPid,
  randomBetween,
  report,
  statuses,
  submitTasks,
  waitAllTerminal,
  waitQueuesEmpty,
} from './harness.js';

// 300 tasks over three domains on the process runtime, with a real Orchestrator (scaler and reaper) in this
// process spawning real `dan agent` processes, while agents are SIGKILLed at random. The stand-in CLI runs
// each task in 20-200 ms. What must hold: every task ends terminal, each completed task is recorded completed
// exactly once, no job is left on a queue, and every killed agent is reaped exactly once.

const TASKS = 300;
/** Enough deaths to hit agents at every stage of a task, few enough that respawning does not dominate the run. */
const MAX_KILLS = 25;
const TIMINGS = {
  DAN_HEARTBEAT_MS: '250',
  DAN_HEARTBEAT_TTL_MS: '2000',
  DAN_REAPER_MS: '250',
  DAN_IDLE_TIMEOUT_MS: '30000',
  DAN_SHUTDOWN_GRACE_MS: '1000',
};

describe('agents SIGKILLed at random on the process runtime', () => {
  let net: TestNetwork;
  let ws: StandInWorkspace;
  let logDir: string;
  let runtime: ProcessRuntime;
  let orchestrator: Orchestrator;
  const logs = new LogCapture();

  beforeAll(async () => {
    ws = await StandInWorkspace.create({ minMs: 50, maxMs: 300 });
    logDir = await mkdtemp(path.join(os.tmpdir(), 'dan-chaos-logs-'));
    net = await openNetwork(
      {
        ...TIMINGS,
        DAN_WORKSPACE: ws.dir,
        DAN_CLAUDE_BIN: STAND_IN,
        DAN_MAX_AGENTS: '9',
        DAN_MAX_AGENTS_PER_DOMAIN: '3',
        DAN_LOG_LEVEL: 'info',
      },
      'chaos-kill',
    );
    runtime = await ProcessRuntime.create(net.config, { entry: (spec) => [...DAN, ...danArgs(spec)], parentEnv: process.env, logDir });
    orchestrator = await Orchestrator.start({
      config: net.config,
      runtime,
      logger: createLogger({ level: 'info', destination: logs }),
      env: {},
    });
  });

  afterAll(async () => {
    await orchestrator?.stop('down');
    await runtime?.stopAll({ timeoutMs: 2000 });
    await runtime?.close();
    await net?.cleanup();
    await ws?.remove();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it('ends every task terminal, records each completion once, and reaps every killed agent once', async () => {
    const ids = await submitTasks(net.bus, TASKS);
    const killed: string[] = [];
    let killing = true;
    const killer = (async () => {
      await sleep(1500);
      while (killing && killed.length < MAX_KILLS) {
        // Mostly agents that have registered (and so may hold a task); now and then one still starting.
        const running = (await runtime.list()).filter((h) => h.running && h.role === 'domain');
        const registered = new Set(await net.redis.smembers(net.bus.keys.agents));
        const pool = Math.random() < 0.8 ? running.filter((h) => registered.has(h.agentId)) : running;
        const victim = pool[Math.floor(Math.random() * pool.length)];
        if (victim && killPid(Number(victim.ref))) killed.push(victim.agentId);
        await sleep(randomBetween(500, 1500));
      }
    })();

    try {
      await waitAllTerminal(net.bus, ids, 240_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\norchestrator:\n${logs.lines.slice(-30).join('\n')}`);
    } finally {
      killing = false;
      await killer;
    }
    await waitQueuesEmpty(net.bus);

    const result = await audit(net.bus, ids);
    expect(result.problems).toEqual([]);
    expect(killed.length).toBeGreaterThan(0);

    // Each killed agent that had registered is reaped exactly once: its record says dead, and one reap was
    // done for it. One killed while still starting never registered: there is nothing to reap.
    const registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: net.config.heartbeatTtlMs });
    const registered: string[] = [];
    for (const id of killed) if ((await net.redis.exists(net.bus.keys.agent(id))) === 1) registered.push(id);
    await eventually(
      async () => {
        for (const id of registered) if ((await net.redis.hget(net.bus.keys.agent(id), 'status')) !== 'dead') return false;
        return true;
      },
      { what: 'every killed agent to be reaped', timeoutMs: 30_000, intervalMs: 200 },
    );
    const reapedIds = logs.lines.filter((l) => l.includes('"msg":"reaped a dead agent"')).map((l) => (JSON.parse(l) as { agentId: string }).agentId);
    for (const id of registered) expect(reapedIds.filter((r) => r === id), `reaps of ${id}`).toHaveLength(1);
    expect(new Set(reapedIds).size).toBe(reapedIds.length);
    expect(await registry.expired()).toEqual([]);

    // At-least-once: the executions file says what ran more than once (reported, not asserted to be zero).
    const executions = await ws.executions();
    const duplicates = await ws.duplicates();
    const ran = new Set(executions.map((e) => e.key));
    const now = await statuses(net.redis, net.config.prefix, ids);
    // Sanity of the evidence: a task recorded completed was run by the CLI at least once.
    expect(ids.filter((id, i) => now[i] === 'completed' && !ran.has(id))).toEqual([]);
    report('process runtime, SIGKILL', {
      tasks: TASKS,
      ...result.byStatus,
      killed: killed.length,
      killedBeforeRegistering: killed.length - registered.length,
      reaped: reapedIds.length,
      spawned: orchestrator.stats.spawned,
      executions: executions.length,
      ranTwiceOrMore: duplicates.size,
      extraRuns: [...duplicates.values()].reduce((sum, n) => sum + n - 1, 0),
    });
  }, 300_000);
});
