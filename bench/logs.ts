import { performance } from 'node:perf_hooks';
import { DomainAgent } from '../lib/agent/index.js';
import { silentLogger } from '../lib/log.js';
import { Bus, compareStreamIds, followTask } from '../lib/messaging/index.js';
import { newTaskId, taskSpecSchema } from '../lib/task.js';
import { BenchNetwork, STAND_IN, StandInWorkspace, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import type { Figure } from './stats.js';

/**
 * Logs: one task whose CLI prints `events` stream-json lines, run by a real DomainAgent (the executor parses
 * each line, the LogWriter batches them into the task's stream), followed by `followTask` (what `dan logs
 * --follow` runs) on a connection of its own from before the task starts. Measured: entries appended per second
 * (by the stream ids, which are Redis's clock), and whether the follower got every one, in order. Baseline in the
 * same run: the same number of entries of the same size appended by bare pipelined XADD, 500 a round trip.
 */
export async function benchLogs(redis: BenchRedis, events: number): Promise<Figure[]> {
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0 });
  const net = await BenchNetwork.open(redis.url, 'logs', { DAN_WORKSPACE: ws.dir, DAN_CLAUDE_BIN: STAND_IN });
  const reader = await Bus.connect(net.config, { name: 'bench-logs-reader' });
  const agent = await DomainAgent.start({ config: net.config, domain: 'backend', agentId: 'bench-logs', env: { PATH: process.env.PATH ?? '' }, logger: silentLogger() });
  try {
    const id = newTaskId();
    await net.bus.tasks.create(taskSpecSchema.parse({ domain: 'backend', description: `logs standin:key=${id} standin:events=${events} standin:sleep=0`, timeoutS: 600, maxAttempts: 1 }), 'queued', id);
    const seen: number[] = [];
    let first = '';
    let last = '';
    let outOfOrder = 0;
    let previous = '0-0';
    const following = followTask(reader, id, {
      onEntry: (e) => {
        if (compareStreamIds(e.id, previous) <= 0) outOfOrder++;
        previous = e.id;
        const match = /^event (\d+)$/.exec(e.entry.text);
        if (e.entry.type !== 'assistant' || !match) return;
        seen.push(Number(match[1]));
        if (!first) first = e.id;
        last = e.id;
      },
    });
    const started = performance.now();
    await net.bus.enqueue(await net.bus.tasks.get(id));
    const record = await following;
    const wallMs = performance.now() - started;
    await eventually(async () => (await net.bus.tasks.get(id)).status !== 'active', { what: 'the task to end', timeoutMs: 60_000, intervalMs: 20 });
    const inOrder = seen.every((n, i) => n === i);
    const spanMs = Number(last.split('-')[0]) - Number(first.split('-')[0]);
    const rate = seen.length / (Math.max(1, spanMs) / 1000);

    const baseline = await bareAppends(net, events);
    const lost = events - seen.length;
    return [
      {
        bench: 'logs',
        metric: `one task emitting ${events.toLocaleString('en-US')} events through the executor and LogWriter: appended per second`,
        value: rate,
        unit: '/s',
        baseline: { label: 'bare pipelined XADD, 500 per round trip', value: baseline },
        comparison: `${Math.round((rate / baseline) * 100)}% of bare XADD; the whole task took ${Math.round(wallMs)} ms (${record.status})`,
        target: '≥ 20,000/s',
        met: rate >= 20_000,
      },
      {
        bench: 'logs',
        metric: `followTask (dan logs --follow) received, in order`,
        value: seen.length,
        unit: 'events',
        comparison: `${lost} lost, ${outOfOrder} out of order, ${inOrder ? 'every number in sequence' : 'gaps in the sequence'}`,
        target: 'all of them, in order',
        met: lost === 0 && outOfOrder === 0 && inOrder,
      },
    ];
  } finally {
    await agent.stop('stopped', { graceMs: 0 });
    await reader.close();
    await net.close();
    await ws.remove();
  }
}

/** Entries like the agent's, appended by bare pipelined XADD (capped as dan caps), 500 per round trip. */
async function bareAppends(net: BenchNetwork, count: number): Promise<number> {
  const key = `${net.config.prefix}bare-log`;
  const entry = (i: number) =>
    JSON.stringify({ type: 'assistant', text: `event ${i}`, data: { message_id: `msg_${i}`, model: 'stand-in' }, agent: 'bench-logs', ts: Date.now(), task: 'x'.repeat(26) });
  const started = performance.now();
  for (let i = 0; i < count; i += 500) {
    const pipeline = net.redis.pipeline();
    for (let j = i; j < Math.min(count, i + 500); j++) pipeline.xadd(key, 'MAXLEN', '~', net.config.logMaxLen, '*', 'e', entry(j));
    await pipeline.exec();
  }
  return count / ((performance.now() - started) / 1000);
}
