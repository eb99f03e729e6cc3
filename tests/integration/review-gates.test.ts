import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { DomainAgent } from '../../lib/agent/index.js';
import type { Verdict } from '../../lib/gates.js';
import { createLogger } from '../../lib/log.js';
import { TaskGraph } from '../../lib/orchestrator/task-graph.js';
import { isTerminal, newTaskId, taskSpecSchema, type TaskRecord } from '../../lib/task.js';
import { ModelServer, primaryWorkingDirectory, writeFileScenario, type RecordedRequest, type Turn } from '../fixtures/model-server.js';
import { repoRoot, runDan } from '../helpers/cli.js';
import { LogCapture } from '../helpers/log-capture.js';
import { eventually, openNetwork, testConfig, type TestNetwork } from '../helpers/network.js';
import { waitForTask } from '../helpers/wait-for-task.js';
import { itWith } from '../helpers/world.js';

const CLAUDE_BIN = path.join(repoRoot(), 'node_modules', '.bin', 'claude');
const SETTINGS = { DAN_CLAUDE_BIN: CLAUDE_BIN, DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '3000', DAN_REAPER_MS: '200' };
const GIT_ENV = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' };
const FIX_MARK = 'did not pass the';

/** What a scripted reviewer answers: a verdict through the CLI's StructuredOutput tool, or plain text (invalid). */
type ReviewAnswer = Verdict | { text: string };

const FAIL: Verdict = { verdict: 'fail', findings: [{ file: 'hello.txt', line: 1, severity: 'high', message: 'the greeting has no test' }], summary: 'missing test' };
const PASS: Verdict = { verdict: 'pass', findings: [], summary: 'looks right' };

/**
 * The scripted model of these tests. The author writes the file its task names, and answers findings by writing
 * fix.txt. A reviewer (offered the StructuredOutput tool by --json-schema) answers from `answers`, in order; one
 * that was told to try Write does so first, into its own working directory.
 */
class GateModel {
  readonly answers: ReviewAnswer[] = [];
  readonly reviewPrompts: string[] = [];
  readonly fixPrompts: string[] = [];
  /** The last user message of every reviewer request (the CLI's own enforcement turn, dan's retry …). */
  readonly reviewMessages: string[] = [];
  tryWrite = false;
  /** The first reviewer request hangs (its agent is stopped under it). */
  hangFirstReview = false;
  /** Whether a reviewer request was left hanging. */
  hung = false;
  private readonly write = writeFileScenario();

  turn(req: RecordedRequest): Turn {
    if (req.tools.includes('StructuredOutput')) return this.review(req);
    if (JSON.stringify(req.body).includes(FIX_MARK) || req.prompt.includes('review of the goal found')) {
      if (req.hasToolResult) return { text: 'Fixed every finding.' };
      this.fixPrompts.push(req.lastUserText);
      return { text: 'Fixing.', tools: [{ name: 'Write', input: { file_path: path.join(primaryWorkingDirectory(req)!, 'fix.txt'), content: 'a test for the greeting\n' } }] };
    }
    return this.write(req);
  }

  private review(req: RecordedRequest): Turn {
    if (this.hangFirstReview) {
      this.hangFirstReview = false;
      this.hung = true;
      return { hang: true };
    }
    const cwd = primaryWorkingDirectory(req)!;
    if (!req.hasToolResult && !this.reviewPrompts.includes(req.prompt)) this.reviewPrompts.push(req.prompt);
    this.reviewMessages.push(req.lastUserText);
    // After StructuredOutput's result the run ends with a line of text.
    if (req.hasToolResult && this.lastTool(req) === 'StructuredOutput') return { text: 'Verdict given.' };
    if (this.tryWrite && !req.hasToolResult) return { text: 'Let me fix it myself.', tools: [{ name: 'Write', input: { file_path: path.join(cwd, 'reviewer.txt'), content: 'edited by the reviewer\n' } }] };
    const answer = this.answers.shift() ?? PASS;
    if ('text' in answer) return { text: answer.text };
    return { text: 'My verdict.', tools: [{ name: 'StructuredOutput', input: answer }] };
  }

  private lastTool(req: RecordedRequest): string | undefined {
    const messages = ((req.body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? []).filter((m) => m.role === 'assistant');
    const blocks = messages.at(-1)?.content;
    if (!Array.isArray(blocks)) return undefined;
    return (blocks as Array<{ type?: string; name?: string }>).filter((b) => b.type === 'tool_use').at(-1)?.name;
  }
}

class GateWorld {
  readonly logs = new LogCapture();
  readonly agents: DomainAgent[] = [];

  private constructor(
    readonly net: TestNetwork,
    readonly server: ModelServer,
    readonly model: GateModel,
    readonly workspace: string,
  ) {}

  static async create(): Promise<GateWorld> {
    const workspace = await realpath(await mkdtemp(path.join(os.tmpdir(), 'dan-gates-ws-')));
    const net = await openNetwork({ DAN_WORKSPACE: workspace, ...SETTINGS }, 'gates');
    const model = new GateModel();
    const server = await ModelServer.start({ script: (req) => model.turn(req) });
    const world = new GateWorld(net, server, model, workspace);
    for (const domain of ['backend', 'review']) await world.startAgent(domain, `${domain}-gates`);
    return world;
  }

  async startAgent(domain: string, agentId: string): Promise<DomainAgent> {
    const config = testConfig(this.net.network, { DAN_WORKSPACE: this.workspace, ...SETTINGS });
    const env = { ANTHROPIC_BASE_URL: this.server.url, ANTHROPIC_API_KEY: 'sk-ant-api03-gates-test-000000000000', PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.homedir() };
    const agent = await DomainAgent.start({ config, domain, agentId, env, logger: createLogger({ level: 'info', destination: this.logs }) });
    this.agents.push(agent);
    return agent;
  }

  send(description: string, gates: string[]): Promise<TaskRecord> {
    return this.net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description, timeoutS: 300, maxAttempts: 2, gates }));
  }

  ended(id: string): Promise<TaskRecord> {
    return waitForTask(this.net.bus, id, (r) => r.status === 'completed' || r.status === 'failed', { what: `task ${id} to end`, timeoutMs: 240_000, context: async () => this.logs.lines.slice(-20).join('\n') });
  }

  /** Files on the integration branch. */
  integrationFiles(): string[] {
    return execFileSync('git', ['-C', this.workspace, 'ls-tree', '--name-only', 'HEAD'], { encoding: 'utf8', env: GIT_ENV }).trim().split('\n');
  }

  danEnv(): Record<string, string> {
    return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', REDIS_URL: this.net.config.redisUrl, DAN_NETWORK: this.net.network, DAN_WORKSPACE: this.workspace, DAN_ENV_FILE: '' };
  }

  async close(): Promise<void> {
    for (const agent of this.agents) await agent.stop('stopped', { graceMs: 0 }).catch(() => {});
    await this.server.close();
    await this.net.cleanup();
    await rm(this.workspace, { recursive: true, force: true });
    await rm(path.join(os.tmpdir(), 'dan', this.net.network), { recursive: true, force: true });
  }
}

const it = itWith(() => GateWorld.create());

describe('review gates', () => {
  it('a change that passes its gate on the first round merges; the review task is recorded with its verdict and never merges', async ({ w }) => {
    w.model.answers.push(PASS);
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const done = await w.ended(sent.id);
    expect(done.status, done.error).toBe('completed');
    expect(done.git?.merge).toBe('merged');
    expect(done.reviews).toEqual([expect.objectContaining({ gate: 'code', state: 'pass', rounds: [expect.objectContaining({ verdict: 'pass', summary: 'looks right' })] })]);
    expect(w.integrationFiles()).toContain('hello.txt');

    const review = await w.net.bus.tasks.get(done.reviews![0]!.rounds[0]!.task);
    expect(review).toMatchObject({ domain: 'review', status: 'completed', review: { of: sent.id, gate: 'code', round: 1, commit: done.git!.commit }, verdict: PASS });
    expect(review.git?.merge).not.toBe('merged');
    // The reviewer saw the task, the checklist and the diff.
    const prompt = w.model.reviewPrompts[0]!;
    expect(prompt).toContain('Review gate "code"');
    expect(prompt).toContain('Write the file hello.txt with a greeting');
    expect(prompt).toContain('+Written by dan\'s scripted model.');
    expect(prompt).toMatch(/hello\.txt \(\+2 -0\)/);

    const status = await runDan(['status', sent.id], w.danEnv());
    expect(status.stdout).toMatch(/gates\s+code ✓ \(1 round\)/);
  }, 300_000);

  it('a failed gate sends the change back with its findings: two author runs, one merge', async ({ w }) => {
    w.model.answers.push(FAIL, PASS);
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const done = await w.ended(sent.id);
    expect(done.status, done.error).toBe('completed');
    expect(done.git?.merge).toBe('merged');
    expect(done.reviews![0]).toMatchObject({ gate: 'code', state: 'pass' });
    expect(done.reviews![0]!.rounds.map((r) => r.verdict)).toEqual(['fail', 'pass']);
    // The author's second run got the findings, in its own session.
    expect(w.model.fixPrompts).toHaveLength(1);
    expect(w.model.fixPrompts[0]).toContain('hello.txt:1 [high] the greeting has no test');
    // The second review saw the fix; the merge brought both files.
    expect(w.model.reviewPrompts[1]).toContain('fix.txt');
    expect(w.integrationFiles()).toEqual(expect.arrayContaining(['hello.txt', 'fix.txt']));
    const merges = execFileSync('git', ['-C', w.workspace, 'log', '--merges', '--oneline'], { encoding: 'utf8', env: GIT_ENV }).trim().split('\n');
    expect(merges).toHaveLength(1);
  }, 300_000);

  it('a gate still failing after DAN_REVIEW_ROUNDS fails the task with reason review, branch kept and unmerged; dan waive merges it', async ({ w }) => {
    w.model.answers.push(FAIL, FAIL);
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const done = await w.ended(sent.id);
    expect(done).toMatchObject({ status: 'failed', reason: 'review' });
    expect(done.error).toMatch(/^review: the code gate failed after 2 rounds: missing test/);
    expect(done.git).toMatchObject({ merge: 'skipped' });
    expect(done.reviews![0]).toMatchObject({ state: 'fail' });
    expect(w.integrationFiles()).not.toContain('hello.txt');
    const branch = execFileSync('git', ['-C', w.workspace, 'ls-tree', '--name-only', done.git!.branch], { encoding: 'utf8', env: GIT_ENV });
    expect(branch).toContain('hello.txt');
    const status = await runDan(['status', sent.id], w.danEnv());
    expect(status.stdout).toMatch(/gates\s+code ✗ \(2 rounds: 1 high\)/);
    expect(status.stdout).toContain('code: hello.txt:1 [high] the greeting has no test');

    const waived = await runDan(['waive', sent.id, '--gate', 'code', '--reason', 'the test lands separately'], { ...w.danEnv(), USER: 'alice' });
    expect(waived.exitCode, String(waived.stderr)).toBe(0);
    const after = await w.net.bus.tasks.get(sent.id);
    expect(after).toMatchObject({ status: 'completed', reason: 'review waived' });
    expect(after.git?.merge).toBe('merged');
    expect(after.reviews![0]).toMatchObject({ state: 'waived', waived: { by: 'alice', reason: 'the test lands separately' } });
    expect(w.integrationFiles()).toContain('hello.txt');
  }, 300_000);

  it('a reviewer that answers no valid verdict twice fails the gate with reason invalid verdict; the author is not sent back', async ({ w }) => {
    // The CLI itself asks once more for StructuredOutput; dan then gives the reviewer one more turn: four answers.
    w.model.answers.push({ text: 'Looks fine to me!' }, { text: 'Fine, really.' }, { text: 'Still fine.' }, { text: 'Fine!' });
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const done = await w.ended(sent.id);
    expect(done).toMatchObject({ status: 'failed', reason: 'review' });
    expect(done.error).toMatch(/the code gate has no verdict: .*invalid verdict/);
    const review = await w.net.bus.tasks.get(done.reviews![0]!.rounds[0]!.task);
    expect(review).toMatchObject({ status: 'failed', reason: 'invalid verdict' });
    expect(review.error).toMatch(/^invalid verdict: the answer is not JSON: "Fine!"/);
    // dan's one retry told the reviewer what was wrong.
    expect(w.model.reviewMessages.some((m) => m.includes('Your answer is not a valid verdict: the answer is not JSON'))).toBe(true);
    expect(w.model.fixPrompts).toHaveLength(0);
    expect(w.integrationFiles()).not.toContain('hello.txt');
  }, 300_000);

  it('a reviewer cannot write: the Write its model attempts is refused and nothing of it reaches any branch', async ({ w }) => {
    w.model.tryWrite = true;
    w.model.answers.push(PASS);
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const done = await w.ended(sent.id);
    expect(done.status, done.error).toBe('completed');
    const review = await w.net.bus.tasks.get(done.reviews![0]!.rounds[0]!.task);
    expect(review.git?.merge).toBe('nothing to commit');
    expect(existsSync(path.join(w.workspace, 'reviewer.txt'))).toBe(false);
    const history = (await w.net.bus.logs.history(review.id)).map((e) => `${e.entry.type}: ${e.entry.text}`).join('\n');
    expect(history).toMatch(/Write/);
    const all = execFileSync('git', ['-C', w.workspace, 'log', '--all', '--name-only', '--format='], { encoding: 'utf8', env: GIT_ENV });
    expect(all).not.toContain('reviewer.txt');
  }, 300_000);

  it("a reviewer that dies mid-review is replaced: its review task runs again on another agent, and the author's change merges as it was", async ({ w }) => {
    w.model.hangFirstReview = true;
    w.model.answers.push(PASS);
    const sent = await w.send('Write the file hello.txt with a greeting', ['code']);
    const reviewing = await eventually(async () => (await w.net.bus.tasks.list({ domain: 'review', status: 'active' }))[0], { what: 'the review to start', timeoutMs: 120_000 });
    await eventually(async () => w.model.hung, { what: "the reviewer's CLI to wait on the model", timeoutMs: 120_000 });
    // The review agent goes while its CLI waits on the model: its task goes back to the queue.
    await w.agents.find((a) => a.id === 'review-gates')!.stop('stopped', { graceMs: 0 });
    await w.startAgent('review', 'review-gates-2');
    const done = await w.ended(sent.id);
    expect(done.status, done.error).toBe('completed');
    expect(done.git).toMatchObject({ merge: 'merged', branch: `dan/${sent.id}` });
    expect(done.reviews![0]).toMatchObject({ state: 'pass', rounds: [expect.objectContaining({ task: reviewing.id, verdict: 'pass' })] });
    const review = await w.net.bus.tasks.get(reviewing.id);
    expect(review).toMatchObject({ status: 'completed', agent: 'review-gates-2' });
    // One round only, and one author run: the author was not sent back.
    expect(w.model.fixPrompts).toHaveLength(0);
    expect(w.integrationFiles()).toContain('hello.txt');
  }, 300_000);

  it("a goal's own gate reviews its merged subtasks; a failure becomes a fix-up subtask of the domain owning the file, then the gate passes", async ({ w }) => {
    w.model.answers.push(FAIL, PASS);
    const goal = await w.net.bus.submit(taskSpecSchema.parse({ domain: 'main', description: 'Greet people', timeoutS: 300, maxAttempts: 1, gates: ['code'] }));
    // What the goal worker does once the planner answered: the goal active under it, its plan committed.
    await w.net.bus.tasks.transition(goal.id, 'active', { mode: 'claim', agent: 'orch-gates', fields: { agent: 'orch-gates', startedAt: Date.now() } });
    const greet = taskSpecSchema.parse({ domain: 'backend', description: 'Write the file hello.txt with a greeting', timeoutS: 300, maxAttempts: 2, key: 'greet' });
    expect(await w.net.bus.tasks.commitPlan(goal.id, [{ id: newTaskId(), spec: greet }], { subtasks: [{ key: 'greet' }] }, { agent: 'orch-gates', attempts: 1 })).toBe('ok');
    // The leader's graph, moved along as subtasks and reviews end.
    const graph = new TaskGraph(w.net.bus, createLogger({ level: 'silent' }), { templatesDir: w.net.config.templatesDir, reviewRounds: 2, taskAttempts: 2 });
    const done = await eventually(
      async () => {
        const record = await w.net.bus.tasks.get(goal.id);
        if (isTerminal(record.status)) return record;
        await graph.advance(goal.id);
        return undefined;
      },
      { what: 'the goal to end', timeoutMs: 240_000, intervalMs: 300 },
    );
    expect(done.status, done.error).toBe('completed');
    expect(done.reviews).toHaveLength(1);
    const gate = done.reviews![0]!;
    expect(gate).toMatchObject({ gate: 'code', state: 'pass' });
    expect(gate.rounds.map((r) => r.verdict)).toEqual(['fail', 'pass']);
    const fixup = await w.net.bus.tasks.get(gate.rounds[0]!.fixup!);
    expect(fixup).toMatchObject({ parent: goal.id, domain: 'backend', key: 'fix-code-1', status: 'completed' });
    expect(fixup.description).toContain('hello.txt:1 [high] the greeting has no test');
    expect(fixup.git?.merge).toBe('merged');
    // The reviewer was told where each subtask's change is; the second round saw the fix-up too.
    expect(w.model.reviewPrompts[0]).toContain('Review gate "code" for goal');
    expect(w.model.reviewPrompts[0]).toMatch(/### greet \(backend\): Write the file hello\.txt/);
    expect(w.model.reviewPrompts[1]).toContain('### fix-code-1 (backend)');
    expect(w.integrationFiles()).toEqual(expect.arrayContaining(['hello.txt', 'fix.txt']));
  }, 300_000);

  it('refuses an unknown gate and gates in shared mode, in one line with exit 2, writing nothing', async ({ w }) => {
    const before = await w.net.bus.tasks.recentIds(10);
    const unknown = await runDan(['send-task', 'backend', 'x', '--gate', 'secruity'], w.danEnv());
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr).trim()).toMatch(/--gate: unknown gate "secruity" \(did you mean security\?\); the gates are code, security, tests/);
    const shared = await runDan(['send-task', 'backend', 'x', '--gate', 'code'], { ...w.danEnv(), DAN_WORKSPACE_MODE: 'shared' });
    expect(shared.exitCode).toBe(2);
    expect(String(shared.stderr).trim().split('\n')).toHaveLength(1);
    expect(shared.stderr).toMatch(/DAN_WORKSPACE_MODE=shared gives a task none/);
    const both = await runDan(['send-task', 'backend', 'x', '--gate', 'code', '--no-gates'], w.danEnv());
    expect(both.exitCode).toBe(2);
    expect(await w.net.bus.tasks.recentIds(10)).toEqual(before);
  });
});
