/**
 * A process standing in for many agents at once (bench/registry-scale.ts): registers BENCH_AGENTS agents on
 * the network BENCH_NETWORK of REDIS_URL, prints `ready`, then renews each one's heartbeat once a second (the
 * same Lua call a real agent makes), spread evenly over the second, until SIGTERM. Its own process, so the
 * orchestrator being measured does not share an event loop with the load.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Keys, createRedis } from '../lib/messaging/index.js';
import { AgentRegistry } from '../lib/registry/index.js';

const count = Number(process.env.BENCH_AGENTS ?? 1000);
const keys = new Keys(`${process.env.BENCH_NETWORK}:`);
const connections = Array.from({ length: 8 }, (_, i) => createRedis(process.env.REDIS_URL!, { name: `bench-hb-${i}` }));
const registries = connections.map((c) => new AgentRegistry(c, keys, { heartbeatTtlMs: Number(process.env.BENCH_TTL_MS ?? 3000) }));
const ids = Array.from({ length: count }, (_, i) => `backend-${String(i).padStart(5, '0')}`);
for (let i = 0; i < ids.length; i += 100) {
  await Promise.all(ids.slice(i, i + 100).map((id, j) => registries[j % registries.length]!.register({ id, role: 'domain', domain: 'backend', runtime: 'process' })));
}
let beating = true;
process.once('SIGTERM', () => (beating = false));
console.log('ready');
const slice = Math.ceil(count / 100);
for (let tick = 0; beating; tick++) {
  const start = (tick % 100) * slice;
  const began = Date.now();
  await Promise.all(ids.slice(start, start + slice).map((id, i) => registries[(start + i) % registries.length]!.heartbeat(id)));
  await sleep(Math.max(0, 10 - (Date.now() - began)));
}
for (const c of connections) c.disconnect();
