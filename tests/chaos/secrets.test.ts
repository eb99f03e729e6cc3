import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import type { Redis } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { ProcessRuntime, danArgs } from '../../lib/runtime/index.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';
import { DAN, LogCapture, STAND_IN, StandInWorkspace, killPid, report, submitTasks, waitAllTerminal } from './harness.js';

// A run with a real-looking Anthropic API key in the orchestrator's environment. It reaches agents and the
// CLI (it must: the CLI needs it), the CLI prints it (the stand-in's `standin:leak`, as `printenv` in a Bash
// tool would), one task fails and one agent is killed (so the reaper keeps its last log lines in Redis). Then
// every key of the network, of every type, and every line the orchestrator and the agents wrote are searched
// for the key, whole or in part.

const API_KEY = `sk-ant-api03-${randomBytes(60).toString('base64url')}-${randomBytes(4).toString('hex')}AA`;
/** A part of the key no other text could contain by chance: a leak of a fragment counts too. */
const FRAGMENT = API_KEY.slice(20, 44);

describe('a real-looking API key in the environment', () => {
  let net: TestNetwork;
  let ws: StandInWorkspace;
  let logDir: string;
  let runtime: ProcessRuntime;
  let orchestrator: Orchestrator;
  const logs = new LogCapture();

  beforeAll(async () => {
    ws = await StandInWorkspace.create({ minMs: 100, maxMs: 300 });
    logDir = await mkdtemp(path.join(os.tmpdir(), 'dan-chaos-secret-logs-'));
    net = await openNetwork(
      {
        DAN_HEARTBEAT_MS: '250',
        DAN_HEARTBEAT_TTL_MS: '1500',
        DAN_REAPER_MS: '250',
        DAN_WORKSPACE: ws.dir,
        DAN_CLAUDE_BIN: STAND_IN,
        DAN_MAX_AGENTS_PER_DOMAIN: '2',
        // The most verbose agents and orchestrator: everything they could log, they do.
        DAN_LOG_LEVEL: 'trace',
      },
      'chaos-secret',
    );
    runtime = await ProcessRuntime.create(net.config, { entry: (spec) => [...DAN, ...danArgs(spec)], parentEnv: process.env, logDir });
    orchestrator = await Orchestrator.start({
      config: net.config,
      runtime,
      logger: createLogger({ level: 'trace', destination: logs }),
      // What `dan orchestrator` hands it: its own environment, key included.
      env: { ...process.env, ANTHROPIC_API_KEY: API_KEY, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' },
    });
  });

  afterAll(async () => {
    await orchestrator?.stop('down');
    await runtime?.stopAll({ timeoutMs: 2000 });
    await runtime?.close();
    await net?.cleanup();
    await ws?.remove();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it('appears in no Redis key and no log line', async () => {
    const ids = [
      ...(await submitTasks(net.bus, 12, { label: 'leaky', extra: 'standin:leak' })),
      ...(await submitTasks(net.bus, 3, { label: 'leaky and failing', extra: 'standin:leak standin:fail', maxAttempts: 1 })),
    ];
    // Kill one agent once it has registered: the reaper stores its last lines in its record.
    const victim = await eventually(async () => (await runtime.list()).find((h) => h.running && h.role === 'domain'), { what: 'an agent', timeoutMs: 30_000 });
    await eventually(async () => (await net.redis.sismember(net.bus.keys.agents, victim.agentId)) === 1, { what: 'the agent to register', timeoutMs: 30_000 });
    killPid(Number(victim.ref));
    await waitAllTerminal(net.bus, ids, 120_000);
    await eventually(async () => (await net.redis.hget(net.bus.keys.agent(victim.agentId), 'lastLogs')) !== null, {
      what: "the reaper to keep the killed agent's last lines",
      timeoutMs: 30_000,
    });

    // The CLI did print it, and the executor redacted it on the way to the task's log.
    const leaked = (await net.bus.logs.history(ids[0]!)).filter((e) => e.entry.text.startsWith('ANTHROPIC_API_KEY='));
    expect(leaked.length).toBeGreaterThan(0);
    expect(leaked[0]!.entry.text).toBe('ANTHROPIC_API_KEY=[redacted]');

    await orchestrator.stop('down'); // the agents' last lines reach their log files
    const dump = await dumpNetwork(net.redis, net.config.prefix);
    const agentLogs = await Promise.all((await readdir(logDir)).map((f) => readFile(path.join(logDir, f), 'utf8')));
    const lines = [...logs.lines, ...agentLogs.flatMap((text) => text.split('\n'))];
    expect(dump.keys).toBeGreaterThan(ids.length);
    expect(agentLogs.length).toBeGreaterThan(0);

    const inRedis = dump.entries.filter(([, value]) => value.includes(API_KEY) || value.includes(FRAGMENT)).map(([key]) => key);
    const inLogs = lines.filter((line) => line.includes(API_KEY) || line.includes(FRAGMENT));
    expect(inRedis).toEqual([]);
    expect(inLogs).toEqual([]);
    report('secret scan', { keysScanned: dump.keys, bytesScanned: dump.bytes, logLines: lines.length, agentLogFiles: agentLogs.length, found: inRedis.length + inLogs.length });
  }, 180_000);
});

/** Every key under a prefix with its whole value, whatever its type, as text. */
async function dumpNetwork(redis: Redis, prefix: string): Promise<{ keys: number; bytes: number; entries: Array<[string, string]> }> {
  const entries: Array<[string, string]> = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      switch (type) {
        case 'string':
          value = await redis.get(key);
          break;
        case 'hash':
          value = await redis.hgetall(key);
          break;
        case 'list':
          value = await redis.lrange(key, 0, -1);
          break;
        case 'set':
          value = await redis.smembers(key);
          break;
        case 'zset':
          value = await redis.zrange(key, '0', '-1', 'WITHSCORES');
          break;
        case 'stream':
          value = await redis.xrange(key, '-', '+');
          break;
        default:
          value = `(${type})`;
      }
      entries.push([key, `${key} ${JSON.stringify(value)}`]);
    }
  } while (cursor !== '0');
  return { keys: entries.length, bytes: entries.reduce((n, [, v]) => n + v.length, 0), entries };
}
