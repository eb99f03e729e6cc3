import { isTerminal, newTaskId, taskSpecSchema, type TaskRecord } from '../lib/task.js';
import { eventually } from '../tests/helpers/eventually.js';
import { BenchNetwork, DanChild, STAND_IN, StandInWorkspace, type BenchRedis } from './context.js';
import { median, percentile, type Figure } from './stats.js';

/**
 * A review gate's own cost (issue 15): `rounds` tasks one after another on a warm backend agent, each once with
 * no gate and once with the `code` gate (its reviewer a warm review agent), alternating so both see the same
 * machine; git workspaces, the stand-in CLI with no sleep, so what is left is dispatch, CLI starts, worktrees and
 * commits, not a model. The figure is a gated task's time from send to completed; the baseline the same task's
 * without the gate.
 */
export async function benchGates(redis: BenchRedis, rounds: number): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'gates');
  const settings = { DAN_WORKSPACE: ws.dir, DAN_WORKSPACE_MODE: 'git', DAN_CLAUDE_BIN: STAND_IN, DAN_IDLE_TIMEOUT_MS: '3600000', DAN_LOG_LEVEL: 'info' };
  const agents = ['backend', 'review'].map((domain) => DanChild.start(['agent', '--domain', domain, '--id', `bench-${domain}`], net.env(settings)));
  try {
    await eventually(async () => (await net.redis.scard(net.bus.keys.agents)) === agents.length, { what: 'the agents to register', timeoutMs: 90_000, intervalMs: 20 });
    const plain: number[] = [];
    const gated: number[] = [];
    const failures: string[] = [];
    // One of each first, unmeasured: the first worktree and the first CLI start of each agent.
    for (let i = -1; i < rounds; i++) {
      for (const gates of [[], ['code']]) {
        const started = performance.now();
        const record = await runOne(net, gates, `standin:key=g${i}${gates.length} standin:sleep=0 gate bench ${i}`);
        if (record.status !== 'completed') failures.push(`${record.id} ${record.status}: ${record.error ?? ''}`);
        if (i >= 0) (gates.length ? gated : plain).push(performance.now() - started);
      }
    }
    for (const f of failures) console.error(`bench: gates: task ${f}`);
    const extra = median(gated) - median(plain);
    return [
      {
        bench: 'gates',
        metric: `a task with one review gate, send → completed, p50 (${rounds} tasks each, stand-in CLI with no sleep, warm agents; ${failures.length} not completed)`,
        value: median(gated),
        unit: 'ms',
        baseline: { label: 'the same task with no gate', value: median(plain) },
        comparison: `+${extra.toFixed(0)} ms for the gate (p95 ${percentile(gated, 95).toFixed(0)} vs ${percentile(plain, 95).toFixed(0)} ms)`,
        note: "The gate's own cost: the review task's dispatch to a warm review agent, its worktree at the author's commit, one CLI start, its commit stage, and the author seeing the verdict (it looks every 200 ms).",
      },
    ];
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await net.close();
    await ws.remove();
  }
}

async function runOne(net: BenchNetwork, gates: string[], description: string): Promise<TaskRecord> {
  const id = newTaskId();
  await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 60, maxAttempts: 1, gates }), { id });
  return eventually(
    async () => {
      const record = await net.bus.tasks.get(id);
      return isTerminal(record.status) ? record : undefined;
    },
    { what: `task ${id} to end`, timeoutMs: 60_000, intervalMs: 5 },
  );
}
