import { describe, expect, it } from 'vitest';
import { conversationRequests } from '../fixtures/model-server.js';
import { taskSpecSchema } from '../../lib/task.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { eventually, openNetwork } from '../helpers/network.js';
import { itWith } from '../helpers/world.js';

// A live agent whose job lock lapsed (a stall under CPU throttling while its heartbeat lived) must not end up
// running its task beside another CLI (issue 16, item 8): the claim leaves an active record alone while the agent it
// names is live, and an agent whose lock renewal fails stops the run and hands the task back.

const withHarness = itWith(() => AgentHarness.create('lapse'));

describe('a job lock that lapses under a live agent', () => {
  it('is not claimed from active while the agent the record names has a heartbeat; it is once that agent is gone', async () => {
    const net = await openNetwork({}, 'lapse');
    try {
      const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'work', timeoutS: 60, maxAttempts: 3 }));
      const claim = (agent: string) => net.bus.tasks.transition(id, 'active', { mode: 'claim', unlessHolderLive: true, agent, fields: { agent } });
      expect((await claim('a1')).outcome).toBe('ok');
      await net.bus.redis.set(net.bus.keys.heartbeat('a1'), '1', 'PX', 60_000);

      expect((await claim('a2')).outcome).toBe('busy');
      expect(await net.bus.tasks.get(id)).toMatchObject({ status: 'active', agent: 'a1', attempts: 1 });

      await net.bus.redis.del(net.bus.keys.heartbeat('a1')); // a1 died: its task may be taken
      expect((await claim('a2')).outcome).toBe('ok');
      expect(await net.bus.tasks.get(id)).toMatchObject({ status: 'active', agent: 'a2', attempts: 2 });
    } finally {
      await net.cleanup();
    }
  });

  withHarness('stops the run when the lock cannot be renewed, hands the task back, and runs it once more, never twice at once', { timeout: 120_000 }, async ({ w }) => {
    const open = w.gate();
    await w.startAgent();
    const task = await w.submit('say hi');
    await w.modelCalled();
    // The lock lapsing in a stall, as another agent's claim or the stalled-job check would then find it.
    const queue = w.bus.queues.queue('backend');
    await w.bus.redis.del(`${queue.toKey(task.id)}:lock`);

    const lapsed = await w.waitFor(task.id, (r) => r.attempts === 2 && r.status === 'active', 'the second attempt to start');
    expect(lapsed.agent).toBe('backend-1');
    const log = (await w.bus.logs.history(task.id)).map((e) => e.entry);
    expect(log.some((e) => e.type === 'status' && e.status === 'queued' && /job lock/.test(e.text ?? ''))).toBe(true);
    // The first attempt's CLI is gone before the second one asks the model: one conversation at a time.
    await eventually(() => conversationRequests(w.server.requests).length >= 2, { what: 'the second attempt to call the model', timeoutMs: 30_000 });
    open();
    const done = await w.waitForEnd(task.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
    expect(w.logs.lines.some((l) => /job lock of this task could not be renewed/.test(l))).toBe(true);
  });
});
