import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunGate } from '../../lib/messaging/index.js';
import type { LogEntry, TaskRecord } from '../../lib/task.js';
import { conversationRequests, echoScenario } from '../fixtures/model-server.js';
import { credentialFingerprint, type RecordedRequest } from '../fixtures/model-request.js';
import type { Turn } from '../fixtures/model-turns.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { DanProcess } from '../helpers/dan-process.js';
import { killQuietly, processesIn } from '../helpers/processes.js';
import { eventually, openNetwork, type TestNetwork } from '../helpers/network.js';

// Usage limits and rate limits pause, they do not fail (issue 12): the token (or the network) waits out the reset,
// the task goes back to its queue without using an attempt, and agents on other tokens go on.

const TOKEN_A = 'sk-ant-oat01-limits-test-token-a';
const TOKEN_B = 'sk-ant-oat01-limits-test-token-b';
/** An agent on subscription token #index (as the orchestrator's pool starts one), not on the API key. */
const onToken = (index: number, token: string): [Record<string, string>, Record<string, string>] => [
  { DAN_TOKEN_INDEX: String(index) },
  { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: token },
];

/** Anthropic's answer when a subscription's five-hour window is used up, resetting at `resetS` (epoch seconds). */
function usageLimit(resetS: number): Turn {
  return {
    status: 429,
    errorType: 'rate_limit_error',
    message: 'usage limit',
    headers: {
      'anthropic-ratelimit-unified-status': 'rejected',
      'anthropic-ratelimit-unified-reset': String(resetS),
      'anthropic-ratelimit-unified-representative-claim': 'five_hour',
      'retry-after': '3',
    },
  };
}

const byToken = (requests: readonly RecordedRequest[], token: string): RecordedRequest[] =>
  conversationRequests(requests).filter((r) => r.credential === credentialFingerprint(token));

const trail = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);

describe('pauses after limits (the pause script, real Redis)', () => {
  let net: TestNetwork | undefined;
  afterEach(async () => {
    await net?.cleanup();
    net = undefined;
  });

  it('pauses until the reset time given, else backs off 30 s doubling to 15 minutes, and never shortens a pause', async () => {
    net = await openNetwork({}, 'pause');
    let now = Date.UTC(2030, 0, 1, 12, 0);
    const gate = new RunGate(net.bus.redis, net.bus.keys, { now: () => now });
    const limit = { kind: 'rate_limit' as const, message: 'API Error: Request rejected (429)' };

    const backoffs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const until = await gate.pause('network', limit);
      backoffs.push(until - now);
      now = until; // the next limit comes the moment the pause ends
    }
    expect(backoffs).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000]);

    // Quiet for longer than the longest backoff: the next limit starts again at 30 s.
    now += 900_001;
    expect((await gate.pause('network', limit)) - now).toBe(30_000);

    // A reset time wins, but never shortens a pause that lasts longer.
    const resetsAt = now + 3_600_000;
    expect(await gate.pause('token:1', { kind: 'usage_limit', resetsAt, message: 'session limit' })).toBe(resetsAt);
    expect(await gate.pause('token:1', { kind: 'usage_limit', resetsAt: now + 60_000, message: 'session limit' })).toBe(resetsAt);

    expect((await gate.pauses()).map((p) => [p.scope, p.kind])).toEqual([['network', 'rate_limit'], ['token:1', 'usage_limit']]);
    expect(await gate.admit('agent-1', 'task-1', ['token:0', 'network'])).toMatchObject({ admitted: false, why: 'paused', pause: { scope: 'network' } });
    now += 30_000;
    expect(await gate.admit('agent-1', 'task-1', ['token:1', 'network'])).toMatchObject({ admitted: false, why: 'paused', untilMs: resetsAt, pause: { scope: 'token:1', kind: 'usage_limit' } });
    // No heartbeat for agent-1 here, so its slot would be freed by the next admit: only the answer matters.
    expect(await gate.admit('agent-1', 'task-1', ['token:0', 'network'])).toEqual({ admitted: true });
  });
});

describe('usage and rate limits with the real claude CLI', () => {
  let w: AgentHarness | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('pauses the token that hit its usage limit and runs the task again after the reset, without using an attempt', { timeout: 300_000 }, async () => {
    w = await AgentHarness.create('pause');
    const harness = w;
    // The first call of token A is refused until a reset a few seconds ahead; later calls are answered.
    let resetMs = 0;
    const seenAt: number[] = [];
    harness.script = (req) => {
      if (req.side) return echoScenario()(req);
      seenAt.push(Date.now());
      if (resetMs === 0) {
        resetMs = (Math.ceil(Date.now() / 1000) + 4) * 1000;
        return usageLimit(resetMs / 1000);
      }
      return echoScenario()(req);
    };
    const [settings, claudeEnv] = onToken(0, TOKEN_A);
    await w.startAgent('backend-a', settings, claudeEnv);
    // One attempt only: had the limited run used it, the task could not run again.
    const task = await w.submit('say hi after the limit', { maxAttempts: 1 });
    const done = await w.waitForEnd(task.id, 240_000);

    expect(done).toMatchObject({ status: 'completed', attempts: 1, tokenIndex: 0 });
    const entries = (await w.bus.logs.history(task.id)).map((e) => e.entry);
    expect(trail(entries)).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    const handedBack = entries.filter((e) => e.type === 'status')[2]!;
    expect(handedBack.text).toMatch(/^subscription token #0 hit a usage limit: paused until \d\d:\d\d UTC \(usage limit\); the task waits, no attempt used; back on the queue \(attempt 1 not counted\)$/);
    // The pause is kept in Redis until the reset the CLI gave; no CLI of the token called the model before it.
    const kept = JSON.parse((await w.bus.redis.hget(w.bus.keys.pauses, 'token:0')) ?? '{}') as Record<string, string>;
    expect(kept).toMatchObject({ kind: 'usage_limit', untilMs: String(resetMs), failures: '1' });
    expect(byToken(w.server.requests, TOKEN_A).length).toBe(2);
    expect(seenAt.length).toBe(2);
    // Timers may fire a few ms early against the wall clock; the retry must not come before the reset.
    expect(seenAt[1]!).toBeGreaterThanOrEqual(resetMs - 50);
  });

  it("lets the other token's agents go on while one token is paused", { timeout: 400_000 }, async () => {
    w = await AgentHarness.create('pause2');
    // Token A's window is used up for an hour, longer than this test; token B is answered.
    const resetS = Math.ceil(Date.now() / 1000) + 3600;
    w.script = (req) => (!req.side && req.credential === credentialFingerprint(TOKEN_A) ? usageLimit(resetS) : echoScenario()(req));
    const [settingsA, envA] = onToken(0, TOKEN_A);
    const [settingsB, envB] = onToken(1, TOKEN_B);
    await w.startAgent('backend-a', settingsA, envA);
    const first = await w.submit('first task, hits the limit');
    const paused = await eventually(async () => (await w!.bus.gate.pauses()).find((p) => p.scope === 'token:0'), { what: 'token 0 to pause', timeoutMs: 120_000 });
    expect(paused).toMatchObject({ kind: 'usage_limit', untilMs: resetS * 1000 });
    const callsOfA = byToken(w.server.requests, TOKEN_A).length;

    await w.startAgent('backend-b', settingsB, envB);
    const more = [await w.submit('second task'), await w.submit('third task')];
    const done: TaskRecord[] = [];
    for (const task of [first, ...more]) done.push(await w.waitForEnd(task.id, 180_000));

    for (const record of done) expect(record).toMatchObject({ status: 'completed', attempts: 1, tokenIndex: 1, agent: 'backend-b' });
    // The limited run's attempt was not counted: the first task completed on its first counted attempt.
    const firstTrail = trail((await w.bus.logs.history(first.id)).map((e) => e.entry));
    expect(firstTrail).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    // The paused token's agent started no CLI while its token was paused; the network was never paused.
    expect(byToken(w.server.requests, TOKEN_A).length).toBe(callsOfA);
    expect((await w.bus.gate.pauses()).map((p) => p.scope)).toEqual(['token:0']);
  });
});

/** Whether an agent of the harness said it takes no task for a while, for this reason. */
const heldFor = (w: AgentHarness, why: RegExp): boolean =>
  w.logs.lines.some((line) => {
    const entry = JSON.parse(line) as { msg?: string; why?: string };
    return entry.msg === 'taking no task until then' && why.test(entry.why ?? '');
  });

describe('a token the API rejects (401)', () => {
  let w: AgentHarness | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('fails the task saying so, marks the token bad, and the other token goes on', { timeout: 400_000 }, async () => {
    w = await AgentHarness.create('badtoken');
    w.script = (req) =>
      !req.side && req.credential === credentialFingerprint(TOKEN_A)
        ? { status: 401, errorType: 'authentication_error', message: 'OAuth token has expired or been revoked' }
        : echoScenario()(req);
    const [settingsA, envA] = onToken(0, TOKEN_A);
    const [settingsB, envB] = onToken(1, TOKEN_B);
    await w.startAgent('backend-a', settingsA, envA);
    const rejected = await w.waitForEnd((await w.submit('runs on the revoked token')).id, 120_000);
    expect(rejected).toMatchObject({ status: 'failed', reason: 'unauthorized', tokenIndex: 0, attempts: 1 });
    expect(rejected.error).toMatch(/^the API rejected the credential \(401\)/);
    expect((await w.bus.gate.pauses()).map((p) => [p.scope, p.kind])).toEqual([['token:0', 'unauthorized']]);
    const callsOfA = byToken(w.server.requests, TOKEN_A).length;

    await w.startAgent('backend-b', settingsB, envB);
    const more = [await w.submit('second task'), await w.submit('third task')];
    for (const task of more) expect(await w.waitForEnd(task.id, 180_000)).toMatchObject({ status: 'completed', tokenIndex: 1, attempts: 1 });
    // The bad token's agent started no other CLI: no task of it failed for the same reason meanwhile.
    expect(byToken(w.server.requests, TOKEN_A).length).toBe(callsOfA);
  });
});

describe('DAN_MAX_RUNNING and DAN_DAILY_BUDGET_USD with the real claude CLI', () => {
  let w: AgentHarness | undefined;
  const children: DanProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await child.exited;
    }
    await w?.close();
    w = undefined;
  });

  it('runs at most DAN_MAX_RUNNING CLIs at once, and a SIGKILLed agent does not keep its slot', { timeout: 400_000 }, async () => {
    w = await AgentHarness.create('maxrun');
    await w.bus.gate.publishLimits({ maxRunning: 1 });
    const open = w.gate();
    await w.startAgent('backend-a');
    await w.startAgent('backend-b');
    const tasks = [await w.submit('first of two'), await w.submit('second of two')];
    await w.modelCalled();
    // The other agent was refused a slot while the first run holds the only one.
    await eventually(() => heldFor(w!, /DAN_MAX_RUNNING \(1\)/), { what: 'an agent to be refused a running slot', timeoutMs: 120_000 });
    expect(await w.bus.gate.running()).toHaveLength(1);
    expect(conversationRequests(w.server.requests)).toHaveLength(1);
    open();
    const [one, two] = [await w.waitForEnd(tasks[0]!.id, 150_000), await w.waitForEnd(tasks[1]!.id, 150_000)];
    expect([one.status, two.status]).toEqual(['completed', 'completed']);
    expect([one.attempts, two.attempts]).toEqual([1, 1]);
    // One after the other: the second was taken only after the first's result was recorded.
    const [earlier, later] = one.startedAt! < two.startedAt! ? [one, two] : [two, one];
    expect(later.startedAt!).toBeGreaterThanOrEqual(earlier.finishedAt!);
    // The slot is freed just after the result is recorded.
    await eventually(async () => (await w!.bus.gate.running()).length === 0, { what: 'the running slot to be freed', timeoutMs: 10_000 });

    // An agent SIGKILLed mid-run frees its slot when its heartbeat lapses, with no reaper running.
    for (const agent of w.agents.splice(0)) await agent.stop('stopped', { graceMs: 0 });
    const reopen = w.gate();
    const killed = DanProcess.start(['agent', '--domain', 'backend', '--id', 'backend-killed'], {
      REDIS_URL: w.net.config.redisUrl,
      DAN_NETWORK: w.net.network,
      DAN_WORKSPACE: w.workspace,
      DAN_CLAUDE_BIN: path.join(repoRoot(), 'node_modules', '.bin', 'claude'),
      DAN_HEARTBEAT_MS: '200',
      DAN_HEARTBEAT_TTL_MS: '1500',
      DAN_LOG_LEVEL: 'info',
      ANTHROPIC_BASE_URL: w.server.url,
      ANTHROPIC_API_KEY: 'sk-ant-api03-limits-child-0000000000000000000000',
    });
    children.push(killed);
    const held = await w.submit('held by the agent that dies');
    await w.waitFor(held.id, (r) => r.status === 'active' && r.agent === 'backend-killed', 'the child agent to take the task', 150_000);
    expect(await w.bus.gate.running()).toEqual([`backend-killed|${held.id}`]);
    killed.kill('SIGKILL');
    await killed.exited;
    for (const pid of await processesIn(w.workspace)) killQuietly(pid);
    reopen();
    await w.startAgent('backend-c');
    const after = await w.submit('runs once the dead agent\'s slot is freed');
    expect(await w.waitForEnd(after.id, 150_000)).toMatchObject({ status: 'completed', agent: 'backend-c' });
  });

  it("holds queued tasks once today's spend reaches DAN_DAILY_BUDGET_USD, and releases them when it is raised", { timeout: 400_000 }, async () => {
    w = await AgentHarness.create('budget');
    await w.bus.gate.publishLimits({ dailyBudgetUsd: 0.000001 });
    await w.startAgent('backend-a');
    // Under the budget when it starts: a run is never stopped by the daily budget, it counts what it cost.
    const first = await w.waitForEnd((await w.submit('spends the budget')).id, 150_000);
    expect(first).toMatchObject({ status: 'completed' });
    expect(first.costUsd).toBeGreaterThan(0);
    const spend = await w.bus.gate.spendToday();
    expect(Object.keys(spend)).toEqual(['backend']);
    expect(spend.backend).toBeCloseTo(first.costUsd!, 9);

    const second = await w.submit('waits for a raised budget');
    await eventually(() => heldFor(w!, /reached the daily budget/), { what: 'the agent to hold the task for the budget', timeoutMs: 120_000 });
    expect(await w.bus.tasks.get(second.id)).toMatchObject({ status: 'queued', attempts: 0 });
    const env = { REDIS_URL: w.net.config.redisUrl, DAN_NETWORK: w.net.network, DAN_WORKSPACE: w.workspace };
    const listed = await runDan(['tasks'], env);
    expect(String(listed.stdout)).toMatch(new RegExp(`${second.id}\\s+backend\\s+queued \\(budget\\)`));
    const cost = await runDan(['tasks', '--cost', '--json'], env);
    expect(JSON.parse(String(cost.stdout))).toMatchObject({ dailyBudgetUsd: 0.000001, byDomain: { backend: spend.backend } });

    // Raised (as a restarted leader publishes it): the held task runs.
    await w.bus.gate.publishLimits({ dailyBudgetUsd: 100 });
    // (No attempt was used while it was held: checked above. Once it runs, a busy machine may need a second.)
    expect(await w.waitForEnd(second.id, 150_000)).toMatchObject({ status: 'completed' });
  });
});
