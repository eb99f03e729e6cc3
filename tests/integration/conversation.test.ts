import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../lib/log.js';
import { ASK_USER_TOOL_ID, DELIVERED } from '../../lib/mcp/dan-mcp-server.js';
import { Reconciler } from '../../lib/orchestrator/reconciler.js';
import { releaseAgentTasks } from '../../lib/orchestrator/release-tasks.js';
import { Reaper } from '../../lib/registry/index.js';
import { TaskGraph } from '../../lib/orchestrator/task-graph.js';
import { isTerminal, newTaskId, taskSpecSchema, type TaskRecord } from '../../lib/task.js';
import { flattenText, primaryWorkingDirectory, requestedFileName, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { AgentHarness } from '../helpers/agent-harness.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { expectBadInput } from '../helpers/expect-bad-input.js';
import { eventually } from '../helpers/network.js';
import { killQuietly, processesIn } from '../helpers/processes.js';

// Conversations with a task (issue 13): follow-ups that resume its Claude Code session from Redis, on whichever
// agent takes them. Real claude binary, scripted model server, real Redis, git workspaces.

/** Every message text of a model request, flattened (what the model was shown of the conversation). */
function conversationText(req: RecordedRequest): string {
  const messages = (req.body as { messages?: Array<{ content: unknown }> }).messages ?? [];
  return messages.map((m) => flattenText(m.content)).join('\n');
}

/** Answers `Echo: <last message>`, so every answer names what it answered. */
function echoLast(req: RecordedRequest): Turn {
  return { text: `Echo: ${req.lastUserText.split('\n')[0]}` };
}

describe('follow-ups (--continue)', () => {
  let h: AgentHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a follow-up resumes the first task\'s session on another agent, which shows the earlier conversation to the model', async () => {
    h = await AgentHarness.create('conv');
    h.script = echoLast;
    const first = await h.startAgent('backend-1');
    const a = await h.submit('Remember the word PELICAN.');
    const ended = await h.waitForEnd(a.id);
    expect(ended.status).toBe('completed');
    expect(ended.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await h.bus.redis.exists(h.bus.keys.taskSession(a.id))).toBe(1);
    // The first agent leaves (its config dir, where the CLI wrote the session, goes with it).
    await first.stop('stopped', { graceMs: 0 });
    await h.startAgent('backend-2');

    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const sent = await runDan(['send-task', 'backend', 'Which word did I ask you to remember?', '--continue', a.id], env);
    expect(sent.exitCode, String(sent.stderr)).toBe(0);
    const b = String(sent.stdout).trim();
    const done = await h.waitForEnd(b);
    expect(done).toMatchObject({ status: 'completed', follows: a.id, agent: 'backend-2', sessionId: ended.sessionId });

    const followUp = h.server.requests.find((r) => !r.side && r.lastUserText.startsWith('Which word'));
    expect(followUp, 'the follow-up reached the model').toBeDefined();
    const seen = conversationText(followUp!);
    expect(seen).toContain('Remember the word PELICAN.');
    expect(seen).toContain('Echo: Remember the word PELICAN.');
    const log = (await h.bus.logs.history(b)).map((e) => e.entry.text).join('\n');
    expect(log).toContain(`resuming session ${ended.sessionId} of task ${a.id}`);

    const status = await runDan(['status', b], env);
    expect(String(status.stdout)).toMatch(new RegExp(`conversation\\n  ${a.id}  completed  Remember the word PELICAN\\.\\n> +${b}  completed  Which word`));
  });

  it('a follow-up whose agent was SIGKILLed mid-run is taken by another agent process, which still resumes the first task\'s conversation', { timeout: 120_000 }, async () => {
    h = await AgentHarness.create('conv-kill');
    let hang = false;
    h.script = (req) => (hang && req.lastUserText.startsWith('Which bird') ? { hang: true } : echoLast(req));
    const first = await h.spawnAgent('backend-killed');
    const a = await h.submit('Remember the word CORMORANT.');
    const ended = await h.waitForEnd(a.id);
    expect(ended).toMatchObject({ status: 'completed', agent: 'backend-killed' });

    // The follow-up goes to the same agent, which dies (SIGKILL) while the model holds its answer.
    hang = true;
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const b = String((await runDan(['send-task', 'backend', 'Which bird did I name?', '--continue', a.id], env)).stdout).trim();
    await eventually(() => h!.server.requests.some((r) => !r.side && r.lastUserText.startsWith('Which bird')), { what: 'the follow-up to reach the model', timeoutMs: 30_000 });
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // A dead container goes with its CLI; here the CLI is an orphan: end it as docker would.
    for (const pid of await processesIn(h.workspace)) killQuietly(pid);
    const reaper = new Reaper(h.registry()).onReap((agent) => releaseAgentTasks(h!.bus, agent, 'stopped heartbeating').then(() => {}));
    const reaping = setInterval(() => void reaper.reapOnce().catch(() => {}), h.net.config.reaperMs);
    try {
      await h.waitFor(b, (r) => r.status === 'queued', 'the reaper to requeue the follow-up', 20_000);
    } finally {
      clearInterval(reaping);
    }

    hang = false;
    const seen = h.server.requests.length;
    await h.spawnAgent('backend-next');
    const done = await h.waitForEnd(b);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, agent: 'backend-next', follows: a.id, sessionId: ended.sessionId });
    const resumed = h.server.requests.slice(seen).find((r) => !r.side && r.lastUserText.startsWith('Which bird'));
    expect(resumed, 'the second attempt reached the model').toBeDefined();
    expect(conversationText(resumed!)).toContain('Remember the word CORMORANT.');
    expect(conversationText(resumed!)).toContain('Echo: Remember the word CORMORANT.');
    expect(done.result).toBe('Echo: Which bird did I name?');
  });

  it('a follow-up of a task whose branch was kept continues on that branch', async () => {
    h = await AgentHarness.create('conv-branch');
    // Writes the file the latest message names (a resumed conversation's first message is the earlier task's).
    h.script = (req) => {
      if (req.hasToolResult) return { text: 'Done.' };
      const name = requestedFileName(req.lastUserText);
      return { text: `Writing ${name}.`, tools: [{ name: 'Write', input: { file_path: path.join(primaryWorkingDirectory(req)!, name), content: `${name}\n` } }] };
    };
    await h.startAgent();
    const a = await h.submit('Write the file one.txt', { noMerge: true });
    const ended = await h.waitForEnd(a.id);
    expect(ended.git?.merge).toBe('skipped');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const sent = await runDan(['send-task', 'backend', 'Write the file two.txt', '--continue', a.id], env);
    const b = String(sent.stdout).trim();
    const done = await h.waitForEnd(b);
    expect(done.status).toBe('completed');
    expect(done.git?.merge).toBe('merged');
    // Merging the follow-up brought the kept change it continued, too.
    const files = execFileSync('git', ['ls-files'], { cwd: h.workspace, encoding: 'utf8' });
    expect(files).toContain('one.txt');
    expect(files).toContain('two.txt');
  });

  it('a follow-up whose session is missing runs anew with the earlier task in its prompt, and says so', async () => {
    h = await AgentHarness.create('conv-lost');
    h.script = echoLast;
    await h.startAgent();
    const a = await h.submit('Remember the word HERON.');
    await h.waitForEnd(a.id);
    await h.bus.redis.set(h.bus.keys.taskSession(a.id), 'not gzip');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const b = String((await runDan(['send-task', 'backend', 'Which word?', '--continue', a.id], env)).stdout).trim();
    expect((await h.waitForEnd(b)).status).toBe('completed');
    const log = (await h.bus.logs.history(b)).map((e) => e.entry.text).join('\n');
    expect(log).toMatch(/cannot resume the conversation: the saved session of task \w+: it is corrupt .*; this run starts a new conversation/);
    const req = h.server.requests.find((r) => !r.side && r.prompt.startsWith('Which word?'));
    expect(req?.prompt).toContain('Remember the word HERON.');
  });

  it('a follow-up of a task still running waits for it, then resumes its session', async () => {
    h = await AgentHarness.create('conv-wait');
    const open = h.gate((req) => echoLast(req));
    await h.startAgent();
    const a = await h.submit('Remember the word IBIS.');
    await h.modelCalled();
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const sent = await runDan(['send-task', 'backend', 'Which word?', '--continue', a.id], env);
    expect(String(sent.stderr)).toMatch(/is still active: this follow-up waits for it to end/);
    const b = String(sent.stdout).trim();
    expect((await h.bus.tasks.get(b)).status).toBe('waiting');
    open();
    const done = await h.waitForEnd(b);
    expect(done.status).toBe('completed');
    const req = h.server.requests.find((r) => !r.side && r.lastUserText.startsWith('Which word?'));
    expect(conversationText(req!)).toContain('Echo: Remember the word IBIS.');
  });

  it('refuses bad follow-ups: exit 2, one line, nothing written', async () => {
    h = await AgentHarness.create('conv-bad');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    await expectBadInput(expect, h.net, ['send-task', 'backend', 'more', '--continue', 'nope'], env, /--continue is not a task id/);
    await expectBadInput(expect, h.net, ['send-task', 'backend', 'more', '--continue', '01JAAAAAAAAAAAAAAAAAAAAAAA'], env, /--continue 01JAAAAAAAAAAAAAAAAAAAAAAA: no such task in network/);
    const a = await h.submit('hello');
    await expectBadInput(expect, h.net, ['send-task', 'backend', 'more', '--continue', a.id], { ...env, DAN_NETWORK: `${h.net.network}-other` }, /no such task in network/);
    await expectBadInput(expect, h.net, ['send-task', 'main', 'more', '--continue', a.id], env, /name a domain, not main/);
  });
});

describe('retry and the dead-letter view', () => {
  let h: AgentHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('retries a failed task: attempts reset, the earlier end kept in its record and log; dan tasks --status failed says why', async () => {
    h = await AgentHarness.create('retry');
    h.script = () => ({ status: 400, message: 'the scripted model refuses this one' });
    await h.startAgent();
    const a = await h.submit('Say hi');
    expect((await h.waitForEnd(a.id)).status).toBe('failed');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const dead = await runDan(['tasks', '--status', 'failed'], env);
    expect(String(dead.stdout)).toMatch(/REASON/);
    expect(String(dead.stdout)).toMatch(new RegExp(`${a.id}\\s+backend\\s+1/3 .*API Error: 400 .*the scripted model refuses this one`));

    h.script = echoLast;
    const retried = await runDan(['retry', a.id], env);
    expect(retried.exitCode, String(retried.stderr)).toBe(0);
    expect(String(retried.stdout)).toMatch(/retrying \w+ \(it had ended failed after 1 attempt\): queued for backend/);
    const done = await h.waitForEnd(a.id);
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(done.retried).toEqual([expect.objectContaining({ status: 'failed', attempts: 1, error: expect.stringMatching(/API Error: 400/) })]);
    const log = (await h.bus.logs.history(a.id)).map((e) => e.entry.text).join('\n');
    expect(log).toMatch(/failed: API Error: 400[\s\S]*retried: queued again \(it had ended failed after 1 attempt[\s\S]*completed by/);
    expect(await h.bus.redis.zscore(h.bus.keys.ended, a.id)).not.toBeNull();
  });

  it('retries a goal with a failed subtask: that subtask runs again and the goal completes', async () => {
    h = await AgentHarness.create('retry-goal');
    let refuse = true;
    h.script = (req) => (refuse && req.prompt.startsWith('Second') ? { status: 400, message: 'not yet' } : echoLast(req));
    await h.startAgent();
    const bus = h.bus;
    const graph = new TaskGraph(bus, silentLogger());
    const goal = await bus.tasks.create(taskSpecSchema.parse({ domain: 'main', description: 'Do two things', timeoutS: 60, maxAttempts: 3 }), 'queued');
    await bus.tasks.transition(goal.id, 'active', { mode: 'claim', agent: 'orch-1', fields: { agent: 'orch-1' } });
    const [s1, s2] = [newTaskId(), newTaskId()];
    const spec = (description: string, dependsOn: string[], key: string) => taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 60, maxAttempts: 3, dependsOn, key });
    expect(await bus.tasks.commitPlan(goal.id, [{ id: s1, spec: spec('First part', [], 'one') }, { id: s2, spec: spec('Second part', [s1], 'two') }], { tasks: [] }, { agent: 'orch-1', attempts: 1 })).toBe('ok');
    const settle = async (): Promise<TaskRecord> => {
      for (;;) {
        await graph.advance(goal.id);
        const now = await bus.tasks.get(goal.id);
        if (isTerminal(now.status)) return now;
        await sleep(200);
      }
    };
    expect((await settle()).status).toBe('failed');
    expect((await bus.tasks.get(s1)).status).toBe('completed');
    expect((await bus.tasks.get(s2)).status).toBe('failed');

    refuse = false;
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const retried = await runDan(['retry', goal.id], env);
    expect(String(retried.stdout), String(retried.stderr)).toMatch(new RegExp(`retrying goal ${goal.id} \\(it had ended failed after 1 attempt\\): 1 subtask again: ${s2}`));
    expect((await bus.tasks.get(goal.id)).status).toBe('active');
    expect(await bus.tasks.openGraphs()).toContain(goal.id);
    const done = await settle();
    expect(done.status).toBe('completed');
    expect(await bus.tasks.get(s2)).toMatchObject({ status: 'completed', attempts: 1, retried: [expect.objectContaining({ status: 'failed' })] });
    expect((await bus.tasks.get(s1)).attempts).toBe(1); // the completed part did not run again
  });

  it('refuses bad retries: exit 2, one line, nothing written', async () => {
    h = await AgentHarness.create('retry-bad');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const queued = await h.submit('not ended yet');
    await expectBadInput(expect, h.net, ['retry', queued.id], env, /is queued: only a failed, timed-out or cancelled task can be retried/);
    await expectBadInput(expect, h.net, ['retry', '01JAAAAAAAAAAAAAAAAAAAAAAA'], env, /no task with id/);
    await expectBadInput(expect, h.net, ['retry', 'x'], env, /task id "x" is not a task id/);
    const goal = await h.bus.tasks.create(taskSpecSchema.parse({ domain: 'main', description: 'goal', timeoutS: 60, maxAttempts: 3 }), 'queued');
    await h.bus.tasks.transition(goal.id, 'active', { mode: 'claim', agent: 'orch-1', fields: { agent: 'orch-1' } });
    const sub = newTaskId();
    await h.bus.tasks.commitPlan(goal.id, [{ id: sub, spec: taskSpecSchema.parse({ domain: 'backend', description: 'part', timeoutS: 60, maxAttempts: 3 }) }], {}, { agent: 'orch-1', attempts: 1 });
    await h.bus.tasks.transition(sub, 'failed', { text: 'failed for the test' });
    await expectBadInput(expect, h.net, ['retry', sub], env, /is a subtask of goal \w+: retry the goal/);
  });
});

describe('questions to the user (ask_user → needs_input → dan answer)', () => {
  let h: AgentHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** Asks through dan's MCP tool when told to pick, then ends its turn; echoes anything else. */
  function askingModel(req: RecordedRequest): Turn {
    if (req.hasToolResult) return { text: 'I asked; waiting for the answer.' };
    if (req.lastUserText.startsWith('Pick a database')) {
      if (!req.tools.includes(ASK_USER_TOOL_ID)) return { text: `no ask_user tool offered: ${req.tools.join(', ')}` };
      return { text: 'I need a decision.', tools: [{ name: ASK_USER_TOOL_ID, input: { question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] } }] };
    }
    return echoLast(req);
  }

  it('a run that asks waits in needs_input, its agent takes other work, and the answer resumes its session', async () => {
    h = await AgentHarness.create('ask');
    h.script = askingModel;
    await h.startAgent();
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const sent = await runDan(['send-task', 'backend', 'Pick a database for the app', '--wait', '--quiet'], env, { timeoutMs: 120_000 });
    expect(sent.exitCode, String(sent.stderr)).toBe(5);
    expect(String(sent.stderr)).toMatch(/needs input \w+: SQLite or Postgres\?\n  options: SQLite \| Postgres\n  answer: dan answer \w+ "<text>"/);
    const id = String(sent.stdout).trim();
    const asked = await h.bus.tasks.get(id);
    expect(asked).toMatchObject({ status: 'needs_input', question: { question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] } });
    expect(asked.finishedAt).toBeUndefined();

    // The agent is free meanwhile.
    const other = await h.submit('Something else');
    expect((await h.waitForEnd(other.id)).status).toBe('completed');
    const listed = await runDan(['tasks', '--status', 'needs_input'], env);
    expect(String(listed.stdout)).toMatch(new RegExp(`${id}\\s+backend\\s+.+SQLite or Postgres\\?`));

    const answered = await runDan(['answer', id, 'Postgres, please'], env);
    expect(answered.exitCode, String(answered.stderr)).toBe(0);
    const done = await h.waitForEnd(id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, result: 'Echo: Postgres, please' });
    expect(done.answer).toBeUndefined();
    const resumed = h.server.requests.find((r) => !r.side && r.lastUserText === 'Postgres, please');
    expect(resumed, 'the answer reached the model as the next user message').toBeDefined();
    expect(conversationText(resumed!)).toContain('Pick a database for the app');
    expect(conversationText(resumed!)).toContain(DELIVERED);

    const logs = (await h.bus.logs.history(id)).map((e) => e.entry.text).join('\n');
    expect(logs).toMatch(/needs input: Q: SQLite or Postgres\? \(options: SQLite \| Postgres\)[\s\S]*answered: A: Postgres, please/);
  });

  it('refuses bad answers: exit 2, one line, nothing written', async () => {
    h = await AgentHarness.create('ask-bad');
    const env = { REDIS_URL: h.net.config.redisUrl, DAN_NETWORK: h.net.network };
    const queued = await h.submit('not asking');
    await expectBadInput(expect, h.net, ['answer', queued.id, 'yes'], env, /is queued, not waiting for input/);
    await expectBadInput(expect, h.net, ['answer', '01JAAAAAAAAAAAAAAAAAAAAAAA', 'yes'], env, /no task with id/);
    await expectBadInput(expect, h.net, ['answer', queued.id, ''], env, /the answer must not be empty/);
    await expectBadInput(expect, h.net, ['answer', queued.id, 'x'.repeat(64 * 1024 + 1)], env, /the answer must be at most 65536 bytes/);
  });

  it('a question unanswered for DAN_INPUT_TIMEOUT_S fails with reason no answer', async () => {
    h = await AgentHarness.create('ask-timeout');
    const task = await h.submit('asks');
    await h.bus.tasks.transition(task.id, 'active', { mode: 'claim', agent: 'a-1', fields: { agent: 'a-1' } });
    await h.bus.tasks.transition(task.id, 'needs_input', { fields: { question: JSON.stringify({ question: 'Well?' }) } });
    const reconciler = new Reconciler(h.bus, silentLogger(), { graceMs: 0, inputTimeoutMs: 60_000 });
    expect(await reconciler.reconcileOnce()).toEqual([]);
    const later = new Reconciler(h.bus, silentLogger(), { graceMs: 0, inputTimeoutMs: 60_000, now: () => Date.now() + 61_000 });
    expect(await later.reconcileOnce()).toEqual([task.id]);
    expect(await h.bus.tasks.get(task.id)).toMatchObject({ status: 'failed', reason: 'no answer', error: expect.stringMatching(/^no answer/) });
  });
});

describe('MCP servers of a domain (.mcp.json)', () => {
  let h: AgentHarness | undefined;
  let templates: string | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
    if (templates) await rm(templates, { recursive: true, force: true });
  });

  it("offers the domain's server to the model next to dan's own, and its tool call succeeds, a ${VAR} reference expanded", async () => {
    templates = await mkdtemp(path.join(os.tmpdir(), 'dan-mcp-templates-'));
    await cp(path.join(repoRoot(), 'agents'), templates, { recursive: true });
    const server = { command: process.execPath, args: [path.join(repoRoot(), 'tests/fixtures/shout-mcp-server.mjs')], env: { SHOUT_SUFFIX: '${HOME}' } };
    await writeFile(path.join(templates, 'domain-templates/backend/.mcp.json'), JSON.stringify({ mcpServers: { shout: server } }));
    h = await AgentHarness.create('mcp', { DAN_TEMPLATES: templates });
    let offered: string[] = [];
    h.script = (req) => {
      if (req.hasToolResult) return { text: `The server said: ${req.toolResults[0]?.text ?? ''}` };
      offered = req.tools;
      return { text: 'Calling it.', tools: [{ name: 'mcp__shout__shout', input: { text: 'hello' } }] };
    };
    await h.startAgent();
    const task = await h.submit('Shout hello');
    const done = await h.waitForEnd(task.id);
    expect(offered).toEqual(expect.arrayContaining(['mcp__shout__shout', ASK_USER_TOOL_ID]));
    expect(done.status).toBe('completed');
    expect(done.result).toBe(`The server said: HELLO (${process.env.HOME ?? os.homedir()})`);
  });
});
