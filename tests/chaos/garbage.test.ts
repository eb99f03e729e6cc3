import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTaskId, type TaskRecord } from '../../lib/task.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import type { DanProcess } from '../helpers/dan-process.js';
import { eventually } from '../helpers/network.js';
import { report, submitTasks } from './harness.js';
import { StandInNetwork } from './stand-in-network.js';

// Garbage in Redis, as a bug, an old version or a stray script would leave it: task records with fields
// missing, queue jobs whose data is not what dan writes (or not JSON at all), control messages that are not
// JSON. `dan agent` and `dan orchestrator` run as processes; each must log what it met, fail the one task it
// concerns saying why, and keep serving.

const TIMINGS = {
  DAN_HEARTBEAT_MS: '300',
  DAN_HEARTBEAT_TTL_MS: '3000',
  DAN_REAPER_MS: '300',
  DAN_IDLE_TIMEOUT_MS: '60000',
  DAN_SHUTDOWN_GRACE_MS: '1000',
};
const AGENT = 'backend-garbage';
const ORCHESTRATOR = 'orchestrator-garbage';

describe('garbage in Redis', () => {
  let network: StandInNetwork;
  let agent: DanProcess;
  let orchestrator: DanProcess;

  beforeAll(async () => {
    network = await StandInNetwork.open({
      label: 'chaos-garbage',
      workspace: { minMs: 20, maxMs: 100 },
      settings: { ...TIMINGS, DAN_MAX_AGENTS_PER_DOMAIN: '1' },
    });
  });

  afterAll(async () => {
    await network?.close({ graceMs: 10_000 });
  });

  it('logs each piece, fails the task it concerns saying why, and keeps serving', async () => {
    const { bus, redis } = network;
    const backend = bus.queues.queue('backend');
    // Two records with fields missing, each with a queue job as dan would make it.
    const partial = newTaskId();
    await redis.hset(bus.keys.task(partial), { id: partial, domain: 'backend', status: 'queued' });
    await redis.zadd(bus.keys.tasks, Date.now(), partial);
    await bus.queues.enqueue('backend', partial, 'normal');
    const bare = newTaskId();
    await redis.hset(bus.keys.task(bare), { status: 'queued' });
    await bus.queues.enqueue('backend', bare, 'normal');
    // Jobs whose data is not a task id, and one whose stored data is not JSON at all.
    await backend.add('task', { taskId: 'not-a-task-id' } as never, { jobId: 'bad-id', removeOnComplete: true, removeOnFail: true });
    await backend.add('task', { what: 'no task id' } as never, { jobId: 'no-id', removeOnComplete: true, removeOnFail: true });
    await backend.add('task', { taskId: newTaskId() }, { jobId: 'not-json', removeOnComplete: true, removeOnFail: true });
    await redis.hset(`${bus.keys.queuePrefix}:backend:not-json`, 'data', '{"taskId": oops');
    // And a proper task behind the garbage.
    const [first] = await submitTasks(bus, 1, { domains: ['backend'], label: 'behind the garbage' });

    // Every event the processes publish about the garbage must still be one a subscriber can read.
    const watcher = bus.events();
    const invalidEvents: string[] = [];
    watcher.on('invalid', (_channel, message) => invalidEvents.push(message));
    await watcher.subscribeEvents();

    agent = network.start(['agent', '--domain', 'backend', '--id', AGENT]);
    orchestrator = network.start(['orchestrator'], { AGENT_ID: ORCHESTRATOR });
    const registry = new AgentRegistry(redis, bus.keys, { heartbeatTtlMs: 3000 });
    await eventually(async () => {
      const ids = await registry.ids();
      return ids.includes(AGENT) && ids.includes(ORCHESTRATOR);
    }, { what: 'the agent and the orchestrator to register', timeoutMs: 30_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\nagent:\n${agent.tail()}\norchestrator:\n${orchestrator.tail()}`);
    });

    // Control messages that are not JSON, or not a message dan knows.
    for (const id of [AGENT, ORCHESTRATOR]) {
      // Each subscribes to its control channel just after registering.
      await eventually(async () => ((await redis.pubsub('NUMSUB', bus.keys.control(id))) as [string, number])[1] > 0, { what: `${id} to listen`, timeoutMs: 30_000 });
      await redis.publish(bus.keys.control(id), 'this is not JSON {');
      await redis.publish(bus.keys.control(id), JSON.stringify({ type: 'self-destruct' }));
    }

    // Both keep serving: the agent runs new backend tasks; the orchestrator spawns an agent for new work.
    const later = await submitTasks(bus, 4, { domains: ['backend', 'frontend'], label: 'after the garbage' });
    const serving = [first!, ...later];
    const done = await eventually(
      async () => {
        const records = await bus.tasks.getMany(serving);
        return records.length === serving.length && records.every((r) => r.status === 'completed') ? records : undefined;
      },
      { what: 'the proper tasks to complete', timeoutMs: 60_000, intervalMs: 200 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nagent:\n${agent.tail()}\norchestrator:\n${orchestrator.tail()}`);
    });
    expect(done.filter((r: TaskRecord) => r.domain === 'frontend').every((r) => r.agent !== AGENT)).toBe(true);

    // Each malformed record ended failed, saying why.
    for (const id of [partial, bare]) {
      const hash = await eventually(async () => {
        const h = await redis.hgetall(bus.keys.task(id));
        return h.status === 'failed' ? h : undefined;
      }, { what: `the malformed record ${id} to fail`, timeoutMs: 30_000 });
      expect(hash.error).toMatch(/the task record is malformed: malformed data at .*task:/);
      expect(hash.agent).toBe(AGENT);
    }

    // Every garbage job left the queue instead of coming back forever.
    await eventually(async () => {
      const counts = await backend.getJobCounts('wait', 'prioritized', 'delayed', 'active');
      return Object.values(counts).every((n) => n === 0);
    }, { what: 'the backend queue to empty', timeoutMs: 60_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await backend.getJobCounts())}\nagent:\n${agent.tail()}`);
    });

    const agentLog = agent.json();
    const dropped = agentLog.filter((l) => l.msg === 'dropped a queue job with malformed data').map((l) => l.jobId);
    expect(dropped).toEqual(expect.arrayContaining(['bad-id', 'no-id', 'not-json']));
    expect(agentLog.filter((l) => l.msg === 'queue worker error'), 'jobs BullMQ could not load').toEqual([]);
    for (const who of [agent, orchestrator]) {
      await eventually(() => who.logged('ignored a malformed control message').length >= 2, { what: 'the control messages to be logged', timeoutMs: 10_000 }).catch((error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify(who.logged('ignored a malformed control message'))}\n${who.tail()}`);
      });
      expect(who.logged('ignored a malformed control message').map((l) => l.message)).toEqual(['this is not JSON {', '{"type":"self-destruct"}']);
    }
    expect(agent.running && orchestrator.running).toBe(true);
    expect(invalidEvents, 'events no subscriber can read').toEqual([]);
    await watcher.close();
    expect([...agent.lines, ...orchestrator.lines].filter((l) => !l.startsWith('{')), 'non-JSON output').toEqual([]);

    report('garbage in Redis', {
      malformedRecordsFailed: 2,
      jobsDropped: dropped.length,
      properTasksCompleted: done.length,
    });
  }, 180_000);
});
