import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { TaskStore } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { ProcessRuntime } from '../../lib/runtime/index.js';
import { newTaskId, taskSpecSchema, type TaskSpecInput } from '../../lib/task.js';
import { openNetwork, testConfig, type TestNetwork } from '../helpers/network.js';

// Retention (DAN_RETENTION_DAYS): an ended task, its log stream and its index entries are removed once it has been
// over for the retention period; a goal goes with its subtasks; nothing that has not ended is touched. The clock
// is simulated: the store writes with it, the sweep reads it.

const DAY = 86_400_000;
const spec = (over: Partial<TaskSpecInput> = {}) => taskSpecSchema.parse({ domain: 'backend', description: 'work', timeoutS: 60, maxAttempts: 3, ...over });

describe('retention of ended tasks', () => {
  let net: TestNetwork;
  let clock: number;
  let store: TaskStore;

  beforeEach(async () => {
    net = await openNetwork({}, 'retention');
    clock = Date.UTC(2030, 0, 1);
    store = new TaskStore(net.redis, net.bus.keys, { logMaxLen: 1000, now: () => clock });
  });
  afterEach(async () => {
    await net.cleanup();
  });

  /** A task created now and ended `afterMs` later, through the same transitions an agent makes. */
  async function endedTask(status: 'completed' | 'failed' = 'completed', afterMs = 1000): Promise<string> {
    const { id } = await store.create(spec());
    await store.transition(id, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1' } });
    clock += afterMs;
    await store.transition(id, status, { expectAgent: 'a1', expectAttempts: 1, fields: { result: 'done' } });
    return id;
  }

  const exists = async (key: string) => (await net.redis.exists(key)) === 1;
  const indexed = async (id: string) => (await net.redis.zscore(net.bus.keys.tasks, id)) !== null;

  it('removes a task ended more than the retention period ago, with its log and index entry, and keeps a younger one', async () => {
    const old = await endedTask('completed');
    clock += 2 * DAY;
    const young = await endedTask('failed');
    clock += 6 * DAY; // old ended 8 days ago, young 6
    const removed = await store.expireEnded(clock - 7 * DAY);
    expect(removed).toBe(1);
    expect(await exists(net.bus.keys.task(old))).toBe(false);
    expect(await exists(net.bus.keys.taskLog(old))).toBe(false);
    expect(await indexed(old)).toBe(false);
    expect(await store.get(young)).toMatchObject({ status: 'failed' });
    expect(await exists(net.bus.keys.taskLog(young))).toBe(true);
    expect(await indexed(young)).toBe(true);
  });

  it('never removes a task that has not ended, however old', async () => {
    const { id: queued } = await store.create(spec());
    const { id: active } = await store.create(spec());
    await store.transition(active, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1' } });
    clock += 30 * DAY;
    expect(await store.expireEnded(clock - 7 * DAY)).toBe(0);
    expect(await store.get(queued)).toMatchObject({ status: 'queued' });
    expect(await store.get(active)).toMatchObject({ status: 'active' });
    expect(new Set(await store.openIds())).toEqual(new Set([queued, active]));
  });

  it('removes a goal together with its subtasks, not a subtask on its own', async () => {
    const { id: goal } = await store.create(spec({ domain: 'main' }));
    await store.transition(goal, 'active', { mode: 'claim', agent: 'orch', fields: { agent: 'orch' } });
    const api = newTaskId();
    const children = [
      { id: api, spec: spec({ key: 'api' }) },
      { id: newTaskId(), spec: spec({ key: 'ui', domain: 'frontend', dependsOn: [api] }) },
    ];
    expect(await store.commitPlan(goal, children, { source: 'test' }, { agent: 'orch', attempts: 1 })).toBe('ok');
    for (const child of children) {
      await store.transition(child.id, 'queued');
      await store.transition(child.id, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1' } });
      await store.transition(child.id, 'completed', { expectAgent: 'a1', expectAttempts: 1 });
    }
    clock += 10 * DAY; // the subtasks ended 10 days ago; the goal is still open
    expect(await store.expireEnded(clock - 7 * DAY)).toBe(0);
    for (const child of children) expect(await exists(net.bus.keys.task(child.id))).toBe(true);

    await store.transition(goal, 'completed', { expectAgent: 'orch', expectAttempts: 1 });
    clock += 8 * DAY;
    expect(await store.expireEnded(clock - 7 * DAY)).toBe(3);
    for (const id of [goal, ...children.map((c) => c.id)]) {
      expect(await exists(net.bus.keys.task(id))).toBe(false);
      expect(await exists(net.bus.keys.taskLog(id))).toBe(false);
      expect(await indexed(id)).toBe(false);
    }
    expect(await net.redis.zcard(net.bus.keys.ended)).toBe(0);
  });

  it('runs in the leader\'s cycle with DAN_RETENTION_DAYS, and not at all with 0', async () => {
    const ended = await endedTask();
    const later = () => clock + 8 * DAY;
    const run = async (days: string): Promise<void> => {
      const config = testConfig(net.network, { DAN_RETENTION_DAYS: days, DAN_MAX_AGENTS: '0', DAN_REAPER_MS: '3600000' });
      const runtime = await ProcessRuntime.create(config);
      const orchestrator = await Orchestrator.start({ config, runtime, logger: silentLogger(), env: {}, now: later });
      try {
        await orchestrator.tick();
      } finally {
        await orchestrator.stop();
        await runtime.close();
      }
    };
    await run('0');
    expect(await exists(net.bus.keys.task(ended))).toBe(true);
    await run('7');
    expect(await exists(net.bus.keys.task(ended))).toBe(false);
    expect(await indexed(ended)).toBe(false);
  });
});
