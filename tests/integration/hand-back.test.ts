import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRedis, type Redis, type TaskJobData } from '../../lib/messaging/index.js';
import { releaseAgentTasks } from '../../lib/orchestrator/index.js';
import { taskSpecSchema } from '../../lib/task.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';

// A dead agent's task goes back on its queue when the reaper releases it, at once (one atomic BullMQ script), instead of after BullMQ's
// stalled-job check (two passes after the job's lock lapses). A job whose lock is still held is left alone.

const LOCK_MS = 400;

describe('handing a dead agent\'s job back to its queue', () => {
  let net: TestNetwork;
  let connection: Redis;
  let worker: Worker<TaskJobData> | undefined;

  beforeEach(async () => {
    net = await openNetwork({}, 'requeue');
    connection = createRedis(net.config.redisUrl, { name: `${net.network}-worker` });
  });
  afterEach(async () => {
    await worker?.close(true).catch(() => {});
    worker = undefined;
    connection.disconnect();
    await net.cleanup();
  });

  /** A task taken by a worker that then dies holding it: its lock is no longer renewed. */
  async function takenByAWorkerThatDies(die: boolean): Promise<string> {
    const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'held', timeoutS: 60, maxAttempts: 3 }));
    let taken!: () => void;
    const isTaken = new Promise<void>((resolve) => (taken = resolve));
    worker = new Worker<TaskJobData>(
      'backend',
      async () => {
        taken();
        await new Promise(() => {}); // works for ever
      },
      // No stalled check of its own: only the code under test may move the job.
      { connection, prefix: net.bus.keys.queuePrefix, lockDuration: LOCK_MS, stalledInterval: 3_600_000, skipStalledCheck: true },
    );
    worker.on('error', () => {});
    await isTaken;
    await net.bus.tasks.transition(id, 'active', { mode: 'claim', agent: 'agent-1', fields: { agent: 'agent-1' } });
    if (die) {
      await worker.close(true); // like SIGKILL: the lock is not renewed, nothing is handed back
      await sleep(LOCK_MS + 200);
    }
    return id;
  }

  it('puts the job of a released task back on the queue at once', async () => {
    const id = await takenByAWorkerThatDies(true);
    expect(await net.bus.queues.queue('backend').getJobState(id)).toBe('active');
    const released = await releaseAgentTasks(net.bus, { id: 'agent-1', taskIds: [id] }, 'died');
    expect(released).toEqual([id]);
    expect(await net.bus.tasks.get(id)).toMatchObject({ status: 'queued', attempts: 1 });
    expect(['waiting', 'prioritized']).toContain(await net.bus.queues.queue('backend').getJobState(id));
    expect(await net.bus.queues.counts('backend')).toEqual({ waiting: 1, active: 0 });
  });

  it('leaves a job whose lock is still held to the stalled-job check', async () => {
    const id = await takenByAWorkerThatDies(false);
    expect(await net.bus.queues.handBack('backend', id)).toBe(false);
    expect(await net.bus.queues.queue('backend').getJobState(id)).toBe('active');
  });

  it('removes the job of a task that failed for good', async () => {
    const id = await takenByAWorkerThatDies(true);
    await net.redis.hset(net.bus.keys.task(id), 'maxAttempts', '1');
    await releaseAgentTasks(net.bus, { id: 'agent-1', taskIds: [id] }, 'died');
    expect(await net.bus.tasks.get(id)).toMatchObject({ status: 'failed' });
    await eventually(async () => (await net.bus.queues.queue('backend').getJobState(id)) === 'unknown', { what: 'the job to be gone' });
  });
});
