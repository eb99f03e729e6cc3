import { afterEach, describe, expect, it } from 'vitest';
import { LogWriter } from '../../lib/agent/log-writer.js';
import { createLogger } from '../../lib/log.js';
import { createRedis, Keys, LogStream, type Redis } from '../../lib/messaging/index.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { LogCapture } from '../helpers/log-capture.js';
import { eventually, uniqueNetwork } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';

// The log writer retries only what a retry can fix (the connection), and a log that Redis refuses never holds
// back a task's result (issue 16, item 10).

/** Resolves to 'flushed', or 'stuck' when `flush()` has not resolved within `ms`. */
async function flushedWithin(writer: LogWriter, ms: number): Promise<'flushed' | 'stuck'> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), ms)));
  try {
    return await Promise.race([writer.flush().then(() => 'flushed' as const), stuck]);
  } finally {
    clearTimeout(timer);
  }
}

describe('the log writer', () => {
  let server: RedisServer | undefined;
  let redis: Redis | undefined;
  let harness: AgentHarness | undefined;

  afterEach(async () => {
    redis?.disconnect();
    await server?.stop();
    await harness?.close();
    server = undefined;
    redis = undefined;
    harness = undefined;
  });

  async function writerOn(url: string): Promise<{ writer: LogWriter; keys: Keys; capture: LogCapture }> {
    redis = createRedis(url, { name: 'log-writer-test' });
    redis.on('error', () => {});
    const keys = new Keys(`${uniqueNetwork('logw')}:`);
    const capture = new LogCapture();
    const writer = new LogWriter(new LogStream(redis, keys, { maxLen: 1000 }), 'T1', createLogger({ level: 'debug', destination: capture }), { retryMs: 50 });
    return { writer, keys, capture };
  }

  it('drops entries Redis refuses (a stream key of another type) instead of retrying them for ever', async () => {
    server = await RedisServer.start();
    const { writer, keys, capture } = await writerOn(server.url());
    await redis!.set(keys.taskLog('T1'), 'not a stream');
    writer.push({ type: 'info', text: 'one' });
    writer.push({ type: 'info', text: 'two' });
    expect(await flushedWithin(writer, 10_000)).toBe('flushed');
    expect(await redis!.get(keys.taskLog('T1'))).toBe('not a stream');
    expect(capture.messages()).toContain('Redis refused the log entries; dropped them');
    // It keeps working for the entries that can be stored.
    await redis!.del(keys.taskLog('T1'));
    writer.push({ type: 'info', text: 'three' });
    await writer.flush();
    expect(await redis!.xlen(keys.taskLog('T1'))).toBe(1);
  });

  it('keeps entries through a Redis outage and stores them when it is back', async () => {
    server = await RedisServer.start();
    const { writer, keys } = await writerOn(server.url());
    writer.push({ type: 'info', text: 'before' });
    await writer.flush();
    await server.kill();
    writer.push({ type: 'info', text: 'during 1' });
    writer.push({ type: 'info', text: 'during 2' });
    expect(await flushedWithin(writer, 500)).toBe('stuck');
    await server.restart(); // no append-only file: it comes back empty
    expect(await flushedWithin(writer, 20_000)).toBe('flushed');
    const texts = (await redis!.xrange(keys.taskLog('T1'), '-', '+')).map(([, fields]) => (JSON.parse(fields[1]!) as { text: string }).text);
    expect(texts).toEqual(['during 1', 'during 2']);
  });

  it("lets the agent record the task's result when its log stream cannot take entries", async () => {
    harness = await AgentHarness.create('logfault');
    const open = harness.gate();
    await harness.startAgent();
    const task = await harness.submit('say hi');
    await harness.modelCalled();
    // While the CLI runs, the task's log key becomes a string: every append the agent makes is refused.
    await harness.bus.redis.multi().del(harness.bus.keys.taskLog(task.id)).set(harness.bus.keys.taskLog(task.id), 'broken').exec();
    open();
    const done = await harness.waitForEnd(task.id, 30_000);
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(done.result).toContain('Echo: say hi');
    await eventually(() => harness!.logs.messages().includes('Redis refused the log entries; dropped them'), { what: 'the dropped entries to be logged' });
  });
});
