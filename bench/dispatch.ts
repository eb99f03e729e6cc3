import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { createRedis } from '../lib/messaging/index.js';
import { isTerminal, newTaskId, taskSpecSchema } from '../lib/task.js';
import { BenchNetwork, DanChild, STAND_IN, StandInWorkspace, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import { percentile, type Figure } from './stats.js';

/**
 * Dispatch: warm agents (two `dan agent` processes, idle), the stand-in CLI. For each of `count` tasks sent one
 * after another, the time from `send` (Bus.submit, what `dan send-task` does) to the CLI starting (the first
 * thing the stand-in does is write its start time). Baselines in the same run: bare BullMQ, add to the
 * worker's processor being called, and a Redis PING round trip.
 */
export async function benchDispatch(redis: BenchRedis, count: number): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'dispatch');
  const agents = [1, 2].map((i) =>
    DanChild.start(
      ['agent', '--domain', 'backend', '--id', `bench-dispatch-${i}`],
      net.env({ DAN_WORKSPACE: ws.dir, DAN_CLAUDE_BIN: STAND_IN, DAN_IDLE_TIMEOUT_MS: '3600000', DAN_LOG_LEVEL: 'info' }),
    ),
  );
  try {
    await eventually(async () => (await net.redis.scard(net.bus.keys.agents)) === 2, { what: 'the dispatch agents to register', timeoutMs: 60_000, intervalMs: 20 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${agents[0]!.tail()}`);
    });
    const events = net.bus.events();
    const waiters = new Map<string, () => void>();
    events.on('event', (e) => {
      if (e.kind === 'task' && isTerminal(e.status)) waiters.get(e.id)?.();
    });
    await events.subscribeEvents();

    const sent = new Map<string, number>();
    const ids: string[] = [];
    const warmup = 20;
    for (let i = 0; i < warmup + count; i++) {
      const id = newTaskId();
      const done = new Promise<void>((resolve) => waiters.set(id, resolve));
      const spec = taskSpecSchema.parse({ domain: 'backend', description: `dispatch ${i} standin:key=${id}`, timeoutS: 60, maxAttempts: 1 });
      const t0 = Date.now();
      await net.bus.submit(spec, { id });
      await done;
      waiters.delete(id);
      if (i >= warmup) {
        sent.set(id, t0);
        ids.push(id);
      }
    }
    const starts = await ws.starts();
    const records = await net.bus.tasks.getMany(ids);
    const toCli = ids.map((id) => starts.get(id)! - sent.get(id)!);
    const toClaim = records.map((r) => r.startedAt! - sent.get(r.id)!);

    const bull = await bareBullMQ(redis.url, `${net.config.prefix}bare`, count, warmup);
    const floorWs = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
    const bullCli = await bareBullMQ(redis.url, `${net.config.prefix}bare-cli`, count, warmup, { ws: floorWs }).finally(() => floorWs.remove());
    const pings: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const t = performance.now();
      await net.redis.ping();
      if (i >= warmup) pings.push(performance.now() - t);
    }

    const [p50, p99] = [percentile(toCli, 50), percentile(toCli, 99)];
    const [bull50, bull99] = [percentile(bull, 50), percentile(bull, 99)];
    const [floor50, floor99] = [percentile(bullCli, 50), percentile(bullCli, 99)];
    const overhead = p50 - floor50;
    return [
      {
        bench: 'dispatch',
        metric: `send → CLI started, p50 (${count} tasks one after another, 2 warm agents)`,
        value: p50,
        unit: 'ms',
        baseline: { label: 'bare BullMQ add → processor called, p50', value: bull50 },
        comparison:
          `+${(p50 - bull50).toFixed(1)} ms over bare BullMQ; +${overhead.toFixed(1)} ms over bare BullMQ whose processor ` +
          `spawns the same CLI (p50 ${floor50} ms: the CLI's own process start is in both); Redis PING p50 ${percentile(pings, 50).toFixed(2)} ms`,
        target: 'p50 < 10 ms; overhead over BullMQ ≤ 5 ms',
        met: p50 < 10 && overhead <= 5,
        note:
          `send → task claimed by an agent: p50 ${percentile(toClaim, 50)} ms, p99 ${percentile(toClaim, 99)} ms. ` +
          `The overhead is judged against BullMQ spawning the same CLI, since starting a process (${floor50 - Math.round(bull50)} ms here ` +
          'for sh and its first fork) is part of "send → CLI started" with or without dan.',
      },
      {
        bench: 'dispatch',
        metric: 'send → CLI started, p99',
        value: p99,
        unit: 'ms',
        baseline: { label: 'bare BullMQ add → processor called, p99', value: bull99 },
        comparison: `+${(p99 - bull99).toFixed(1)} ms over bare BullMQ; +${(p99 - floor99).toFixed(1)} ms over bare BullMQ spawning the CLI (p99 ${floor99} ms); Redis PING p99 ${percentile(pings, 99).toFixed(2)} ms`,
        target: 'p99 < 30 ms',
        met: p99 < 30,
      },
    ];
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await net.close();
    await ws.remove();
  }
}

/**
 * Bare BullMQ on the same server: add one job, wait for the processor to be called, `count` times. With `cli`,
 * the processor spawns the stand-in CLI as dan's executor does, and the latency runs to the CLI's start: the
 * same work as dan's dispatch, without dan.
 */
async function bareBullMQ(
  url: string,
  prefix: string,
  count: number,
  warmup: number,
  cli?: { ws: StandInWorkspace },
): Promise<number[]> {
  const queueConnection = createRedis(url, { name: 'bench-bare-queue' });
  const workerConnection = createRedis(url, { name: 'bench-bare-worker' });
  const queue = new Queue<{ t: number; key: string }>('bare', { connection: queueConnection, prefix });
  let resolveOne: ((ms: number) => void) | undefined;
  const worker = new Worker<{ t: number; key: string }>(
    'bare',
    async (job) => {
      if (!cli) return resolveOne?.(performance.now() - job.data.t);
      await cli.ws.runCli(`standin:key=${job.data.key}`);
      resolveOne?.(0);
    },
    { connection: workerConnection, prefix, removeOnComplete: { count: 0 } },
  );
  await worker.waitUntilReady();
  const out: number[] = [];
  const sent = new Map<string, number>();
  try {
    for (let i = 0; i < warmup + count; i++) {
      const latency = new Promise<number>((resolve) => (resolveOne = resolve));
      const key = `bare-${i}`;
      const t = cli ? Date.now() : performance.now();
      await queue.add('job', { t, key }, { removeOnComplete: true });
      const ms = await latency;
      if (i < warmup) continue;
      if (cli) sent.set(key, t);
      else out.push(ms);
    }
    if (cli) {
      const starts = await cli.ws.starts();
      for (const [key, t] of sent) out.push(starts.get(key)! - t);
    }
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    queueConnection.disconnect();
    workerConnection.disconnect();
  }
  return out;
}
