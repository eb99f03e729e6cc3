import { decodeTime } from 'ulid';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptRecordError, DanError, IllegalTransitionError, UnknownTaskError } from '../../lib/errors.js';
import { Bus, followTask, type StoredLogEntry } from '../../lib/messaging/index.js';
import {
  BULL_PRIORITY,
  newTaskId,
  taskSpecSchema,
  type ControlMessage,
  type DanEvent,
  type TaskSpec,
  type TaskSpecInput,
} from '../../lib/task.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';

let net: TestNetwork;
let bus: Bus;
const extraBuses: Bus[] = [];

beforeEach(async () => {
  net = await openNetwork({}, 'msg');
  bus = net.bus;
});

afterEach(async () => {
  for (const extra of extraBuses.splice(0)) await extra.close();
  await net.cleanup();
});

const spec = (over: Partial<TaskSpecInput> = {}): TaskSpec =>
  taskSpecSchema.parse({ domain: 'backend', description: 'add a health endpoint', timeoutS: 60, maxAttempts: 3, ...over });

/** A second process's view of the same network, over connections of its own. */
async function otherBus(name: string): Promise<Bus> {
  const other = await Bus.connect(net.config, { name: `${net.network}-${name}` });
  extraBuses.push(other);
  return other;
}

/** What an agent does when it takes a task from its queue. */
const claim = (id: string, agent: string) =>
  bus.tasks.transition(id, 'active', { mode: 'claim', agent, fields: { agent, startedAt: Date.now() } });

/** Lifecycle events of the network, from the moment this returns. */
async function recordEvents(): Promise<DanEvent[]> {
  const seen: DanEvent[] = [];
  const events = bus.events();
  events.on('event', (e) => seen.push(e));
  await events.subscribeEvents();
  return seen;
}

const taskEvents = (seen: DanEvent[], id: string) => seen.filter((e) => e.kind === 'task' && e.id === id);

/** The raw hash and log length of a task: what a refused change must leave as it was. */
async function rawState(id: string): Promise<{ hash: Record<string, string>; logLength: number }> {
  return { hash: await net.redis.hgetall(bus.keys.task(id)), logLength: await net.redis.xlen(bus.keys.taskLog(id)) };
}

const statusesIn = (entries: StoredLogEntry[]) => entries.filter((e) => e.entry.type === 'status').map((e) => e.entry.status);

describe('submitting a task', () => {
  it('writes the record, indexes it, logs its first entry, enqueues a job with the task id, and publishes an event', async () => {
    const seen = await recordEvents();
    const record = await bus.submit(spec({ priority: 'high', context: { repo: 'api' } }));

    expect(record).toMatchObject({ domain: 'backend', status: 'queued', priority: 'high', attempts: 0, maxAttempts: 3, context: { repo: 'api' } });
    const hash = await net.redis.hgetall(bus.keys.task(record.id));
    expect(hash).toMatchObject({ id: record.id, domain: 'backend', status: 'queued', description: 'add a health endpoint', context: '{"repo":"api"}' });
    expect(Number(await net.redis.zscore(bus.keys.tasks, record.id))).toBe(record.createdAt);

    const log = await bus.logs.history(record.id);
    expect(log).toHaveLength(1);
    expect(log[0]!.entry).toMatchObject({ type: 'status', status: 'queued', task: record.id });
    expect(log[0]!.entry.text).toContain('queued for backend');

    const job = await bus.queues.queue('backend').getJob(record.id);
    expect(job?.id).toBe(record.id);
    expect(job?.data).toEqual({ taskId: record.id });
    expect(job?.opts.priority).toBe(BULL_PRIORITY.high);
    expect(await bus.queues.counts('backend')).toEqual({ waiting: 1, active: 0 });

    await eventually(() => taskEvents(seen, record.id).length === 1, { what: 'the queued event' });
    expect(taskEvents(seen, record.id)[0]).toMatchObject({ kind: 'task', id: record.id, domain: 'backend', status: 'queued' });
  });

  it.each(['low', 'normal', 'high'] as const)('maps priority %s onto the BullMQ job', async (priority) => {
    const record = await bus.submit(spec({ priority }));
    expect((await bus.queues.queue('backend').getJob(record.id))?.opts.priority).toBe(BULL_PRIORITY[priority]);
  });

  it('writes a task with open dependencies as waiting and does not enqueue it until asked', async () => {
    const first = await bus.submit(spec());
    const record = await bus.submit(spec({ dependsOn: [first.id] }), { waiting: true });
    expect(record.status).toBe('waiting');
    expect(record.dependsOn).toEqual([first.id]);
    expect(await bus.queues.queue('backend').getJob(record.id)).toBeUndefined();

    expect((await bus.tasks.transition(record.id, 'queued', { text: 'dependencies done' })).outcome).toBe('ok');
    await bus.enqueue(await bus.tasks.get(record.id));
    expect((await bus.queues.queue('backend').getJob(record.id))?.id).toBe(record.id);
  });

  it("links a task submitted with a parent into the parent's children, in order", async () => {
    const parent = await bus.submit(spec({ domain: 'main' }));
    const first = await bus.submit(spec({ parent: parent.id }));
    const second = await bus.submit(spec({ parent: parent.id }));
    expect((await bus.tasks.get(parent.id)).children).toEqual([first.id, second.id]);
    expect(await bus.tasks.get(first.id)).toMatchObject({ parent: parent.id });
  });

  it('marks the record failed, with the reason, when the queue refuses the job', async () => {
    // An honest failure from Redis itself: BullMQ's queue metadata key holds a string, so its script fails.
    await net.redis.set(`${bus.keys.queuePrefix}:backend:meta`, 'not a hash');
    const before = await bus.tasks.recentIds(10);

    const error = await bus.submit(spec()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DanError);
    expect(error).toMatchObject({ code: 'DAN_ENQUEUE_FAILED', retryable: true });
    expect((error as Error).message).toContain('could not enqueue on backend');

    const [id] = (await bus.tasks.recentIds(10)).filter((i) => !before.includes(i));
    const record = await bus.tasks.get(id!);
    expect(record.status).toBe('failed');
    expect(record.error).toContain('could not enqueue on backend');
    expect(record.finishedAt).toBeTypeOf('number');
    expect(statusesIn(await bus.logs.history(id!))).toEqual(['queued', 'failed']);
  });

  it('gives two concurrent submitters distinct ids that sort by creation time', async () => {
    const other = await otherBus('second-submitter');
    const batches = await Promise.all([bus, other].map((b) => Promise.all(Array.from({ length: 25 }, (_, i) => b.submit(spec({ description: `task ${i}` }))))));
    const records = batches.flat();
    const ids = records.map((r) => r.id);
    expect(new Set(ids).size).toBe(50);

    const indexed = await bus.tasks.recentIds(100);
    expect(indexed.sort()).toEqual([...ids].sort());
    const byId = [...records].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (let i = 1; i < byId.length; i++) expect(byId[i]!.createdAt).toBeGreaterThanOrEqual(byId[i - 1]!.createdAt);
    for (const r of records) expect(decodeTime(r.id)).toBeLessThanOrEqual(r.createdAt);
  });
});

describe('reading records', () => {
  it('gets one record, and says so for an unknown id', async () => {
    const record = await bus.submit(spec());
    expect(await bus.tasks.get(record.id)).toEqual(record);
    const unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    expect(await bus.tasks.find(unknown)).toBeUndefined();
    await expect(bus.tasks.get(unknown)).rejects.toBeInstanceOf(UnknownTaskError);
  });

  it('lists newest first, filtered by domain and status, up to a limit', async () => {
    const created = [];
    for (const domain of ['backend', 'frontend', 'backend', 'frontend', 'backend', 'frontend']) {
      created.push(await bus.submit(spec({ domain })));
    }
    await bus.cancel(created[0]!.id);
    await bus.cancel(created[3]!.id);
    const ids = (records: { id: string }[]) => records.map((r) => r.id);
    const newestFirst = ids(created).reverse();

    expect(ids(await bus.tasks.list())).toEqual(newestFirst);
    expect(ids(await bus.tasks.list({ domain: 'frontend' }))).toEqual([created[5]!.id, created[3]!.id, created[1]!.id]);
    expect(ids(await bus.tasks.list({ status: 'cancelled' }))).toEqual([created[3]!.id, created[0]!.id]);
    expect(ids(await bus.tasks.list({ status: 'queued', domain: 'backend' }))).toEqual([created[4]!.id, created[2]!.id]);
    expect(ids(await bus.tasks.list({ limit: 2 }))).toEqual(newestFirst.slice(0, 2));
    expect(ids(await bus.tasks.list({ domain: 'frontend', limit: 1 }))).toEqual([created[5]!.id]);
    expect(await bus.tasks.list({ status: 'completed' })).toEqual([]);
  });

  it('finds a filtered record beyond the first page of the index', async () => {
    const oldest = await bus.tasks.create(spec({ domain: 'frontend' }));
    for (let i = 0; i < 150; i++) await bus.tasks.create(spec());
    expect((await bus.tasks.list({ domain: 'frontend' })).map((r) => r.id)).toEqual([oldest.id]);
    expect(await bus.tasks.list({ limit: 1000 })).toHaveLength(151);
  });

  it('reports a malformed record instead of misreading it: get throws CorruptRecordError, list skips it', async () => {
    const good = await bus.submit(spec());
    const badId = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    // Written raw, as another (buggy or older) writer might: HSET and ZADD by hand.
    await net.redis.hset(bus.keys.task(badId), { id: badId, domain: 'backend', status: 'bogus', attempts: 'many' });
    await net.redis.zadd(bus.keys.tasks, Date.now() + 1000, badId);

    const error = await bus.tasks.get(badId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptRecordError);
    expect(error).toMatchObject({ code: 'DAN_CORRUPT_RECORD', key: bus.keys.task(badId) });
    expect((error as Error).message).toContain('status');
    await expect(bus.tasks.find(badId)).rejects.toBeInstanceOf(CorruptRecordError);

    expect((await bus.tasks.list()).map((r) => r.id)).toEqual([good.id]);
    const reported: CorruptRecordError[] = [];
    expect((await bus.tasks.getMany([badId, good.id], (e) => reported.push(e))).map((r) => r.id)).toEqual([good.id]);
    expect(reported.map((e) => e.key)).toEqual([bus.keys.task(badId)]);
  });
});

describe('transitions', () => {
  it('an agent claims a queued task: attempts + 1, the agent recorded', async () => {
    const { id } = await bus.submit(spec());
    expect(await claim(id, 'a1')).toEqual({ outcome: 'ok', from: 'queued', attempts: 1 });
    const record = await bus.tasks.get(id);
    expect(record).toMatchObject({ status: 'active', agent: 'a1', attempts: 1 });
    expect(record.startedAt).toBeTypeOf('number');
  });

  it('refuses a transition the state machine forbids, with outcome "illegal", and changes nothing', async () => {
    const { id } = await bus.submit(spec());
    const before = await rawState(id);
    expect(await bus.tasks.transition(id, 'completed', { fields: { result: 'sneaky' } })).toEqual({ outcome: 'illegal', from: 'queued', attempts: 0 });
    expect(await bus.tasks.transition(id, 'waiting')).toMatchObject({ outcome: 'illegal', from: 'queued' });
    expect(await rawState(id)).toEqual(before);

    await bus.cancel(id);
    const cancelled = await rawState(id);
    for (const to of ['queued', 'active', 'completed', 'failed'] as const) {
      expect((await bus.tasks.transition(id, to)).outcome).toBe('illegal');
    }
    expect((await claim(id, 'a1')).outcome).toBe('illegal');
    expect(await rawState(id)).toEqual(cancelled);

    await expect(bus.tasks.transitionOrThrow(id, 'completed')).rejects.toBeInstanceOf(IllegalTransitionError);
  });

  it('says "missing" for a task that does not exist, and writes nothing', async () => {
    const unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    expect((await bus.tasks.transition(unknown, 'active', { mode: 'claim', agent: 'a1' })).outcome).toBe('missing');
    expect(await net.redis.exists(bus.keys.task(unknown), bus.keys.taskLog(unknown))).toBe(0);
    await expect(bus.tasks.transitionOrThrow(unknown, 'completed')).rejects.toBeInstanceOf(UnknownTaskError);
  });

  it('fences results: a stale agent or a stale attempt cannot overwrite its successor', async () => {
    const { id } = await bus.submit(spec());
    await claim(id, 'a1'); // attempt 1
    // a1 stalls; its task goes back to the queue and a2 takes it.
    await bus.tasks.transition(id, 'queued', { text: 'agent a1 died', fields: { reason: 'agent a1 died' }, del: ['agent'] });
    expect(await claim(id, 'a2')).toMatchObject({ outcome: 'ok', attempts: 2 });
    const before = await rawState(id);

    const staleAgent = await bus.tasks.transition(id, 'completed', { expectAgent: 'a1', expectAttempts: 1, agent: 'a1', fields: { result: 'late result' } });
    expect(staleAgent).toEqual({ outcome: 'fenced', from: 'active', attempts: 2 });
    const staleAttempt = await bus.tasks.transition(id, 'failed', { expectAgent: 'a2', expectAttempts: 1, agent: 'a2', fields: { error: 'old attempt' } });
    expect(staleAttempt.outcome).toBe('fenced');
    expect(await rawState(id)).toEqual(before);

    const current = await bus.tasks.transition(id, 'completed', { expectAgent: 'a2', expectAttempts: 2, agent: 'a2', fields: { result: 'fresh result' } });
    expect(current).toEqual({ outcome: 'ok', from: 'active', attempts: 2 });
    expect(await bus.tasks.get(id)).toMatchObject({ status: 'completed', agent: 'a2', result: 'fresh result', attempts: 2 });
  });

  it('gives up with "exhausted" when a claim would pass maxAttempts, and the record says why', async () => {
    const { id } = await bus.submit(spec({ maxAttempts: 2 }));
    for (const agent of ['a1', 'a2']) {
      expect((await claim(id, agent)).outcome).toBe('ok');
      await bus.tasks.transition(id, 'queued', { text: `agent ${agent} died`, fields: { reason: `agent ${agent} died` }, del: ['agent'] });
    }
    expect(await claim(id, 'a3')).toEqual({ outcome: 'exhausted', from: 'queued', attempts: 2 });
    const record = await bus.tasks.get(id);
    expect(record.status).toBe('failed');
    expect(record.attempts).toBe(2);
    expect(record.error).toBe('gave up after 2 of 2 attempts: agent a2 died');
    expect(record.finishedAt).toBeTypeOf('number');
    expect(record.agent).toBeUndefined();
  });

  it('cancels instead of starting again a task whose cancel was requested', async () => {
    const { id } = await bus.submit(spec());
    await claim(id, 'a1');
    expect(await bus.cancel(id)).toEqual({ outcome: 'requested', agent: 'a1' });
    // a1 dies before it sees the request; the task is delivered again.
    await bus.tasks.transition(id, 'queued', { text: 'agent a1 died', del: ['agent'] });
    expect(await claim(id, 'a2')).toEqual({ outcome: 'cancelled', from: 'queued', attempts: 1 });
    const record = await bus.tasks.get(id);
    expect(record).toMatchObject({ status: 'cancelled', attempts: 1, cancelRequested: true });
    expect(record.agent).toBeUndefined();
  });

  it('writes every transition to the record, then the log, then the events channel', async () => {
    const seen: Array<{ event: DanEvent; recordStatus: string | null; lastLogged: StoredLogEntry | undefined }> = [];
    const events = bus.events();
    const reader = await otherBus('observer');
    // A read that fails is kept and `seenCount` throws it: the wait for its event then fails naming that error,
    // where a lost rejection would only be reported apart from this test.
    let readFailed: Error | undefined;
    events.on('event', (event) => {
      // Read at the moment the event arrives: the record and the log must already show it.
      (async () => {
        const recordStatus = await reader.redis.hget(reader.keys.task(event.id), 'status');
        const lastLogged = (await reader.logs.history(event.id, { last: 1 }))[0];
        seen.push({ event, recordStatus, lastLogged });
      })().catch((error: Error) => (readFailed ??= error));
    });
    const seenCount = (): number => {
      if (readFailed) throw readFailed;
      return seen.length;
    };
    await events.subscribeEvents();

    const { id } = await bus.submit(spec());
    const steps: Array<() => Promise<unknown>> = [
      () => claim(id, 'a1'),
      () => bus.tasks.transition(id, 'queued', { text: 'agent a1 died', agent: 'a1', fields: { reason: 'agent a1 died' } }),
      () => claim(id, 'a2'),
      () => bus.tasks.transition(id, 'completed', { expectAgent: 'a2', expectAttempts: 2, agent: 'a2', text: 'done', fields: { result: 'ok' } }),
    ];
    await eventually(() => seenCount() === 1, { what: 'the queued event' });
    for (const [i, step] of steps.entries()) {
      await step();
      await eventually(() => seenCount() === i + 2, { what: `event ${i + 2}` });
    }

    const expected = ['queued', 'active', 'queued', 'active', 'completed'];
    expect(seen.map((s) => (s.event.kind === 'task' ? s.event.status : s.event.kind))).toEqual(expected);
    for (const { event, recordStatus, lastLogged } of seen) {
      expect(recordStatus).toBe(event.status);
      expect(lastLogged?.entry).toMatchObject({ type: 'status', status: event.status });
    }
    const log = await bus.logs.history(id);
    expect(statusesIn(log)).toEqual(expected);
    expect(log.map((e) => e.entry.agent)).toEqual([undefined, 'a1', 'a1', 'a2', 'a2']);
    expect(seen[4]!.event).toMatchObject({ agent: 'a2', reason: 'done' });
  });

  it('names the task in the event and log entry even when its record lost its id and domain fields', async () => {
    const events = bus.events();
    const valid: DanEvent[] = [];
    const invalid: string[] = [];
    events.on('event', (e) => valid.push(e));
    events.on('invalid', (_channel, message) => invalid.push(message));
    await events.subscribeEvents();
    const id = newTaskId();
    await net.redis.hset(bus.keys.task(id), { status: 'queued' });

    await bus.tasks.transition(id, 'failed', { text: 'the task record is malformed', agent: 'a1' });
    await eventually(() => valid.length + invalid.length > 0, { what: 'the event' });
    expect(invalid).toEqual([]);
    expect(valid).toEqual([expect.objectContaining({ kind: 'task', id, domain: '', status: 'failed', agent: 'a1' })]);
    const [entry] = await bus.logs.history(id);
    expect(entry!.entry).toMatchObject({ type: 'status', status: 'failed', task: id });
  });
});

describe('committing a plan', () => {
  /** The network's keys, the goal's record and the index: what a refused commit must leave as it was. */
  const snapshot = async () => ({
    keys: (await net.redis.keys(`${net.config.prefix}*`)).sort(),
    records: await Promise.all((await net.redis.zrange(bus.keys.tasks, '0', '-1')).map((id) => net.redis.hgetall(bus.keys.task(id)))),
    graphs: await net.redis.smembers(bus.keys.graphs),
  });
  const childSpecs = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: newTaskId(), spec: taskSpecSchema.parse({ domain: 'backend', description: `part ${i}`, timeoutS: 60, maxAttempts: 3 }) }));

  it('creates every subtask, links them to the goal, records the plan and opens the graph, at once', async () => {
    const goal = await bus.submit(spec({ domain: 'main' }));
    await claim(goal.id, 'orch-a');
    const children = childSpecs(3);
    const events = await recordEvents();

    expect(await bus.tasks.commitPlan(goal.id, children, { source: 'model' }, { agent: 'orch-a', attempts: 1 })).toBe('ok');
    const record = await bus.tasks.get(goal.id);
    expect(record.children).toEqual(children.map((c) => c.id));
    expect(record.plan).toBe(JSON.stringify({ source: 'model' }));
    expect(await bus.tasks.openGraphs()).toEqual([goal.id]);
    for (const { id } of children) {
      expect(await bus.tasks.get(id)).toMatchObject({ status: 'waiting', parent: goal.id, domain: 'backend' });
      expect(statusesIn(await bus.logs.history(id))).toEqual(['waiting']);
    }
    await eventually(() => children.every((c) => taskEvents(events, c.id).length === 1), { what: "the subtasks' events" });
  });

  it('writes nothing for a planner that lost the goal (another agent or attempt), or for a goal already planned', async () => {
    const goal = await bus.submit(spec({ domain: 'main' }));
    await claim(goal.id, 'orch-a');
    const before = await snapshot();
    const children = childSpecs(2);
    expect(await bus.tasks.commitPlan(goal.id, children, { source: 'model' }, { agent: 'orch-b', attempts: 1 })).toBe('fenced');
    expect(await bus.tasks.commitPlan(goal.id, children, { source: 'model' }, { agent: 'orch-a', attempts: 2 })).toBe('fenced');
    expect(await snapshot()).toEqual(before);

    // Reaped and handed back: the record is queued again, so the first planner's late commit is refused.
    await bus.tasks.transition(goal.id, 'queued', { text: 'orch-a died' });
    expect(await bus.tasks.commitPlan(goal.id, children, { source: 'model' }, { agent: 'orch-a', attempts: 1 })).toBe('fenced');

    await claim(goal.id, 'orch-b');
    expect(await bus.tasks.commitPlan(goal.id, children, { source: 'model' }, { agent: 'orch-b', attempts: 2 })).toBe('ok');
    const again = childSpecs(2);
    expect(await bus.tasks.commitPlan(goal.id, again, { source: 'model' }, { agent: 'orch-b', attempts: 2 })).toBe('planned');
    expect((await bus.tasks.get(goal.id)).children).toEqual(children.map((c) => c.id));
    for (const { id } of again) expect(await bus.tasks.find(id)).toBeUndefined();
  });
});

describe('cancelling', () => {
  it('cancels a queued task at once and takes its job off the queue', async () => {
    const { id } = await bus.submit(spec());
    expect(await bus.cancel(id)).toEqual({ outcome: 'cancelled', from: 'queued' });
    expect(await bus.queues.queue('backend').getJob(id)).toBeUndefined();
    expect(await bus.queues.counts('backend')).toEqual({ waiting: 0, active: 0 });
    const record = await bus.tasks.get(id);
    expect(record).toMatchObject({ status: 'cancelled', reason: 'cancelled by user' });
    expect(record.finishedAt).toBeTypeOf('number');
    expect(statusesIn(await bus.logs.history(id))).toEqual(['queued', 'cancelled']);
  });

  it('cancels a waiting task at once', async () => {
    const record = await bus.submit(spec(), { waiting: true });
    expect(await bus.cancel(record.id, 'plan abandoned')).toEqual({ outcome: 'cancelled', from: 'waiting' });
    expect(await bus.tasks.get(record.id)).toMatchObject({ status: 'cancelled', reason: 'plan abandoned' });
  });

  it('asks the agent of an active task to stop it, through its control channel, after marking the record', async () => {
    const agentBus = await otherBus('agent-a1');
    const received: Array<[ControlMessage, string]> = [];
    agentBus.events().on('control', (message, agent) => received.push([message, agent]));
    await agentBus.events().subscribeControl('a1');

    const { id } = await bus.submit(spec());
    await claim(id, 'a1');
    expect(await bus.cancel(id)).toEqual({ outcome: 'requested', agent: 'a1' });

    const record = await bus.tasks.get(id);
    expect(record).toMatchObject({ status: 'active', cancelRequested: true, reason: 'cancelled by user', agent: 'a1' });
    const last = (await bus.logs.history(id, { last: 1 }))[0]!;
    expect(last.entry).toMatchObject({ type: 'info', text: 'cancel requested: cancelled by user' });
    await eventually(() => received.length === 1, { what: 'the control message' });
    expect(received[0]).toEqual([{ type: 'cancel', taskId: id, reason: 'cancelled by user' }, 'a1']);

    // The agent stops and records the cancellation, fenced like any result.
    const stopped = await agentBus.tasks.transition(id, 'cancelled', { expectAgent: 'a1', expectAttempts: 1, agent: 'a1', text: 'stopped' });
    expect(stopped.outcome).toBe('ok');
  });

  it('says already_finished for a terminal task and leaves it as it was', async () => {
    const { id } = await bus.submit(spec());
    await claim(id, 'a1');
    await bus.tasks.transition(id, 'completed', { expectAgent: 'a1', expectAttempts: 1, fields: { result: 'done' } });
    const before = await rawState(id);
    expect(await bus.cancel(id)).toEqual({ outcome: 'already_finished', status: 'completed' });
    expect(await rawState(id)).toEqual(before);
  });

  it('says so for an unknown task', async () => {
    await expect(bus.cancel('01ARZ3NDEKTSV4RRFFQ69G5FAV')).rejects.toBeInstanceOf(UnknownTaskError);
  });
});

describe('log streams', () => {
  it('keeps many entries in order and returns the last N on request', async () => {
    const { id } = await bus.submit(spec());
    for (let batch = 0; batch < 10; batch++) {
      await bus.logs.append(id, Array.from({ length: 100 }, (_, i) => ({ type: 'assistant' as const, text: `line ${batch * 100 + i}` })));
    }
    const all = await bus.logs.history(id);
    expect(all).toHaveLength(1001);
    expect(all.slice(1).map((e) => e.entry.text)).toEqual(Array.from({ length: 1000 }, (_, i) => `line ${i}`));
    for (const e of all) expect(e.taskId).toBe(id);

    const last = await bus.logs.history(id, { last: 3 });
    expect(last.map((e) => e.entry.text)).toEqual(['line 997', 'line 998', 'line 999']);
    expect(last.map((e) => e.id)).toEqual(all.slice(-3).map((e) => e.id));
    expect(await bus.logs.lastId(id)).toBe(all.at(-1)!.id);
    expect(await bus.logs.history(id, { after: all.at(-2)!.id })).toEqual(all.slice(-1));
  });

  it('caps a stream near DAN_LOG_MAXLEN, keeping the newest entries', async () => {
    const capped = await openNetwork({ DAN_LOG_MAXLEN: '100' }, 'msg-cap');
    try {
      const { id } = await capped.bus.submit(spec());
      for (let batch = 0; batch < 10; batch++) {
        await capped.bus.logs.append(id, Array.from({ length: 100 }, (_, i) => ({ type: 'info' as const, text: `line ${batch * 100 + i}` })));
      }
      const kept = await capped.bus.logs.history(id);
      expect(kept.length).toBeGreaterThanOrEqual(100);
      expect(kept.length).toBeLessThan(1001);
      expect(kept.at(-1)!.entry.text).toBe('line 999');
    } finally {
      await capped.cleanup();
    }
  });

  it('reports a malformed entry as a raw entry instead of throwing', async () => {
    const { id } = await bus.submit(spec());
    const key = bus.keys.taskLog(id);
    await net.redis.xadd(key, '*', 'e', 'not json');
    await net.redis.xadd(key, '*', 'e', JSON.stringify({ ts: 1, type: 'bogus', text: 'x' }));
    await net.redis.xadd(key, '*', 'other', 'field');
    await bus.logs.append(id, [{ type: 'info', text: 'still readable' }]);

    const log = await bus.logs.history(id);
    expect(log.map((e) => e.entry.type)).toEqual(['status', 'raw', 'raw', 'raw', 'info']);
    expect(log[1]!.entry.text).toBe('malformed log entry: e not json');
    expect(log[3]!.entry.text).toBe('malformed log entry: other field');
    expect(log[4]!.entry.text).toBe('still readable');

    await bus.cancel(id);
    const followed: string[] = [];
    await followTask(bus, id, { onEntry: (e) => followed.push(e.entry.type) });
    expect(followed).toEqual(['status', 'raw', 'raw', 'raw', 'info', 'status']);
  });

  it('reports a malformed event as "invalid" instead of throwing', async () => {
    const events = bus.events();
    const invalid: string[] = [];
    const valid: DanEvent[] = [];
    events.on('invalid', (_channel, message) => invalid.push(message));
    events.on('event', (e) => valid.push(e));
    await events.subscribeEvents();
    await net.redis.publish(bus.keys.events, 'not json');
    await net.redis.publish(bus.keys.events, JSON.stringify({ kind: 'task', id: 'x' }));
    const { id } = await bus.submit(spec());
    await eventually(() => valid.length === 1, { what: 'the valid event' });
    expect(invalid).toEqual(['not json', JSON.stringify({ kind: 'task', id: 'x' })]);
    expect(valid[0]).toMatchObject({ id, status: 'queued' });
  });
});

describe('following a task', () => {
  it('prints the history, then live entries, with no gap and no duplicate while another process writes', async () => {
    const { id } = await bus.submit(spec());
    await bus.logs.append(id, Array.from({ length: 50 }, (_, i) => ({ type: 'info' as const, text: `before ${i}` })));
    const writer = await otherBus('writer');

    const followed: StoredLogEntry[] = [];
    const writing = (async () => {
      for (let batch = 0; batch < 20; batch++) {
        await writer.logs.append(id, Array.from({ length: 10 }, (_, i) => ({ type: 'assistant' as const, text: `live ${batch * 10 + i}` })));
        await new Promise((r) => setTimeout(r, 3));
      }
      await writer.tasks.transition(id, 'cancelled', { text: 'stopped by the test' });
    })();
    const final = await followTask(bus, id, { onEntry: (e) => followed.push(e), blockMs: 50 });
    await writing;

    expect(final.status).toBe('cancelled');
    const texts = followed.map((e) => e.entry.text);
    expect(texts).toEqual([
      expect.stringContaining('queued for backend'),
      ...Array.from({ length: 50 }, (_, i) => `before ${i}`),
      ...Array.from({ length: 200 }, (_, i) => `live ${i}`),
      'stopped by the test',
    ]);
    expect(followed.map((e) => e.id)).toEqual((await bus.logs.history(id)).map((e) => e.id));
  });

  it('with last N, starts from the newest N history entries', async () => {
    const { id } = await bus.submit(spec());
    await bus.logs.append(id, Array.from({ length: 20 }, (_, i) => ({ type: 'info' as const, text: `old ${i}` })));
    const followed: string[] = [];
    const following = followTask(bus, id, { last: 3, onEntry: (e) => followed.push(e.entry.text), blockMs: 50 });
    await eventually(() => followed.length === 3, { what: 'the history' });
    await bus.logs.append(id, [{ type: 'info', text: 'new' }]);
    await bus.cancel(id);
    await following;
    expect(followed).toEqual(['old 17', 'old 18', 'old 19', 'new', 'cancelled by user']);
  });

  it('returns the final record once a terminal status is written', async () => {
    const { id } = await bus.submit(spec());
    await claim(id, 'a1');
    const followed: StoredLogEntry[] = [];
    let returned = false;
    const following = followTask(bus, id, { onEntry: (e) => followed.push(e), blockMs: 200 }).finally(() => (returned = true));
    await eventually(() => followed.length === 2, { what: 'the history' });
    expect(returned).toBe(false);

    await bus.tasks.transition(id, 'completed', { expectAgent: 'a1', expectAttempts: 1, agent: 'a1', text: 'done', fields: { result: '42' } });
    const final = await following;
    expect(final).toMatchObject({ id, status: 'completed', result: '42' });
    expect(followed.at(-1)!.entry).toMatchObject({ type: 'status', status: 'completed', text: 'done' });
  });

  it('returns at once with the whole history for a task that already ended', async () => {
    const { id } = await bus.submit(spec());
    await bus.cancel(id);
    const followed: string[] = [];
    const final = await followTask(bus, id, { onEntry: (e) => followed.push(e.entry.status ?? '') });
    expect(final.status).toBe('cancelled');
    expect(followed).toEqual(['queued', 'cancelled']);
  });
});
