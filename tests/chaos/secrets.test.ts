import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from '../../lib/messaging/index.js';
import { eventually, readNetwork } from '../helpers/network.js';
import { killQuietly } from '../helpers/processes.js';
import { report, submitTasks, waitAllTerminal } from './harness.js';
import { OrchestratedNetwork } from './orchestrated-network.js';

// A run with a real-looking Anthropic API key in the orchestrator's environment. It reaches agents and the
// CLI (it must: the CLI needs it), the CLI prints it (the stand-in's `standin:leak`, as `printenv` in a Bash
// tool would), one task fails and one agent is killed (so the reaper keeps its last log lines in Redis). Then
// every key of the network, of every type, and every line the orchestrator and the agents wrote are searched
// for the key, whole or in part.

const API_KEY = `sk-ant-api03-${randomBytes(60).toString('base64url')}-${randomBytes(4).toString('hex')}AA`;
/** A part of the key no other text could contain by chance: a leak of a fragment counts too. */
const FRAGMENT = API_KEY.slice(20, 44);
/** Every other credential the CLI is given (lib/config.ts, SECRET_ENV): a pool of two subscription tokens, AWS keys. */
const fake = (prefix: string): string => `${prefix}${randomBytes(30).toString('base64url')}`;
const OTHER_SECRETS: Record<string, string> = {
  CLAUDE_CODE_OAUTH_TOKEN: `${fake('sk-ant-oat01-')},${fake('sk-ant-oat01-')}`,
  AWS_ACCESS_KEY_ID: fake('AKIA'),
  AWS_SECRET_ACCESS_KEY: fake('aws-'),
  AWS_SESSION_TOKEN: fake('aws-session-'),
  AWS_BEARER_TOKEN_BEDROCK: fake('bedrock-'),
};
/** What must not appear anywhere: each value, each token of the pool, and a fragment of each. */
const NEEDLES = [API_KEY, FRAGMENT, ...Object.values(OTHER_SECRETS).flatMap((v) => v.split(',')).flatMap((v) => [v, v.slice(6, 30)])];

describe('a real-looking API key in the environment', () => {
  let run: OrchestratedNetwork;

  beforeAll(async () => {
    run = await OrchestratedNetwork.start({
      label: 'chaos-secret',
      workspace: { minMs: 100, maxMs: 300 },
      settings: { DAN_HEARTBEAT_MS: '250', DAN_HEARTBEAT_TTL_MS: '1500', DAN_REAPER_MS: '250', DAN_MAX_AGENTS_PER_DOMAIN: '2' },
      // The most verbose agents and orchestrator: everything they could log, they do.
      logLevel: 'trace',
      // What `dan orchestrator` hands it: its own environment, key included.
      env: { ...process.env, ANTHROPIC_API_KEY: API_KEY, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ...OTHER_SECRETS },
    });
  });

  afterAll(async () => {
    await run?.close();
  });

  it('appears in no Redis key and no log line', async () => {
    const { bus, redis, runtime, logs, logDir } = run;
    const ids = [
      ...(await submitTasks(bus, 12, { label: 'leaky', extra: 'standin:leak' })),
      ...(await submitTasks(bus, 3, { label: 'leaky and failing', extra: 'standin:leak standin:fail', maxAttempts: 1 })),
    ];
    // Kill one agent once it has registered: the reaper stores its last lines in its record.
    const victim = await eventually(async () => (await runtime.list()).find((h) => h.running && h.role === 'domain'), { what: 'an agent', timeoutMs: 30_000 });
    await eventually(async () => (await redis.sismember(bus.keys.agents, victim.agentId)) === 1, { what: 'the agent to register', timeoutMs: 30_000 });
    // The agent got the key on stdin: its environment (what /proc/<pid>/environ shows a same-uid reader) holds none.
    const environ = await readFile(`/proc/${victim.ref}/environ`, 'utf8');
    expect(environ.split('\0')).toContain('DAN_SECRETS=stdin');
    expect(environ.includes(API_KEY) || environ.includes(FRAGMENT)).toBe(false);
    killQuietly(Number(victim.ref));
    await waitAllTerminal(bus, ids, 120_000);
    await eventually(async () => (await redis.hget(bus.keys.agent(victim.agentId), 'lastLogs')) !== null, {
      what: "the reaper to keep the killed agent's last lines",
      timeoutMs: 30_000,
    });

    // The CLI did print it, and the executor redacted it on the way to the task's log.
    const leaked = (await bus.logs.history(ids[0]!)).filter((e) => e.entry.text.startsWith('ANTHROPIC_API_KEY='));
    expect(leaked.length).toBeGreaterThan(0);
    expect(leaked[0]!.entry.text).toBe('ANTHROPIC_API_KEY=[redacted]');

    await run.orchestrator.stop('down'); // the agents' last lines reach their log files
    const dump = await dumpNetwork(redis, bus.keys.prefix);
    const agentLogs = await Promise.all((await readdir(logDir)).map((f) => readFile(path.join(logDir, f), 'utf8')));
    const lines = [...logs.lines, ...agentLogs.flatMap((text) => text.split('\n'))];
    expect(dump.keys).toBeGreaterThan(ids.length);
    expect(agentLogs.length).toBeGreaterThan(0);

    // The other credentials reached the CLI too, and were redacted the same way.
    const history = await bus.logs.history(ids[0]!);
    for (const name of Object.keys(OTHER_SECRETS)) {
      expect(history.find((e) => e.entry.text.startsWith(`${name}=`))?.entry.text).toBe(`${name}=[redacted]`);
    }
    const inRedis = dump.entries.filter(([, value]) => NEEDLES.some((n) => value.includes(n))).map(([key]) => key);
    const inLogs = lines.filter((line) => NEEDLES.some((n) => line.includes(n)));
    expect(inRedis).toEqual([]);
    expect(inLogs).toEqual([]);
    report('secret scan', { keysScanned: dump.keys, bytesScanned: dump.bytes, logLines: lines.length, agentLogFiles: agentLogs.length, found: inRedis.length + inLogs.length });
  }, 180_000);
});

/** Every key under a prefix with its whole value, whatever its type, as text. */
async function dumpNetwork(redis: Redis, prefix: string): Promise<{ keys: number; bytes: number; entries: Array<[string, string]> }> {
  const entries = (await readNetwork(redis, prefix)).map(({ key, type, value }): [string, string] => [key, `${key} ${JSON.stringify(value ?? `(${type})`)}`]);
  return { keys: entries.length, bytes: entries.reduce((n, [, v]) => n + v.length, 0), entries };
}
