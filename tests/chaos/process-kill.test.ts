import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentRegistry } from '../../lib/registry/index.js';
import { eventually } from '../helpers/network.js';
import { killQuietly } from '../helpers/processes.js';
import { audit, killAgentsWhile, registeredOf, report, statuses, submitTasks, waitAllTerminal, waitQueuesEmpty } from './harness.js';
import { OrchestratedNetwork } from './orchestrated-network.js';

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
  let run: OrchestratedNetwork;

  beforeAll(async () => {
    run = await OrchestratedNetwork.start({
      label: 'chaos-kill',
      workspace: { minMs: 50, maxMs: 300 },
      settings: { ...TIMINGS, DAN_MAX_AGENTS: '9', DAN_MAX_AGENTS_PER_DOMAIN: '3' },
      logLevel: 'info',
      env: {},
    });
  });

  afterAll(async () => {
    await run?.close();
  });

  it('ends every task terminal, records each completion once, and reaps every killed agent once', async () => {
    const { bus, redis, runtime, logs, ws } = run;
    const ids = await submitTasks(bus, TASKS);
    const killed = await killAgentsWhile(
      () =>
        waitAllTerminal(bus, ids, 480_000).catch((error: Error) => {
          throw new Error(`${error.message}\norchestrator:\n${logs.lines.slice(-30).join('\n')}`);
        }),
      { runtime, bus, max: MAX_KILLS, ready: () => sleep(1500), kill: (victim) => killQuietly(Number(victim.ref)), pauseMs: [500, 1500] },
    );
    await waitQueuesEmpty(bus);

    const result = await audit(bus, ids);
    expect(result.problems).toEqual([]);
    expect(killed.length).toBeGreaterThan(0);

    // Each killed agent that had registered is reaped exactly once: its record says dead, and one reap was
    // done for it. One killed while still starting never registered: there is nothing to reap.
    const registry = new AgentRegistry(redis, bus.keys, { heartbeatTtlMs: run.config.heartbeatTtlMs });
    const registered = await registeredOf(bus, killed);
    await eventually(
      async () => {
        for (const id of registered) if ((await redis.hget(bus.keys.agent(id), 'status')) !== 'dead') return false;
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
    const now = await statuses(redis, bus.keys.prefix, ids);
    // Sanity of the evidence: a task recorded completed was run by the CLI at least once.
    expect(ids.filter((id, i) => now[i] === 'completed' && !ran.has(id))).toEqual([]);
    report('process runtime, SIGKILL', {
      tasks: TASKS,
      ...result.byStatus,
      killed: killed.length,
      killedBeforeRegistering: killed.length - registered.length,
      reaped: reapedIds.length,
      spawned: run.orchestrator.stats.spawned,
      executions: executions.length,
      ranTwiceOrMore: duplicates.size,
      extraRuns: [...duplicates.values()].reduce((sum, n) => sum + n - 1, 0),
    });
  }, 600_000);
});
