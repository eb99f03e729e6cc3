import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../lib/log.js';
import { Orchestrator } from '../lib/orchestrator/index.js';
import { AgentRegistry, Reaper } from '../lib/registry/index.js';
import { ProcessRuntime } from '../lib/runtime/index.js';
import { BenchNetwork, ROOT, StandInWorkspace, type BenchRedis } from './context.js';
import { percentile, type Figure } from './stats.js';

/**
 * Registry scale: `agents` registered agents heartbeating every second (bench/heartbeat-load.ts, a process of
 * its own: the same Lua call a real agent makes, spread over the second), while the reaper runs: the time of one reaper
 * cycle, of one whole orchestrator cycle (reaper, registry, queues, scaler), and Redis commands per second.
 * Baseline in the same run: one pipelined round trip of `agents` EXISTS, the least a cycle over that many agents
 * must ask Redis.
 */
export async function benchRegistryScale(redis: BenchRedis, agents: number, cycles: number): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'registry', { DAN_HEARTBEAT_MS: '1000', DAN_HEARTBEAT_TTL_MS: '3000', DAN_REAPER_MS: '3600000', DAN_WORKSPACE: ws.dir });
  const ids = Array.from({ length: agents }, (_, i) => `backend-${String(i).padStart(5, '0')}`);
  const load = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'heartbeat-load.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url, BENCH_NETWORK: net.config.network, BENCH_AGENTS: String(agents), BENCH_TTL_MS: '3000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    load.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    load.once('exit', (code) => reject(new Error(`the heartbeat load exited with ${code}`)));
  });
  let orchestrator: Orchestrator | undefined;
  let runtime: ProcessRuntime | undefined;
  try {
    await sleep(2000);
    const registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: 3000 });
    const reaper = new Reaper(registry);
    const reaperCycles: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const t = performance.now();
      const reaped = await reaper.reapOnce();
      reaperCycles.push(performance.now() - t);
      if (reaped.length > 0) throw new Error(`the reaper reaped ${reaped.length} live agents`);
      await sleep(100);
    }
    // A whole orchestrator cycle over the same registry (its own loop is parked: DAN_REAPER_MS is an hour).
    runtime = await ProcessRuntime.create(net.config);
    orchestrator = await Orchestrator.start({ config: net.config, runtime, logger: silentLogger(), env: {} });
    const orchestratorCycles: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const t = performance.now();
      await orchestrator.tick();
      orchestratorCycles.push(performance.now() - t);
      await sleep(100);
    }
    // Commands per second while everything runs (heartbeats plus one orchestrator cycle a second).
    const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await net.redis.info('stats'))?.[1]);
    const c0 = await processed();
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) {
      await orchestrator.tick();
      await sleep(1000);
    }
    const opsPerSecond = ((await processed()) - c0) / ((performance.now() - t0) / 1000);
    const floor: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const t = performance.now();
      const pipeline = net.redis.pipeline();
      for (const id of ids) pipeline.exists(net.bus.keys.heartbeat(id));
      await pipeline.exec();
      floor.push(performance.now() - t);
    }
    const reaperP50 = percentile(reaperCycles, 50);
    const floorP50 = percentile(floor, 50);
    return [
      {
        bench: 'registry scale',
        metric: `reaper cycle, ${agents} agents heartbeating every second, p50 of ${cycles}`,
        value: reaperP50,
        unit: 'ms',
        baseline: { label: `one pipelined round trip of ${agents} EXISTS`, value: floorP50 },
        comparison: `${(reaperP50 / floorP50).toFixed(1)}× the floor; p99 ${percentile(reaperCycles, 99).toFixed(1)} ms`,
        target: '< 50 ms',
        met: reaperP50 < 50,
      },
      {
        bench: 'registry scale',
        metric: `whole orchestrator cycle (reaper, registry, queues, scaler), ${agents} agents, p50`,
        value: percentile(orchestratorCycles, 50),
        unit: 'ms',
        comparison: `p99 ${percentile(orchestratorCycles, 99).toFixed(1)} ms`,
      },
      {
        bench: 'registry scale',
        metric: `Redis commands per second, ${agents} agents heartbeating + one orchestrator cycle a second`,
        value: opsPerSecond,
        unit: '/s',
        comparison: `${(opsPerSecond / agents).toFixed(2)} commands per agent per second`,
      },
    ];
  } finally {
    const stopped = new Promise((resolve) => load.once('exit', resolve));
    load.kill('SIGTERM');
    await stopped;
    await orchestrator?.stop();
    await runtime?.close();
    await net.close();
    await ws.remove();
  }
}
