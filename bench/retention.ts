import { TaskStore } from '../lib/messaging/index.js';
import { taskSpecSchema } from '../lib/task.js';
import { BenchNetwork, type BenchRedis } from './context.js';
import type { Figure } from './stats.js';

const DAY = 86_400_000;
const RETENTION_DAYS = 7;
const DAYS = 21;
/** Tasks written at once: a network's agents finish tasks in parallel too. */
const PARALLEL = 64;

/**
 * Retention soak: `tasks` tasks through a network's record path (created, claimed, five log lines, ended) spread
 * over 21 simulated days with DAN_RETENTION_DAYS=7, the leader's retention sweep run once per simulated hour
 * with the same clock. Redis's `used_memory` is read at the end of each day. What must hold: after the first
 * retention period, memory stays flat (each day's tasks replace the day's that expired). Baseline: memory at the
 * end of the first retention period.
 */
export async function benchRetention(redis: BenchRedis, tasks: number): Promise<Figure[]> {
  const net = await BenchNetwork.open(redis.url, 'retention');
  let clock = Date.UTC(2030, 0, 1);
  const store = new TaskStore(net.redis, net.bus.keys, { logMaxLen: net.config.logMaxLen, now: () => clock });
  const spec = taskSpecSchema.parse({ domain: 'backend', description: 'a retention soak task with a realistic description', timeoutS: 300, maxAttempts: 3 });
  const usedMemory = async (): Promise<number> => Number(/^used_memory:(\d+)/m.exec(await net.redis.info('memory'))?.[1]);
  const one = async (i: number): Promise<void> => {
    const { id } = await store.create(spec);
    await store.transition(id, 'active', { mode: 'claim', agent: 'soak', fields: { agent: 'soak', startedAt: clock } });
    const lines = Array.from({ length: 5 }, (_, n) => ({ type: 'assistant' as const, text: `line ${n} of task ${i}: some output of the model`, ts: clock }));
    const pipeline = net.redis.pipeline();
    for (const line of lines) pipeline.xadd(net.bus.keys.taskLog(id), 'MAXLEN', '~', net.config.logMaxLen, '*', 'e', JSON.stringify({ ...line, task: id }));
    await pipeline.exec();
    await store.transition(id, i % 10 === 0 ? 'failed' : 'completed', { expectAgent: 'soak', expectAttempts: 1, fields: { result: 'x'.repeat(200), finishedAt: clock } });
  };
  try {
    const perHour = Math.ceil(tasks / (DAYS * 24));
    const daily: number[] = [];
    let written = 0;
    let removed = 0;
    const started = Date.now();
    for (let hour = 0; hour < DAYS * 24; hour++) {
      for (let done = 0; done < perHour && written < tasks; done += PARALLEL) {
        const batch = Math.min(PARALLEL, perHour - done, tasks - written);
        await Promise.all(Array.from({ length: batch }, (_, k) => one(written + k)));
        written += batch;
      }
      clock += 3_600_000;
      removed += await store.expireEnded(clock - RETENTION_DAYS * DAY);
      if ((hour + 1) % 24 === 0) daily.push(await usedMemory());
    }
    const atRetention = daily[RETENTION_DAYS]!;
    const after = daily.slice(RETENTION_DAYS);
    const peak = Math.max(...after);
    const last = daily.at(-1)!;
    const growth = peak / atRetention;
    const mb = (b: number) => b / 1024 ** 2;
    return [
      {
        bench: 'retention',
        metric: `Redis used_memory after ${tasks.toLocaleString('en-US')} tasks over ${DAYS} simulated days, retention ${RETENTION_DAYS} days`,
        value: mb(last),
        unit: 'MB',
        baseline: { label: `used_memory at day ${RETENTION_DAYS + 1} (first retention period over)`, value: mb(atRetention) },
        comparison: `peak after day ${RETENTION_DAYS + 1}: ${mb(peak).toFixed(1)} MB (${((growth - 1) * 100).toFixed(1)}% over it); ${removed.toLocaleString('en-US')} records removed; ${Math.round((Date.now() - started) / 1000)} s`,
        target: 'flat after the first retention period: peak within 10%',
        met: growth <= 1.1,
        note: `daily MB: ${daily.map((d) => mb(d).toFixed(1)).join(' ')}`,
      },
    ];
  } finally {
    await net.close();
  }
}
