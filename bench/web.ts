import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { silentLogger } from '../lib/log.js';
import { taskSpecSchema, type DanEvent } from '../lib/task.js';
import { dashboardDir, WebServer } from '../lib/web/index.js';
import { SseClient } from '../tests/helpers/sse-client.js';
import { BenchNetwork, type BenchRedis } from './context.js';
import { percentile, type Figure } from './stats.js';

const SSE_CLIENTS = 100;

/**
 * `dan serve` (issue 11): an in-process web server on its own bench network, over loopback HTTP.
 * 1. POST /api/tasks against `Bus.submit` (what `dan send-task` calls once it has validated), alternated one by one
 *    in the same run, so both see the same Redis and the same load: the API's cost is HTTP, JSON and validation.
 * 2. 100 SSE clients on /api/events while tasks are sent one at a time: every client must get every event; the
 *    latency is from the event's own timestamp (taken by the writer just before its Lua script) to its arrival.
 * 3. The dashboard's JavaScript as built (dist/web/assets), gzipped: what a first load downloads.
 */
export async function benchWeb(redis: BenchRedis, count: number): Promise<Figure[]> {
  const net = await BenchNetwork.open(redis.url, 'web');
  const config = { ...net.config, web: { ...net.config.web, host: '127.0.0.1', port: 0, apiToken: undefined } };
  const server = await WebServer.create({ config, bus: net.bus, logger: silentLogger() });
  const url = await server.listen();
  try {
    return [...(await submitLatency(net, url, count)), await sseFanOut(net, url, Math.max(20, Math.round(count / 10))), bundleSize()];
  } finally {
    await server.close();
    await net.close();
  }
}

async function submitLatency(net: BenchNetwork, url: string, count: number): Promise<Figure[]> {
  const body = JSON.stringify({ domain: 'backend', description: 'bench: a task sent over HTTP', priority: 'normal' });
  const spec = taskSpecSchema.parse({ domain: 'backend', description: 'bench: a task sent by Bus.submit', timeoutS: 300, maxAttempts: 3 });
  const api: number[] = [];
  const bus: number[] = [];
  for (let i = 0; i < count + 20; i++) {
    let began = performance.now();
    const response = await fetch(`${url}/api/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`POST /api/tasks answered ${response.status}`);
    if (i >= 20) api.push(performance.now() - began); // the first 20 of each warm up
    began = performance.now();
    await net.bus.submit(spec);
    if (i >= 20) bus.push(performance.now() - began);
  }
  const [a50, a99, b50, b99] = [percentile(api, 50), percentile(api, 99), percentile(bus, 50), percentile(bus, 99)];
  return [
    {
      bench: 'web',
      metric: `POST /api/tasks, p50 of ${count}`,
      value: a50,
      unit: 'ms',
      baseline: { label: "Bus.submit (dan send-task's submit call), alternated with it", value: b50 },
      comparison: `+${(a50 - b50).toFixed(2)} ms`,
      target: 'within 1 ms of the baseline (p50)',
      met: a50 - b50 <= 1,
    },
    {
      bench: 'web',
      metric: `POST /api/tasks, p99 of ${count}`,
      value: a99,
      unit: 'ms',
      baseline: { label: 'Bus.submit, p99', value: b99 },
      comparison: `+${(a99 - b99).toFixed(2)} ms`,
    },
  ];
}

async function sseFanOut(net: BenchNetwork, url: string, events: number): Promise<Figure> {
  const clients = await Promise.all(Array.from({ length: SSE_CLIENTS }, () => SseClient.open(`${url}/api/events`)));
  try {
    await Promise.all(clients.map((c) => c.next((e) => e.event === 'ready')));
    const arrivals = new Map<SseClient, number[]>();
    // Arrival times are taken as each event is parsed, not when the test looks.
    for (const c of clients) {
      const times: number[] = [];
      arrivals.set(c, times);
      const push = c.events.push.bind(c.events);
      c.events.push = (...items) => {
        for (const item of items) if (item.event === 'task') times.push(Date.now() - (JSON.parse(item.data) as DanEvent).ts);
        return push(...items);
      };
    }
    const spec = taskSpecSchema.parse({ domain: 'backend', description: 'bench: an event for 100 clients', timeoutS: 300, maxAttempts: 3 });
    for (let i = 0; i < events; i++) {
      await net.bus.submit(spec);
      await new Promise((r) => setTimeout(r, 10));
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && [...arrivals.values()].some((t) => t.length < events)) await new Promise((r) => setTimeout(r, 20));
    const latencies = [...arrivals.values()].flat();
    const lost = SSE_CLIENTS * events - latencies.length;
    const p99 = percentile(latencies, 99);
    return {
      bench: 'web',
      metric: `${events} task events to ${SSE_CLIENTS} SSE clients of /api/events: p99 latency from the transition`,
      value: p99,
      unit: 'ms',
      comparison: `${lost} of ${SSE_CLIENTS * events} deliveries lost; p50 ${percentile(latencies, 50)} ms`,
      target: 'p99 < 50 ms, none lost',
      met: p99 < 50 && lost === 0,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function bundleSize(): Figure {
  const assets = path.join(dashboardDir(), 'assets');
  const js = readdirSync(assets).filter((f) => f.endsWith('.js'));
  const bytes = js.reduce((sum, f) => sum + gzipSync(readFileSync(path.join(assets, f)), { level: 9 }).length, 0);
  const kb = bytes / 1024;
  return {
    bench: 'web',
    metric: `the dashboard's JavaScript on first load, gzipped (${js.length} file${js.length === 1 ? '' : 's'})`,
    value: Math.round(kb * 10) / 10,
    unit: 'KB',
    target: '< 300 KB',
    met: kb < 300,
  };
}
