import { mkdtemp, rm } from 'node:fs/promises';
import * as net_ from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { validate, compileErrors } from '@readme/openapi-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentRegistry } from '../../lib/registry/index.js';
import { MAX_CONTEXT_BYTES, MAX_DESCRIPTION_BYTES, taskSpecSchema, type TaskRecord } from '../../lib/task.js';
import { BODY_LIMIT_BYTES, WebServer, openApiPath } from '../../lib/web/index.js';
import { createLogger } from '../../lib/log.js';
import { runDan } from '../helpers/cli.js';
import { DanProcess } from '../helpers/dan-process.js';
import { expectBadInput } from '../helpers/expect-bad-input.js';
import { eventually, openNetwork, redisUrl, snapshot, type TestNetwork } from '../helpers/network.js';
import { SseClient } from '../helpers/sse-client.js';
import { startWeb, type TestWeb } from '../helpers/web.js';

/**
 * `dan serve`'s HTTP API against a real Redis: every endpoint, every bad input (400, nothing written), 401 and
 * 404 in the one error shape, the task log and the events as SSE with a reconnect in the middle, and the
 * OpenAPI document, which must validate and list exactly the routes the server has.
 */

let net: TestNetwork;
let web: TestWeb;

beforeEach(async () => {
  net = await openNetwork({}, 'web');
  web = await startWeb(net);
});

afterEach(async () => {
  await web.close();
  await net.cleanup();
});

const UNKNOWN_ID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const spec = (over: Record<string, unknown> = {}) =>
  taskSpecSchema.parse({ domain: 'backend', description: 'a task', timeoutS: 60, maxAttempts: 3, ...over });

/** Sends a request that must be refused with `status` and the error shape, and change nothing in Redis. */
async function expectRefused(method: string, path: string, status: number, message: RegExp, options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}, code?: string): Promise<void> {
  const before = await snapshot(net.redis, net.config.prefix);
  const answer = await web.call(method, path, options);
  expect(answer.status, answer.text).toBe(status);
  const { error } = answer.json as { error: { code: string; message: string } };
  expect(Object.keys(answer.json as object)).toEqual(['error']);
  expect(error.message).toMatch(message);
  if (code) expect(error.code).toBe(code);
  expect(await snapshot(net.redis, net.config.prefix)).toEqual(before);
}

describe('POST /api/tasks', () => {
  it('writes the record and queues the task, with the defaults `dan send-task` uses', async () => {
    const answer = await web.call('POST', '/api/tasks', { body: { domain: 'backend', description: 'add a health endpoint', priority: 'high', context: { repo: 'api' } } });
    expect(answer.status).toBe(201);
    const { id } = answer.json as { id: string };
    expect(Object.keys(answer.json as object)).toEqual(['id']);
    const record = await net.bus.tasks.get(id);
    expect(record).toMatchObject({ domain: 'backend', description: 'add a health endpoint', priority: 'high', status: 'queued', context: { repo: 'api' } });
    expect(record.timeoutS).toBe(net.config.taskTimeoutS);
    expect(record.maxAttempts).toBe(net.config.taskAttempts);
    expect((await net.bus.queues.counts('backend')).waiting).toBe(1);
  });

  it('takes a goal for main and a timeout', async () => {
    const answer = await web.call('POST', '/api/tasks', { body: { domain: 'main', description: 'plan it', timeoutS: 120 } });
    expect(answer.status).toBe(201);
    expect(await net.bus.tasks.get((answer.json as { id: string }).id)).toMatchObject({ domain: 'main', timeoutS: 120, priority: 'normal' });
  });

  it('keeps a task\'s branch for review with noMerge, as `dan send-task --no-merge` does', async () => {
    const answer = await web.call('POST', '/api/tasks', { body: { domain: 'backend', description: 'review me first', noMerge: true } });
    expect(answer.status).toBe(201);
    expect((await net.bus.tasks.get((answer.json as { id: string }).id)).noMerge).toBe(true);
  });

  it('takes review gates as `dan send-task --gate` does', async () => {
    const answer = await web.call('POST', '/api/tasks', { body: { domain: 'backend', description: 'review me', gates: ['code', 'security'] } });
    expect(answer.status).toBe(201);
    expect((await net.bus.tasks.get((answer.json as { id: string }).id)).gates).toEqual(['code', 'security']);
  });

  const cases: Array<[string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, RegExp]> = [
    ['an unknown gate', { body: { domain: 'backend', description: 'x', gates: ['secruity'] } }, 400, /^gates: unknown gate "secruity" \(did you mean security\?\); the gates are code, security, tests$/],
    ['gates that are not a list', { body: { domain: 'backend', description: 'x', gates: 'code' } }, 400, /gates "code" must be a list of gate names/],
    ['noMerge for a goal', { body: { domain: 'main', description: 'x', noMerge: true } }, 400, /noMerge keeps one domain task's branch for review/],
    ['noMerge that is not a boolean', { body: { domain: 'backend', description: 'x', noMerge: 'yes' } }, 400, /noMerge "yes" must be true or false/],
    ['no body', { raw: '' }, 400, /body/i],
    ['malformed JSON', { raw: '{"domain":' }, 400, /not valid JSON/],
    ['an array', { body: [] }, 400, /the body must be a JSON object/],
    ['a string', { body: 'backend' }, 400, /the body must be a JSON object/],
    ['no domain', { body: { description: 'x' } }, 400, /domain must be a string/],
    ['an unknown domain', { body: { domain: 'nosuch', description: 'x' } }, 400, /unknown domain "nosuch": known domains are main, backend/],
    ['a malformed domain', { body: { domain: '../etc', description: 'x' } }, 400, /unknown domain "\.\.\/etc"/],
    ['no description', { body: { domain: 'backend' } }, 400, /description .*expected string/],
    ['a blank description', { body: { domain: 'backend', description: ' \n\t' } }, 400, /description " \n\t" must not be empty/],
    ['an oversized description, multibyte', { body: { domain: 'backend', description: 'é'.repeat(MAX_DESCRIPTION_BYTES / 2 + 1) } }, 400, /description .*must be at most 65536 bytes/],
    ['a number as description', { body: { domain: 'backend', description: 5 } }, 400, /description .*expected string/],
    ['an unknown priority', { body: { domain: 'backend', description: 'x', priority: 'urgent' } }, 400, /priority "urgent" must be low, normal or high/],
    ['a timeout below 10', { body: { domain: 'backend', description: 'x', timeoutS: 5 } }, 400, /timeoutS must be at least 10 seconds/],
    ['a timeout above a day', { body: { domain: 'backend', description: 'x', timeoutS: 86_401 } }, 400, /timeoutS must be at most 86400 seconds/],
    ['a fractional timeout', { body: { domain: 'backend', description: 'x', timeoutS: 30.5 } }, 400, /timeoutS must be a whole number of seconds/],
    ['a context that is an array', { body: { domain: 'backend', description: 'x', context: [1] } }, 400, /context .*expected record/],
    ['a context that is a string', { body: { domain: 'backend', description: 'x', context: '{"a":1}' } }, 400, /context/],
    ['an oversized context', { body: { domain: 'backend', description: 'x', context: { blob: 'x'.repeat(MAX_CONTEXT_BYTES) } } }, 400, /context must be at most 65536 bytes of JSON/],
    ['an unknown field', { body: { domain: 'backend', description: 'x', timeout: 30 } }, 400, /unknown field timeout: the fields are domain, description, priority, timeoutS, context, noMerge/],
    ['a body over the limit', { body: { domain: 'backend', description: 'x'.repeat(BODY_LIMIT_BYTES) } }, 413, /too large/],
    ['text instead of JSON', { raw: 'backend: x', headers: { 'content-type': 'text/plain' } }, 400, /the body must be a JSON object/],
  ];
  it.each(cases)('refuses %s, writing nothing', async (_name, request, status, message) => {
    await expectRefused('POST', '/api/tasks', status, message, request);
  });
});

describe('reading tasks', () => {
  it('lists tasks newest first, filtered by domain and status, up to a limit', async () => {
    const a = await net.bus.submit(spec({ description: 'first' }));
    const b = await net.bus.submit(spec({ domain: 'frontend', description: 'second' }));
    const c = await net.bus.submit(spec({ description: 'third' }));
    await net.bus.cancel(c.id);
    const ids = async (query: string) => ((await web.call('GET', `/api/tasks${query}`)).json as { tasks: TaskRecord[] }).tasks.map((t) => t.id);
    expect(await ids('')).toEqual([c.id, b.id, a.id]);
    expect(await ids('?domain=backend')).toEqual([c.id, a.id]);
    expect(await ids('?status=queued')).toEqual([b.id, a.id]);
    expect(await ids('?status=cancelled&domain=backend')).toEqual([c.id]);
    expect(await ids('?limit=1')).toEqual([c.id]);
  });

  it.each([
    ['a limit of 0', '?limit=0', /limit "0" must be at least 1/],
    ['a limit over 1000', '?limit=1001', /limit "1001" must be at most 1000/],
    ['a limit that is not a number', '?limit=many', /limit "many" must be a number from 1 to 1000/],
    ['an unknown status', '?status=done', /status "done" must be one of waiting, queued/],
    ['an unknown domain', '?domain=nosuch', /unknown domain "nosuch"/],
  ])('refuses %s with 400', async (_name, query, message) => {
    await expectRefused('GET', `/api/tasks${query}`, 400, message);
  });

  it("answers a task's record, and a goal's with its subtasks", async () => {
    const goal = await net.bus.submit(spec({ domain: 'main', description: 'the goal' }));
    const child = await net.bus.submit(spec({ description: 'a part', parent: goal.id, key: 'api' }));
    const single = await web.call('GET', `/api/tasks/${child.id}`);
    expect(single.status).toBe(200);
    expect(single.json).toMatchObject({ id: child.id, parent: goal.id, key: 'api', status: 'queued' });
    expect(single.json).not.toHaveProperty('subtasks');
    const withSubtasks = (await web.call('GET', `/api/tasks/${goal.id}`)).json as TaskRecord & { subtasks: TaskRecord[] };
    expect(withSubtasks.children).toEqual([child.id]);
    expect(withSubtasks.subtasks.map((s) => s.id)).toEqual([child.id]);
  });

  it('answers 404 for an unknown id and 400 for a malformed one, on every task route', async () => {
    for (const [method, path] of [['GET', '/api/tasks/ID'], ['POST', '/api/tasks/ID/cancel'], ['GET', '/api/tasks/ID/log']] as const) {
      await expectRefused(method, path.replace('ID', UNKNOWN_ID), 404, new RegExp(`no task with id "${UNKNOWN_ID}"`), {}, 'DAN_UNKNOWN_TASK');
      await expectRefused(method, path.replace('ID', 'not-an-id'), 400, /task id "not-an-id" is not a task id/, {}, 'DAN_BAD_INPUT');
    }
    await expectRefused('GET', '/api/nothing-here', 404, /no route GET \/api\/nothing-here/, {}, 'DAN_NOT_FOUND');
  });
});

describe('POST /api/tasks/:id/cancel', () => {
  it('cancels a queued task at once and says so; a second cancel finds it finished', async () => {
    const task = await net.bus.submit(spec());
    const first = await web.call('POST', `/api/tasks/${task.id}/cancel`);
    expect(first).toMatchObject({ status: 200, json: { id: task.id, outcome: 'cancelled', from: 'queued' } });
    expect((await net.bus.tasks.get(task.id)).status).toBe('cancelled');
    expect((await net.bus.queues.counts('backend')).waiting).toBe(0);
    const second = await web.call('POST', `/api/tasks/${task.id}/cancel`);
    expect(second.json).toEqual({ id: task.id, outcome: 'already_finished', status: 'cancelled' });
  });

  it('asks the agent of an active task to stop it', async () => {
    const task = await net.bus.submit(spec());
    await net.bus.tasks.transition(task.id, 'active', { mode: 'claim', agent: 'agent-1', fields: { agent: 'agent-1', startedAt: Date.now() } });
    const answer = await web.call('POST', `/api/tasks/${task.id}/cancel`);
    expect(answer.json).toEqual({ id: task.id, outcome: 'requested', agent: 'agent-1' });
    expect((await net.bus.tasks.get(task.id)).cancelRequested).toBe(true);
  });
});

describe('POST /api/tasks/:id/answer and /retry', () => {
  /** A task that asked the user a question, as an agent leaves it (claimed, then needs_input). */
  async function asking(): Promise<TaskRecord> {
    const task = await net.bus.submit(spec());
    await net.bus.tasks.transition(task.id, 'active', { mode: 'claim', agent: 'agent-1', fields: { agent: 'agent-1' } });
    await net.bus.tasks.transition(task.id, 'needs_input', { fields: { question: JSON.stringify({ question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] }) } });
    return net.bus.tasks.get(task.id);
  }

  it('queues a task that needs input again with the answer, as `dan answer` does', async () => {
    const task = await asking();
    expect(((await web.call('GET', `/api/tasks/${task.id}`)).json as TaskRecord).question).toEqual({ question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] });
    const answer = await web.call('POST', `/api/tasks/${task.id}/answer`, { body: { text: 'Postgres' } });
    expect(answer).toMatchObject({ status: 200, json: { id: task.id, status: 'queued' } });
    expect(await net.bus.tasks.get(task.id)).toMatchObject({ status: 'queued', answer: 'Postgres' });
    expect((await net.bus.queues.counts('backend')).waiting).toBe(1);
  });

  it("refuses a bad answer with 400 and the CLI's words, writing nothing", async () => {
    const task = await asking();
    const url = `/api/tasks/${task.id}/answer`;
    await expectRefused('POST', url, 400, /^the answer must not be empty/, { body: { text: '' } }, 'DAN_BAD_INPUT');
    await expectRefused('POST', url, 400, /^the answer must not be empty/, { body: { text: '   ' } });
    await expectRefused('POST', url, 400, /^the answer must be at most 65536 bytes/, { body: { text: 'x'.repeat(64 * 1024 + 1) } });
    await expectRefused('POST', url, 400, /^the answer must be text/, { body: {} });
    await expectRefused('POST', url, 400, /^the body must be \{"text": "<your answer>"\} and nothing else/, { body: { text: 'yes', extra: 1 } });
    const queued = await net.bus.submit(spec());
    await expectRefused('POST', `/api/tasks/${queued.id}/answer`, 400, /is queued, not waiting for input/, { body: { text: 'yes' } });
    await expectRefused('POST', `/api/tasks/${UNKNOWN_ID}/answer`, 404, /no task with id/, { body: { text: 'yes' } });
  });

  it('retries a failed task as `dan retry` does, and refuses one that has not ended', async () => {
    const task = await net.bus.submit(spec());
    await net.bus.tasks.transition(task.id, 'failed', { text: 'failed for the test' });
    const answer = await web.call('POST', `/api/tasks/${task.id}/retry`);
    expect(answer).toMatchObject({ status: 200, json: { id: task.id, status: 'queued', subtasks: [] } });
    expect(await net.bus.tasks.get(task.id)).toMatchObject({ status: 'queued', attempts: 0, retried: [expect.objectContaining({ status: 'failed' })] });
    await expectRefused('POST', `/api/tasks/${task.id}/retry`, 400, /is queued: only a failed, timed-out or cancelled task can be retried/, {}, 'DAN_BAD_INPUT');
    await expectRefused('POST', `/api/tasks/${UNKNOWN_ID}/retry`, 404, /no task with id/);
  });
});

describe('GET /api/agents and /api/overview', () => {
  it('lists registered agents with their liveness, and no post-mortem logs', async () => {
    const registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: net.config.heartbeatTtlMs });
    await registry.register({ id: 'agent-b', role: 'domain', domain: 'backend', runtime: 'process', pid: 4242 });
    await registry.register({ id: 'agent-f', role: 'domain', domain: 'frontend', runtime: 'process' });
    const { agents } = (await web.call('GET', '/api/agents')).json as { agents: Array<Record<string, unknown>> };
    expect(agents.map((a) => [a.id, a.domain, a.alive, a.status])).toEqual([
      ['agent-b', 'backend', true, 'idle'],
      ['agent-f', 'frontend', true, 'idle'],
    ]);
    expect(agents[0]).not.toHaveProperty('lastLogs');
  });

  it("gives every domain's queue depth and today's totals", async () => {
    await net.bus.submit(spec());
    await net.bus.submit(spec());
    const overview = (await web.call('GET', '/api/overview')).json as { domains: Array<{ name: string; waiting: number }>; today: { tasks: number; costUsd: number } };
    expect(overview.domains.map((d) => d.name)).toEqual(['main', 'backend', 'devops', 'frontend', 'review']);
    expect(overview.domains.find((d) => d.name === 'backend')?.waiting).toBe(2);
    expect(overview.today).toMatchObject({ tasks: 2, costUsd: 0 });
  });
});

describe('the task log', () => {
  it('answers the history as JSON, the newest `last` of it on request', async () => {
    const task = await net.bus.submit(spec());
    await net.bus.logs.append(task.id, [{ type: 'assistant', text: 'one' }, { type: 'assistant', text: 'two' }]);
    const all = (await web.call('GET', `/api/tasks/${task.id}/log`)).json as { entries: Array<{ id: string; entry: { text: string } }> };
    expect(all.entries.map((e) => e.entry.text)).toEqual([expect.stringMatching(/^queued for backend/), 'one', 'two']);
    const last = (await web.call('GET', `/api/tasks/${task.id}/log?last=1`)).json as { entries: Array<{ entry: { text: string } }> };
    expect(last.entries.map((e) => e.entry.text)).toEqual(['two']);
    await expectRefused('GET', `/api/tasks/${task.id}/log?last=-1`, 400, /last "-1" must be at least 0/);
  });

  it('streams history then live entries as SSE; a client that reconnects with Last-Event-ID misses nothing and sees nothing twice', async () => {
    const task = await net.bus.submit(spec());
    await net.bus.logs.append(task.id, [{ type: 'assistant', text: 'h1' }]);
    const url = `${web.url}/api/tasks/${task.id}/log`;
    const first = await SseClient.open(url);
    expect(first.status).toBe(200);
    const texts = (c: SseClient) => c.events.filter((e) => e.event === 'entry').map((e) => (JSON.parse(e.data) as { entry: { text: string } }).entry.text);
    await first.next((e) => e.event === 'entry' && e.data.includes('"h1"'));
    await net.bus.logs.append(task.id, [{ type: 'assistant', text: 'live1' }]);
    const lastSeen = await first.next((e) => e.data.includes('"live1"'));
    await first.close();

    // Written while no client listens.
    await net.bus.logs.append(task.id, [{ type: 'assistant', text: 'missed1' }, { type: 'tool_use', text: 'missed2' }]);
    const second = await SseClient.open(url, { 'last-event-id': lastSeen.id! });
    await second.next((e) => e.data.includes('"missed2"'));
    await net.bus.logs.append(task.id, [{ type: 'assistant', text: 'live2' }]);
    await second.next((e) => e.data.includes('"live2"'));
    await net.bus.cancel(task.id);
    const end = await second.next((e) => e.event === 'end');
    expect(JSON.parse(end.data)).toEqual({ status: 'cancelled' });
    await second.done;

    expect(texts(first)).toEqual([expect.stringMatching(/^queued for/), 'h1', 'live1']);
    expect(texts(second)).toEqual(['missed1', 'missed2', 'live2', 'cancelled by user']);
    const ids = second.events.filter((e) => e.event === 'entry').map((e) => e.id);
    expect(ids.every((id) => /^\d+-\d+$/.test(id ?? ''))).toBe(true);
  });
});

describe('GET /api/events', () => {
  it('streams lifecycle events; a client that reconnects with Last-Event-ID gets the task events it missed', async () => {
    const url = `${web.url}/api/events`;
    const first = await SseClient.open(url);
    await first.next((e) => e.event === 'ready');
    const task = await net.bus.submit(spec());
    const queued = await first.next((e) => e.event === 'task');
    expect(JSON.parse(queued.data)).toMatchObject({ kind: 'task', id: task.id, status: 'queued', domain: 'backend' });
    const registry = new AgentRegistry(net.redis, net.bus.keys, { heartbeatTtlMs: net.config.heartbeatTtlMs });
    await registry.register({ id: 'agent-e', role: 'domain', domain: 'backend', runtime: 'process' });
    expect(JSON.parse((await first.next((e) => e.event === 'agent')).data)).toMatchObject({ kind: 'agent', id: 'agent-e', status: 'registered' });
    await first.close();

    await net.bus.tasks.transition(task.id, 'active', { mode: 'claim', agent: 'agent-e', fields: { agent: 'agent-e', startedAt: Date.now() } });
    await net.bus.tasks.transition(task.id, 'completed', { agent: 'agent-e', text: 'done', fields: { finishedAt: Date.now(), result: 'ok' } });
    const second = await SseClient.open(url, { 'last-event-id': queued.id! });
    await second.next((e) => e.event === 'ready');
    const other = await net.bus.submit(spec({ description: 'after the reconnect' }));
    await second.next((e) => e.event === 'task' && e.data.includes(other.id));
    const seen = second.events.filter((e) => e.event === 'task').map((e) => JSON.parse(e.data) as { id: string; status: string });
    expect(seen.map((e) => [e.id, e.status])).toEqual([
      [task.id, 'active'],
      [task.id, 'completed'],
      [other.id, 'queued'],
    ]);
    await second.close();
  });
});

describe('security', () => {
  const TOKEN = 'a-long-enough-test-token-0123456789';

  it('with DAN_API_TOKEN, every /api call needs the bearer token (401 otherwise, nothing written); health stays open', async () => {
    await web.close();
    web = await startWeb(net, { token: TOKEN });
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong-token' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
      await expectRefused('POST', '/api/tasks', 401, /needs `Authorization: Bearer <token>`/, { body: { domain: 'backend', description: 'x' }, headers }, 'DAN_UNAUTHORIZED');
      await expectRefused('GET', '/api/tasks', 401, /Bearer/, { headers }, 'DAN_UNAUTHORIZED');
      await expectRefused('GET', '/metrics', 401, /Bearer/, { headers }, 'DAN_UNAUTHORIZED');
    }
    const ok = await web.call('POST', '/api/tasks', { body: { domain: 'backend', description: 'x' }, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(201);
    expect((await web.call('GET', '/api/agents', { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
    expect((await web.call('GET', '/healthz')).status).toBe(200);
    expect((await web.call('GET', '/readyz')).status).toBe(200);
    // The token is in no answer and no log line.
    expect((await web.call('GET', '/api/openapi.json')).text).not.toContain(TOKEN);
    expect(web.logs.lines.join('\n')).not.toContain(TOKEN);
  });

  it('refuses to bind beyond loopback without a token', async () => {
    const config = { ...net.config, web: { host: '0.0.0.0', port: 0, apiToken: undefined, allowUnauthenticated: false } };
    await expect(WebServer.create({ config, bus: net.bus, logger: createLogger({ level: 'silent' }) })).rejects.toThrow(/will not listen on 0\.0\.0\.0 without a token/);
  });

  it('`dan serve` says so on the command line: exit 2, one line, nothing written', async () => {
    const env = { REDIS_URL: redisUrl(), DAN_NETWORK: net.network };
    await expectBadInput(expect, net, ['serve', '--host', '0.0.0.0'], env, /will not listen on 0\.0\.0\.0 without a token: set DAN_API_TOKEN/);
    await expectBadInput(expect, net, ['serve', '--port', '70000'], env, /--port must be at most 65535/);
    await expectBadInput(expect, net, ['serve'], { ...env, DAN_API_TOKEN: 'short' }, /DAN_API_TOKEN=\(hidden\) is invalid: must be at least 16 characters/);
  });
});

describe('dan up', () => {
  it('also serves the dashboard and says where; `dan down` stops it with the network', async () => {
    const workspace = await mkdtemp(path.join(os.tmpdir(), 'dan-web-up-'));
    const port = await new Promise<number>((resolve) => {
      const probe = net_.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as net_.AddressInfo;
        probe.close(() => resolve(p));
      });
    });
    const env = { PATH: process.env.PATH ?? '', HOME: os.homedir(), REDIS_URL: redisUrl(), DAN_NETWORK: net.network, DAN_WORKSPACE: workspace, DAN_WEB_PORT: String(port), DAN_LOG_LEVEL: 'warn' };
    const up = DanProcess.start(['up'], env);
    try {
      const url = await eventually(() => /dashboard and API at (http:\/\/127\.0\.0\.1:\d+)\//.exec(up.text())?.[1], { what: '`dan up` to print the address', timeoutMs: 60_000 });
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/api/overview`)).status).toBe(200); // the page itself: tests/browser
      const down = await runDan(['down', '--timeout', '10000'], env);
      expect(down.exitCode, String(down.stderr)).toBe(0);
      expect(await up.exited).toEqual({ code: 0, signal: null });
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      await up.stop(2000);
      await rm(workspace, { recursive: true, force: true });
    }
  });
});

describe('health and the OpenAPI document', () => {
  it('answers /healthz and /readyz', async () => {
    expect(await web.call('GET', '/healthz')).toMatchObject({ status: 200, json: { ok: true } });
    expect(await web.call('GET', '/readyz')).toMatchObject({ status: 200, json: { ok: true } });
  });

  it('publishes an OpenAPI 3.1 document that validates and lists exactly the routes the server has', async () => {
    const answer = await web.call('GET', '/api/openapi.json');
    expect(answer.status).toBe(200);
    const document = answer.json as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(document.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);

    const documented = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`));
    const served = web.server.routes.map((r) => `${r.method} ${openApiPath(r.url)}`);
    expect(documented.sort()).toEqual(served.sort());
    for (const route of web.server.routes) expect(web.server.app.hasRoute({ method: route.method, url: route.url }), route.url).toBe(true);
    for (const required of ['POST /api/tasks', 'GET /api/tasks', 'GET /api/tasks/{id}', 'POST /api/tasks/{id}/cancel', 'GET /api/agents', 'GET /api/tasks/{id}/log', 'GET /api/events', 'GET /healthz', 'GET /readyz', 'GET /metrics']) {
      expect(documented).toContain(required);
    }
    // The request body is the CLI's own schema: the same fields and limits.
    const post = document.paths['/api/tasks']!.post as { requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown>; required: string[] } } } } };
    const body = post.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(['domain', 'description', 'priority', 'timeoutS', 'context', 'noMerge', 'model', 'effort', 'fallbackModel', 'budgetUsd', 'follows', 'gates']);
    expect(body.required).toEqual(['domain', 'description']);
    expect(body.properties.timeoutS).toMatchObject({ minimum: 10, maximum: 86_400 });
  });

  it('answers JSON that matches what the document says: a task is listed with every documented field type', async () => {
    const task = await net.bus.submit(spec());
    await eventually(async () => (await web.call('GET', `/api/tasks/${task.id}`)).status === 200);
    const { json } = await web.call('GET', `/api/tasks/${task.id}`);
    const document = (await web.call('GET', '/api/openapi.json')).json as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> }> }>> };
    const schema = document.paths['/api/tasks/{id}']!.get!.responses['200']!.content['application/json']!.schema;
    for (const field of schema.required) expect(json).toHaveProperty(field);
    for (const field of Object.keys(json as object)) expect(Object.keys(schema.properties)).toContain(field);
  });
});
