import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchNetwork, DanChild, STAND_IN, StandInWorkspace, rssMb, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import type { Figure } from './stats.js';

/**
 * Memory: resident set size (VmRSS) of an idle `dan orchestrator` (process runtime, no work) and an idle
 * `dan agent`, both the compiled CLI, after they have registered and sat still for `settleMs`. Baseline in the
 * same run: a bare `node` process doing nothing, started with them.
 */
export async function benchMemory(redis: BenchRedis, settleMs = 45_000): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'memory');
  const env = net.env({ DAN_WORKSPACE: ws.dir, DAN_CLAUDE_BIN: STAND_IN, DAN_LOG_LEVEL: 'info', DAN_IDLE_TIMEOUT_MS: '3600000', DAN_MAX_AGENTS: '0' });
  const orchestrator = DanChild.start(['orchestrator'], { ...env, AGENT_ID: 'bench-orchestrator' });
  const agent = DanChild.start(['agent', '--domain', 'backend', '--id', 'bench-idle-agent'], env);
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await eventually(async () => (await net.redis.scard(net.bus.keys.agents)) === 2, { what: 'the orchestrator and the agent to register', timeoutMs: 60_000, intervalMs: 20 });
    // V8 gives memory back some seconds into idleness (its memory reducer): sample until then, report both.
    const samples: Array<[number, number, number]> = [];
    for (let waited = 0; waited < settleMs; waited += 1000) {
      samples.push(await Promise.all([rssMb(orchestrator.pid), rssMb(agent.pid), rssMb(bare.pid!)]));
      await sleep(1000);
    }
    const [o, a, b] = samples.at(-1)!;
    const peak = (i: 0 | 1) => Math.max(...samples.map((s) => s[i]));
    const note = `RSS after ${settleMs / 1000} s idle; the first seconds after start are higher until V8's memory reducer runs`;
    return [
      { bench: 'memory', metric: 'idle orchestrator (process runtime), RSS', value: o, unit: 'MB', baseline: { label: 'bare node', value: b }, comparison: `+${(o - b).toFixed(1)} MB over bare node; ${peak(0).toFixed(1)} MB just after start`, target: '< 100 MB', met: o < 100, note },
      { bench: 'memory', metric: 'idle agent, RSS', value: a, unit: 'MB', baseline: { label: 'bare node', value: b }, comparison: `+${(a - b).toFixed(1)} MB over bare node; ${peak(1).toFixed(1)} MB just after start`, target: '< 80 MB', met: a < 80 },
    ];
  } finally {
    bare.kill();
    await Promise.all([orchestrator.stop(), agent.stop()]);
    await net.close();
    await ws.remove();
  }
}
