import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import type { ProcessRuntime } from '../../lib/runtime/index.js';
import type { LogEntry } from '../../lib/task.js';
import { conversationRequests, credentialFingerprint, writeFileScenario, type TurnChooser } from '../fixtures/model-server.js';
import { connectRedis, roleUser, type Redis } from '../../lib/messaging/index.js';
import { runDan } from '../helpers/cli.js';
import type { DanProcess } from '../helpers/dan-process.js';
import { eventually } from '../helpers/network.js';
import { isAlive, processesIn } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';
import { World, itWith } from '../helpers/world.js';

// The orchestrator on the process runtime, end to end: a real Orchestrator (in this process, or `dan
// orchestrator`/`dan up` as children) spawns real `dan agent` processes, which run the real claude binary
// against the scripted model server and Redis. Nothing is mocked.

/** Short liveness timings for every process of these tests: reaping and takeover happen within seconds. */
const TIMINGS = {
  DAN_HEARTBEAT_MS: '200',
  DAN_HEARTBEAT_TTL_MS: '1200',
  DAN_REAPER_MS: '200',
  DAN_IDLE_TIMEOUT_MS: '2000',
  DAN_SHUTDOWN_GRACE_MS: '300',
};

const it = itWith(() => World.create({ label: 'orch', settings: TIMINGS, waitTimeoutMs: 45_000 }));

/** The first `count` conversation turns never answer (those attempts hang until killed); later turns use `then`. */
function hangFirst(count: number, then: TurnChooser = writeFileScenario()): TurnChooser {
  let hung = 0;
  return (req) => (!req.hasToolResult && hung++ < count ? { hang: true } : then(req));
}

/** Each task's first model turn takes `delayMs`: tasks that take a while. */
function slow(delayMs: number, then: TurnChooser = writeFileScenario()): TurnChooser {
  return (req) => (req.hasToolResult ? then(req) : { ...then(req), delayMs });
}

/** Resolves once the model has received `count` conversation turns. */
async function modelCalled(w: World, count: number): Promise<void> {
  await eventually(() => conversationRequests(w.server.requests).length >= count, { what: `model turn ${count}`, timeoutMs: 30_000 });
}

/** Polls the orchestrator's runtime and the registry while a scenario runs, keeping the largest counts seen. */
function sampleAgents(w: World, runtime: ProcessRuntime): { stop(): Promise<{ running: number; live: number; byDomain: Record<string, number> }> } {
  const max = { running: 0, live: 0, byDomain: {} as Record<string, number> };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const running = (await runtime.list()).filter((h) => h.running);
      max.running = Math.max(max.running, running.length);
      for (const domain of new Set(running.map((h) => h.domain))) {
        max.byDomain[domain] = Math.max(max.byDomain[domain] ?? 0, running.filter((h) => h.domain === domain).length);
      }
      max.live = Math.max(max.live, (await w.liveAgents()).length);
      await sleep(50);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return max;
    },
  };
}

const statusTrail = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);

describe('orchestrator on the process runtime', { timeout: 90_000 }, () => {
  it('spawns an agent for a backend task when none is alive; the agent registers and completes it', async ({ w }) => {
    const orchestrator = await w.startOrchestrator('orch-1');
    expect(await w.liveAgents()).toEqual([]);
    const task = await w.submit('Create the file spawned.txt');

    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(done.agent).toMatch(/^backend-[0-9a-f]{8}$/);
    expect(orchestrator.stats.spawned).toBe(1);
    const agent = await w.registry().get(done.agent!);
    expect(agent).toMatchObject({ role: 'domain', domain: 'backend', runtime: 'process' });
    expect(await readFile(path.join(w.workspace, 'spawned.txt'), 'utf8')).toContain('Create the file spawned.txt');
    expect(orchestrator.isLeader).toBe(true);
  });

  it('never spawns for a domain that has no template folder', async ({ w }) => {
    const orchestrator = await w.startOrchestrator('orch-1');
    // The CLI checks the domain against its own templates; on the bus a stray domain is just a queue, which the
    // orchestrator refuses (the next test) and never spawns for.
    const stray = await w.submit('Load the sales export', { domain: 'data' });
    await eventually(() => orchestrator.stats.ticks >= 10, { what: 'ten orchestrator cycles' });
    expect(orchestrator.stats.spawned).toBe(0);
    expect(await w.runtimes[0]!.list()).toEqual([]);
    expect((await w.bus.tasks.get(stray.id)).status).toBe('failed');
  });

  it('reaps a SIGKILLed agent, keeps its last log lines, and a new agent completes the task exactly once', async ({ w }) => {
    w.script = hangFirst(1);
    const orchestrator = await w.startOrchestrator('orch-1');
    const task = await w.submit('Create the file survivor.txt');
    const active = await w.waitFor(task.id, (r) => r.status === 'active', 'the task to be taken');
    await modelCalled(w, 1);
    const victim = active.agent!;
    const handle = (await w.runtimes[0]!.list()).find((h) => h.agentId === victim)!;
    process.kill(Number(handle.ref), 'SIGKILL');

    const done = await w.waitForEnd(task.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2 });
    expect(done.agent).not.toBe(victim);
    expect(orchestrator.stats.reaped).toBeGreaterThanOrEqual(1);
    expect(orchestrator.stats.spawned).toBe(2);

    const dead = await w.registry().get(victim);
    expect(dead?.status).toBe('dead');
    expect(dead?.lastLogs).toContain('agent ready');
    expect((await w.runtimes[0]!.list()).some((h) => h.agentId === victim)).toBe(false);

    const entries = await w.entries(task.id);
    expect(statusTrail(entries)).toEqual(['queued', 'active', 'queued', 'active', 'completed']);
    expect(entries.find((e) => e.type === 'status' && e.status === 'queued' && e.agent === victim)?.text).toBe(
      `agent ${victim} died (heartbeat expired) during attempt 1 of 3; back on the queue`,
    );
    expect(entries.filter((e) => e.type === 'result')).toHaveLength(1);
    expect(await readFile(path.join(w.workspace, 'survivor.txt'), 'utf8')).toContain('survivor.txt');
  });

  it('fails a task for good, saying why, once an agent has died during each of its attempts', async ({ w }) => {
    w.script = () => ({ hang: true });
    await w.startOrchestrator('orch-1', { settings: { DAN_TASK_ATTEMPTS: '2' } });
    const task = await w.submit('Create the file doomed.txt', { maxAttempts: 2 });
    const victims: string[] = [];
    for (const attempt of [1, 2]) {
      const active = await w.waitFor(task.id, (r) => r.status === 'active' && r.attempts === attempt, `attempt ${attempt}`);
      await modelCalled(w, attempt);
      victims.push(active.agent!);
      const handle = (await w.runtimes[0]!.list()).find((h) => h.agentId === active.agent)!;
      process.kill(Number(handle.ref), 'SIGKILL');
    }

    const done = await w.waitForEnd(task.id);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(2);
    expect(done.error).toBe(`agent ${victims[1]} died (heartbeat expired) during attempt 2 of 2; no attempts left`);
    expect(statusTrail(await w.entries(task.id))).toEqual(['queued', 'active', 'queued', 'active', 'failed']);
    for (const id of victims) expect((await w.registry().get(id))?.status).toBe('dead');
  });

  it('scales to 3 agents for 6 waiting tasks, never more, and back to 0 after the idle timeout', async ({ w }) => {
    w.script = slow(1500);
    const tasks = [];
    for (let i = 1; i <= 6; i++) tasks.push(await w.submit(`Create the file scaled-${i}.txt`));
    const orchestrator = await w.startOrchestrator('orch-1', { settings: { DAN_MAX_AGENTS_PER_DOMAIN: '3', DAN_IDLE_TIMEOUT_MS: '1500' } });
    const runtime = w.runtimes[0]!;
    const sampler = sampleAgents(w, runtime);

    const done = await Promise.all(tasks.map((t) => w.waitForEnd(t.id, 60_000)));
    expect(done.map((d) => d.status)).toEqual(Array(6).fill('completed'));
    const servedBy = new Set(done.map((d) => d.agent));
    expect(servedBy.size).toBe(3);

    await eventually(async () => (await w.liveAgents()).length === 0 && (await runtime.list()).length === 0, {
      what: 'every agent to exit after its idle timeout and be cleaned up',
      timeoutMs: 20_000,
    });
    const max = await sampler.stop();
    expect(max.running).toBe(3);
    expect(max.live).toBe(3);
    expect(orchestrator.stats.spawned).toBe(3);
    for (const id of servedBy) expect((await w.registry().get(id!))?.status).toBe('stopped');
  });

  it('gives each agent one subscription token of the pool, at most two agents per token, and records which', async ({ w }) => {
    w.script = slow(1500);
    const tokens = ['sk-ant-oat01-pool-token-a-0123456789', 'sk-ant-oat01-pool-token-b-9876543210'];
    const tasks = [];
    for (let i = 1; i <= 8; i++) tasks.push(await w.submit(`Create the file pooled-${i}.txt`));
    // Six agents wanted, four allowed: two tokens, two agents each. No API key: the subscription is the access.
    const env = { ANTHROPIC_BASE_URL: w.server.url, CLAUDE_CODE_OAUTH_TOKEN: tokens.join(','), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' };
    await w.startOrchestrator('orch-1', { settings: { DAN_MAX_AGENTS_PER_DOMAIN: '6', DAN_AGENTS_PER_TOKEN: '2', DAN_IDLE_TIMEOUT_MS: '60000' }, env });
    const sampler = sampleAgents(w, w.runtimes[0]!);
    // While they work, the pool's record (indexes only) says two agents per token.
    await eventually(async () => {
      const counts = Object.values(await w.bus.redis.hgetall(w.bus.keys.tokenAgents)).sort().join(',');
      return counts === '0,0,1,1';
    }, { what: 'four agents, two per token, in the pool record', timeoutMs: 60_000 });

    const done = await Promise.all(tasks.map((t) => w.waitForEnd(t.id, 90_000)));
    expect(done.map((d) => d.status)).toEqual(Array(8).fill('completed'));
    const max = await sampler.stop();
    expect(max.running).toBe(4);
    // Each agent ran on one token; two agents per token; the record names the index, never the token.
    const tokenOf = new Map(done.map((d) => [d.agent!, d.tokenIndex]));
    expect([...tokenOf.values()].sort()).toEqual([0, 0, 1, 1]);
    for (const d of done) expect(JSON.stringify(d)).not.toContain('pool-token');
    // Each token reached the CLI as its credential, and nothing else did.
    const seen = new Set(conversationRequests(w.server.requests).map((q) => q.credential));
    expect(seen).toEqual(new Set(tokens.map(credentialFingerprint)));
  });

  it('respects the global cap DAN_MAX_AGENTS across domains, serving each domain', async ({ w }) => {
    w.script = slow(500);
    const tasks = [];
    for (const domain of ['backend', 'frontend']) {
      for (let i = 1; i <= 3; i++) tasks.push(await w.submit(`Create the file ${domain}-${i}.txt`, { domain }));
    }
    const orchestrator = await w.startOrchestrator('orch-1', { settings: { DAN_MAX_AGENTS: '2', DAN_MAX_AGENTS_PER_DOMAIN: '3' } });
    const sampler = sampleAgents(w, w.runtimes[0]!);

    const done = await Promise.all(tasks.map((t) => w.waitForEnd(t.id, 60_000)));
    const max = await sampler.stop();
    expect(done.map((d) => d.status)).toEqual(Array(6).fill('completed'));
    expect(max.running).toBe(2);
    expect(max.live).toBeLessThanOrEqual(2);
    // Fair shares: one agent per domain rather than two for the first.
    expect(max.byDomain).toEqual({ backend: 1, frontend: 1 });
    expect(orchestrator.stats.spawned).toBe(2);
  });

  it('with two orchestrators only the leader spawns; when it dies without handing back the lease, the other takes over and scales', async ({ w }) => {
    const ttl = { DAN_HEARTBEAT_TTL_MS: '1500' };
    const first = w.spawnDan(['orchestrator'], { AGENT_ID: 'orch-a', ...ttl });
    await w.leads(first, 'orch-a', 20_000);
    const second = await w.startOrchestrator('orch-b', { settings: ttl });

    const task = await w.submit('Create the file led.txt');
    expect((await w.waitForEnd(task.id)).status).toBe('completed');
    expect(await w.bus.redis.get(w.bus.keys.leader)).toBe('orch-a');
    expect(second.isLeader).toBe(false);
    expect(second.stats.ticks).toBeGreaterThan(5);
    expect(second.stats.spawned).toBe(0);
    expect((await w.registry().list()).filter((a) => a.role === 'main' && a.alive).map((a) => a.id).sort()).toEqual(['orch-a', 'orch-b']);

    // Let orch-a's agent exit idle first, so killing orch-a orphans no agent.
    await eventually(async () => (await w.liveAgents()).length === 0, { what: "orch-a's agent to exit idle", timeoutMs: 20_000 });
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    // The lease lapses after its TTL (1.5 s); the standby takes it on its next attempt.
    await eventually(() => second.isLeader, { what: 'orch-b to take over', timeoutMs: 10_000 });
    expect(await w.bus.redis.get(w.bus.keys.leader)).toBe('orch-b');
    await eventually(async () => (await w.registry().get('orch-a'))?.status === 'dead', { what: 'orch-b to reap orch-a' });

    const next = await w.submit('Create the file after-takeover.txt');
    const done = await w.waitForEnd(next.id);
    expect(done.status).toBe('completed');
    expect(second.stats.spawned).toBe(1);
    expect(await readFile(path.join(w.workspace, 'after-takeover.txt'), 'utf8')).toContain('after-takeover.txt');
  });

  it('`dan down` stops the orchestrators and their busy agents and leaves no process behind', async ({ w }) => {
    w.script = () => ({ hang: true });
    const up = w.spawnDan(['up'], { AGENT_ID: 'orch-up' });
    await w.leads(up, 'orch-up', 20_000);
    const standby = w.spawnDan(['orchestrator'], { AGENT_ID: 'orch-standby' });
    const task = await w.submit('Create the file interrupted.txt');
    await w.waitFor(task.id, (r) => r.status === 'active', 'an agent to take the task');
    await modelCalled(w, 1);
    await eventually(async () => (await w.registry().ids()).includes('orch-standby'), { what: 'the standby to register', timeoutMs: 20_000 });

    const registered = await w.registry().list();
    expect(registered.map((a) => `${a.role}:${a.alive}`).sort(), JSON.stringify(registered)).toEqual(['domain:true', 'main:true', 'main:true']);
    const pids = registered.map((a) => a.pid!);
    expect((await processesIn(w.workspace)).length).toBeGreaterThan(0); // the agent and its claude CLI

    const down = await runDan(['down', '--timeout', '20000'], w.danEnv());
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(String(down.stdout)).toMatch(new RegExp(`^network "${w.net.network}": stopped 2 orchestrators and 1 agent$`, 'm'));
    // Promptly: no grace timer of the agents it stopped keeps an orchestrator process alive.
    const exitOf = (c: DanProcess) => Promise.race([c.exited, sleep(10_000).then(() => 'still running after 10 s')]);
    expect(await exitOf(up), up.text()).toEqual({ code: 0, signal: null });
    expect(await exitOf(standby), standby.text()).toEqual({ code: 0, signal: null });

    expect(await w.registry().ids()).toEqual([]);
    await eventually(async () => pids.every((pid) => !isAlive(pid)) && (await processesIn(w.workspace)).length === 0, {
      what: 'every process of the network to be gone',
      timeoutMs: 5000,
    });
    // The busy agent handed its task back on the way out.
    expect(await w.bus.tasks.get(task.id)).toMatchObject({ status: 'queued', attempts: 1 });
  });

  it('fails at once, saying why, a task for a domain the orchestrator has no template for, never leaving it queued', async ({ w }) => {
    // As when a folder is added on the host while the orchestrator reads its image's templates: the CLI, with
    // its own templates, accepted the task.
    const early = await w.submit('Load the sales export', { domain: 'data' });
    await w.startOrchestrator('orch-templates');
    const late = await w.submit('Load the returns export', { domain: 'data' });
    for (const id of [early.id, late.id]) {
      const done = await w.waitForEnd(id, 20_000);
      expect(done.status).toBe('failed');
      expect(done.error).toMatch(/^no template for domain "data" where the orchestrator runs \(.*\/agents\/domain-templates has backend, devops, frontend, review\): no agent can be started for it/);
      expect((await w.entries(id)).at(-1)).toMatchObject({ type: 'status', status: 'failed', agent: 'orch-templates' });
    }
    expect((await w.bus.queues.counts('data')).waiting).toBe(0);
    expect(await w.liveAgents()).toEqual([]);
  });

  it("`dan up`'s own Redis: the agents it starts connect as the agent role; the CLI run from its folder sends a task and stops the network", async ({ w }) => {
    w.script = () => ({ hang: true });
    const port = await freePort();
    const folder = await mkdtemp(path.join(os.tmpdir(), 'dan-orch-up-roles-'));
    const redisUrl = `redis://127.0.0.1:${port}`;
    const env = w.danEnv({ REDIS_URL: redisUrl });
    let admin: Redis | undefined;
    try {
      const up = w.spawnDan(['up', '--no-web'], { AGENT_ID: 'orch-up-roles', REDIS_URL: redisUrl }, folder);
      await eventually(() => up.logged('leader: scaling and reaping').length > 0, { what: '`dan up` to start Redis and lead', timeoutMs: 30_000 }).catch((error: Error) => {
        throw new Error(`${error.message}\n${up.text()}`);
      });
      const sent = await runDan(['send-task', 'backend', 'Create the file roles.txt', '--json'], env, { cwd: folder });
      expect(sent.exitCode, String(sent.stderr)).toBe(0);
      await modelCalled(w, 1);
      const password = (await readFile(path.join(folder, '.dan', 'redis-password'), 'utf8')).trim();
      admin = await connectRedis(`redis://:${password}@127.0.0.1:${port}`, { mode: 'cli' });
      const agents = String(await admin.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => / name=dan-agent:/.test(line));
      expect(agents.length).toBeGreaterThan(0);
      for (const line of agents) expect(line).toContain(`user=${roleUser(w.net.network, 'agent')}`);
      const down = await runDan(['down', '--timeout', '20000'], env, { cwd: folder });
      expect(down.exitCode, String(down.stderr)).toBe(0);
      expect(String(down.stdout)).toMatch(new RegExp(`^network "${w.net.network}": stopped 1 orchestrator and 1 agent`, 'm'));
      expect(await Promise.race([up.exited, sleep(10_000).then(() => 'still running after 10 s')]), up.text()).toEqual({ code: 0, signal: null });
    } finally {
      admin?.disconnect();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('`dan down` after a `dan up` that started its own redis-server says what stopped and exits 0', async ({ w }) => {
    // `dan up` with nothing answering at REDIS_URL starts a redis-server (data in ./.dan/redis of its folder, its
    // password in ./.dan/redis-password), which stops with its orchestrator: `dan down` loses its connection on the
    // way and must not call that a failure.
    const port = await freePort();
    const folder = await mkdtemp(path.join(os.tmpdir(), 'dan-orch-up-'));
    try {
      const redisUrl = `redis://127.0.0.1:${port}`;
      const up = w.spawnDan(['up'], { AGENT_ID: 'orch-own-redis', REDIS_URL: redisUrl }, folder);
      await eventually(() => up.logged('started a local redis-server (append-only file in .dan/redis, admin password in .dan/redis-password)').length > 0 && up.logged('leader: scaling and reaping').length > 0, {
        what: '`dan up` to start Redis and lead',
        timeoutMs: 30_000,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${up.text()}`);
      });
      // From the same folder: `dan down` finds the password `dan up` keeps there (.dan/redis-password).
      const down = await runDan(['down', '--timeout', '20000'], w.danEnv({ REDIS_URL: redisUrl }), { cwd: folder });
      expect(String(down.stderr)).toBe('');
      expect(down.exitCode).toBe(0);
      expect(String(down.stdout)).toMatch(
        new RegExp(`^network "${w.net.network}": stopped 1 orchestrator and 0 agents(; Redis at 127.0.0.1:${port} stopped with them \\(the redis-server \`dan up\` started\\))?$`, 'm'),
      );
      expect(await Promise.race([up.exited, sleep(10_000).then(() => 'still running after 10 s')]), up.text()).toEqual({ code: 0, signal: null });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
