import { silentLogger } from '../lib/log.js';
import { Orchestrator } from '../lib/orchestrator/index.js';
import { ProcessRuntime, danArgs } from '../lib/runtime/index.js';
import { newTaskId, taskSpecSchema } from '../lib/task.js';
import { BenchNetwork, DAN, STAND_IN, StandInWorkspace, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import { median, type Figure } from './stats.js';

const TTL_MS = 3000;
const REAPER_MS = 1000;

/**
 * Failover: one agent for the domain (process runtime, orchestrator in this process), heartbeat TTL 3 s,
 * reaper interval 1 s. The agent is SIGKILLed mid-task; measured is the time from the kill until the task is
 * active on another agent (its record's startedAt), `rounds` times. The target is TTL + interval + one cold
 * start; the cold start of a process agent (a task for a domain with no agent: send → active) is measured in
 * the same run, with the same orchestrator.
 */
export async function benchFailover(redis: BenchRedis, rounds: number): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'failover', {
    DAN_WORKSPACE: ws.dir,
    DAN_CLAUDE_BIN: STAND_IN,
    DAN_HEARTBEAT_MS: '1000',
    DAN_HEARTBEAT_TTL_MS: String(TTL_MS),
    DAN_REAPER_MS: String(REAPER_MS),
    DAN_MAX_AGENTS_PER_DOMAIN: '1',
    DAN_TASK_ATTEMPTS: String(rounds + 2),
  });
  const runtime = await ProcessRuntime.create(net.config, { entry: (spec) => [...DAN, ...danArgs(spec)], parentEnv: process.env });
  const orchestrator = await Orchestrator.start({ config: net.config, runtime, logger: silentLogger(), env: {} });
  // One cold start of a process agent, as the cold-start benchmark defines it for Docker: a task for a domain
  // with no agent, send → active.
  const coldStarts: number[] = [];
  for (const domain of ['frontend', 'devops']) {
    const coldId = newTaskId();
    const t0 = Date.now();
    await net.bus.submit(taskSpecSchema.parse({ domain, description: `cold standin:key=${coldId}`, timeoutS: 60, maxAttempts: 1 }), { id: coldId });
    const started = await eventually(async () => (await net.bus.tasks.get(coldId)).startedAt, { what: `a ${domain} agent to take its first task`, timeoutMs: 60_000, intervalMs: 10 });
    coldStarts.push(started - t0);
  }
  const failovers: number[] = [];
  const id = newTaskId();
  try {
    // One long task; each round kills the agent running it.
    await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: `failover standin:key=${id} standin:sleep=600000`, timeoutS: 3600, maxAttempts: rounds + 2 }), { id });
    let holder = (await eventually(async () => {
      const r = await net.bus.tasks.get(id);
      return r.status === 'active' ? r : undefined;
    }, { what: 'the task to start', timeoutMs: 60_000, intervalMs: 20 })).agent!;
    for (let i = 0; i < rounds; i++) {
      const handle = (await runtime.list()).find((h) => h.agentId === holder);
      if (!handle) throw new Error(`no process for agent ${holder}`);
      process.kill(Number(handle.ref), 'SIGKILL');
      const killedAt = Date.now();
      const next = await eventually(async () => {
        const r = await net.bus.tasks.get(id);
        return r.status === 'active' && r.agent !== holder ? r : undefined;
      }, { what: 'the task to be active on another agent', timeoutMs: 60_000, intervalMs: 20 });
      failovers.push(next.startedAt! - killedAt);
      holder = next.agent!;
    }
  } finally {
    await net.bus.cancel(id).catch(() => undefined);
    await orchestrator.stop('down');
    await runtime.stopAll({ timeoutMs: 2000 });
    await runtime.close();
    await net.close();
    await ws.remove();
  }
  const p50 = median(failovers);
  const cold = median(coldStarts);
  const budget = TTL_MS + REAPER_MS + cold;
  return [
    {
      bench: 'failover',
      metric: `agent SIGKILLed mid-task → task active on another agent, TTL 3 s, reaper 1 s, p50 of ${rounds}`,
      value: p50,
      unit: 'ms',
      baseline: { label: 'TTL + reaper interval + one cold start of a process agent (send → active, measured)', value: budget },
      comparison: `each: ${failovers.join(', ')} ms; cold start of a process agent ${coldStarts.join(', ')} ms`,
      target: '≤ TTL + interval + one cold start',
      met: p50 <= budget,
    },
  ];
}
