import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { releaseAgentTasks } from '../../lib/orchestrator/release-tasks.js';
import { taskSpecSchema } from '../../lib/task.js';
import { AgentRegistry, LeaderLease } from '../../lib/registry/index.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';
import { startWeb, type TestWeb } from '../helpers/web.js';

/**
 * /metrics after a known sequence of real transitions (through the same Lua scripts agents and the reaper use):
 * the output parses as Prometheus text, its counters equal what the test did, and its gauges what Redis holds.
 */

let net: TestNetwork;
let web: TestWeb;
let registry: AgentRegistry;

beforeEach(async () => {
  net = await openNetwork({}, 'metrics');
  web = await startWeb(net);
  registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: net.config.heartbeatTtlMs });
});

afterEach(async () => {
  await web.close();
  await net.cleanup();
});

/** One scrape, parsed twice: as typed families, and sample by sample (the parser folds a labelled histogram's
 * series into one, losing their labels, so without the TYPE lines each `_bucket`/`_sum`/`_count` is read alone). */
interface Scrape {
  families: PrometheusFamily[];
  samples: PrometheusFamily[];
}

async function scrape(): Promise<Scrape> {
  const answer = await web.call('GET', '/metrics');
  expect(answer.status).toBe(200);
  return { families: parsePrometheusTextFormat(answer.text), samples: parsePrometheusTextFormat(answer.text.replace(/^# TYPE .*$/gm, '')) };
}

/** The value of the sample with exactly these labels, 0 when there is none. */
function value(m: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = m.samples.find((f) => f.name === name);
  if (!family) throw new Error(`no metric ${name}`);
  const sample = family.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v) && Object.keys(s.labels ?? {}).length === Object.keys(labels).length);
  return sample ? Number(sample.value) : 0;
}

const histogram = (m: Scrape, name: string, labels: Record<string, string>): { count: number; sum: number } => ({
  count: value(m, `${name}_count`, labels),
  sum: value(m, `${name}_sum`, labels),
});

const typeOf = (m: Scrape, name: string): string | undefined => m.families.find((f) => f.name === name)?.type;

const send = async (domain: string, description: string): Promise<string> => {
  const answer = await web.call('POST', '/api/tasks', { body: { domain, description } });
  expect(answer.status).toBe(201);
  return (answer.json as { id: string }).id;
};

const claim = (id: string, agent: string, startedAt: number) =>
  net.bus.tasks.transition(id, 'active', { mode: 'claim', agent, fields: { agent, startedAt } });

it('counts created and ended tasks, durations, dispatch latency, cost and tokens from the events; reads queues and agents at scrape time', async () => {
  const a = await send('backend', 'completes');
  const b = await send('backend', 'fails');
  const c = await send('frontend', 'is cancelled');
  await send('frontend', 'stays queued');
  await web.call('POST', '/api/tasks', { body: { domain: 'backend', description: '' } }); // refused: counts nothing

  await registry.register({ id: 'agent-1', role: 'domain', domain: 'backend', runtime: 'process' });
  const createdA = (await net.bus.tasks.get(a)).createdAt;
  await claim(a, 'agent-1', createdA + 2000);
  await net.bus.tasks.transition(a, 'completed', {
    agent: 'agent-1',
    text: 'done',
    fields: {
      finishedAt: createdA + 32_000,
      result: 'ok',
      costUsd: 0.25,
      turns: 3,
      usage: JSON.stringify({ input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 50 }),
      git: JSON.stringify({ branch: `dan/${a}`, integration: 'main', base: 'abc', commit: 'def', files: [{ path: 'x.txt', added: 1, removed: 0 }], merge: 'merged', keptAttempts: [] }),
    },
  });
  await claim(b, 'agent-1', Date.now());
  await net.bus.tasks.transition(b, 'failed', { agent: 'agent-1', text: 'broke', fields: { finishedAt: Date.now() + 1000, error: 'broke', costUsd: 0.5 } });
  await net.bus.cancel(c);

  await eventually(async () => value(await scrape(), 'dan_tasks_ended_total', { domain: 'frontend', status: 'cancelled' }) === 1, { what: 'the cancel counted' });
  await web.server.metrics.settled();
  const m = await scrape();
  expect(value(m, 'dan_tasks_created_total', { domain: 'backend' })).toBe(2);
  expect(value(m, 'dan_tasks_created_total', { domain: 'frontend' })).toBe(2);
  expect(value(m, 'dan_tasks_ended_total', { domain: 'backend', status: 'completed' })).toBe(1);
  expect(value(m, 'dan_tasks_ended_total', { domain: 'backend', status: 'failed' })).toBe(1);
  expect(value(m, 'dan_tasks_ended_total', { domain: 'frontend', status: 'cancelled' })).toBe(1);
  expect(histogram(m, 'dan_task_duration_seconds', { domain: 'backend', status: 'completed' })).toEqual({ count: 1, sum: 30 });
  expect(histogram(m, 'dan_task_dispatch_latency_seconds', { domain: 'backend' }).count).toBe(2);
  expect(value(m, 'dan_task_cost_usd_total', { domain: 'backend' })).toBeCloseTo(0.75);
  expect(value(m, 'dan_task_tokens_total', { domain: 'backend', kind: 'input' })).toBe(1000);
  expect(value(m, 'dan_task_tokens_total', { domain: 'backend', kind: 'output' })).toBe(200);
  expect(value(m, 'dan_task_tokens_total', { domain: 'backend', kind: 'cache_read' })).toBe(50);
  expect(value(m, 'dan_merges_total', { domain: 'backend', state: 'merged' })).toBe(1);
  // Gauges: what Redis holds now.
  expect(value(m, 'dan_queue_waiting', { domain: 'frontend' })).toBe(1);
  expect(value(m, 'dan_queue_waiting', { domain: 'backend' })).toBe(2); // the test claimed records, not jobs
  expect(value(m, 'dan_queue_waiting', { domain: 'main' })).toBe(0);
  expect(value(m, 'dan_agents', { domain: 'backend', status: 'idle' })).toBe(1);
  expect(typeOf(m, 'dan_tasks_created_total')).toBe('COUNTER');
  expect(typeOf(m, 'dan_queue_waiting')).toBe('GAUGE');
  expect(typeOf(m, 'dan_task_duration_seconds')).toBe('HISTOGRAM');
});

it("counts the reaper's work: dead agents and the tasks handed back", async () => {
  const id = await send('backend', 'its agent dies');
  await registry.register({ id: 'agent-d', role: 'domain', domain: 'backend', runtime: 'process' });
  await claim(id, 'agent-d', Date.now());
  await registry.setState('agent-d', 'busy', [id]);
  await net.redis.del(net.bus.keys.heartbeat('agent-d')); // the heartbeat lapses
  const reaped = await registry.reap('agent-d');
  expect(reaped).toBeDefined();
  expect(await releaseAgentTasks(net.bus, reaped!, 'died (heartbeat expired)')).toEqual([id]);

  await eventually(async () => value(await scrape(), 'dan_task_handbacks_total', { domain: 'backend' }) === 1, { what: 'the hand-back counted' });
  const m = await scrape();
  expect(value(m, 'dan_agents_reaped_total', { domain: 'backend' })).toBe(1);
  expect(value(m, 'dan_agents', { domain: 'backend', status: 'idle' })).toBe(0);
  expect(value(m, 'dan_tasks_created_total', { domain: 'backend' })).toBe(1); // the requeue is not a new task
});

it('sees leader changes between scrapes', async () => {
  expect(value(await scrape(), 'dan_leader_present')).toBe(0);
  const first = new LeaderLease(net.redis, net.bus.keys, 'orchestrator-1', { ttlMs: 5000 });
  expect(await first.tryAcquire()).toBe(true);
  expect(value(await scrape(), 'dan_leader_present')).toBe(1);
  await first.stop();
  const second = new LeaderLease(net.redis, net.bus.keys, 'orchestrator-2', { ttlMs: 5000 });
  expect(await second.tryAcquire()).toBe(true);
  const m = await scrape();
  expect(value(m, 'dan_leader_changes_total')).toBe(1);
  await second.stop();
});

it('counts review gate runs by gate and verdict, and not as merges', async () => {
  const author = await send('backend', 'the change under review');
  const commit = 'a'.repeat(40);
  const reviews: string[] = [];
  for (const [gate, verdict] of [['code', 'fail'], ['code', 'pass'], ['security', undefined]] as const) {
    const spec = taskSpecSchema.parse({ domain: 'review', description: `review ${gate}`, timeoutS: 60, maxAttempts: 1, gates: [], review: { of: author, gate, commit, base: commit, round: 1 } });
    const id = (await net.bus.submit(spec)).id;
    reviews.push(id);
    await claim(id, 'agent-r', Date.now());
    await net.bus.tasks.transition(id, verdict ? 'completed' : 'failed', {
      agent: 'agent-r',
      text: 'reviewed',
      fields: {
        finishedAt: Date.now(),
        verdict: verdict ? JSON.stringify({ verdict, findings: [], summary: 's' }) : undefined,
        error: verdict ? undefined : 'invalid verdict: the answer is not JSON',
        git: JSON.stringify({ branch: `dan/${id}`, integration: 'main', base: commit, files: [], merge: 'skipped', keptAttempts: [] }),
      },
    });
  }
  await eventually(async () => value(await scrape(), 'dan_review_verdicts_total', { gate: 'security', verdict: 'none' }) === 1, { what: 'the last review counted' });
  await web.server.metrics.settled();
  const m = await scrape();
  expect(value(m, 'dan_review_verdicts_total', { gate: 'code', verdict: 'fail' })).toBe(1);
  expect(value(m, 'dan_review_verdicts_total', { gate: 'code', verdict: 'pass' })).toBe(1);
  expect(value(m, 'dan_merges_total', { domain: 'review', state: 'skipped' })).toBe(0);
});
