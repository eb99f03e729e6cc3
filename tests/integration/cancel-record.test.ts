import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { taskSpecSchema } from '../../lib/task.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { openNetwork } from '../helpers/network.js';
import { itWith } from '../helpers/world.js';

// A cancel is authoritative once it is on the record (issue 16, item 7): the control message that tells the agent
// is only a shortcut. One lost in a reconnect is caught by the agent's next heartbeat, and a run that completes
// anyway is recorded cancelled, never completed.

const withHarness = itWith(() => AgentHarness.create('cancelrec'));

describe('a cancel request on the record', () => {
  it('turns a completed result into cancelled: the result script refuses completed once cancel was requested', async () => {
    const net = await openNetwork({}, 'cancelrec');
    try {
      const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'work', timeoutS: 60, maxAttempts: 3 }));
      await net.bus.tasks.transition(id, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1' } });
      expect((await net.bus.tasks.requestCancel(id, 'not needed any more')).outcome).toBe('ok');
      const result = await net.bus.tasks.transition(id, 'completed', { expectAgent: 'a1', expectAttempts: 1, fields: { result: 'done anyway' } });
      expect(result.outcome).toBe('cancelled');
      const record = await net.bus.tasks.get(id);
      expect(record).toMatchObject({ status: 'cancelled', reason: 'not needed any more' });
      expect(record.result).toBeUndefined();
      const last = (await net.bus.logs.history(id)).at(-1)!.entry;
      expect(last).toMatchObject({ type: 'status', status: 'cancelled' });
    } finally {
      await net.cleanup();
    }
  });

  withHarness('stops the run at the next heartbeat when the cancel message never reached the agent', async ({ w }) => {
    const open = w.gate();
    await w.startAgent();
    const task = await w.submit('say hi');
    await w.modelCalled();
    // What `dan cancel` writes, without the control message (as if it was lost in a reconnect).
    expect((await w.bus.tasks.requestCancel(task.id, 'changed my mind')).outcome).toBe('ok');
    await sleep(3000); // many heartbeats
    open(); // the model answers: a run still going would now complete
    const done = await w.waitForEnd(task.id, 30_000);
    expect(done).toMatchObject({ status: 'cancelled', reason: 'changed my mind' });
    expect(done.result ?? '').not.toContain('Echo');
  });
});
