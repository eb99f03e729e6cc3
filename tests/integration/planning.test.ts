import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { taskSpecSchema, type LogEntry, type TaskRecord } from '../../lib/task.js';
import { conversationRequests, goalOf, isPlanningRequest, planScenario, writeFileScenario, type RecordedRequest } from '../fixtures/model-server.js';
import { runDan } from '../helpers/cli.js';
import { eventually } from '../helpers/network.js';
import { World, itWith, type ModelScript } from '../helpers/world.js';

// Issue 5, end to end: a `main` goal is planned by the real claude binary against the scripted model, its
// subtasks run as a dependency graph on real `dan agent` processes (process runtime), and the goal ends
// with an aggregate. Real Redis, real orchestrators (in this process, or `dan orchestrator` children).

/** Short liveness timings: a dead orchestrator's lease lapses and it is reaped within seconds. */
const TIMINGS = {
  DAN_HEARTBEAT_MS: '200',
  DAN_HEARTBEAT_TTL_MS: '2000',
  DAN_REAPER_MS: '250',
  DAN_IDLE_TIMEOUT_MS: '5000',
  DAN_SHUTDOWN_GRACE_MS: '300',
};

/** A planning answer: prose and a fenced JSON plan, as the main orchestrator's CLAUDE.md asks. */
type PlanSubtask = { key: string; domain: string; description: string; dependsOn?: string[]; model?: string };
const planText = (...subtasks: PlanSubtask[]): string => `Here is the plan.\n\n\`\`\`json\n${JSON.stringify({ subtasks }, null, 2)}\n\`\`\``;

/**
 * The world of a goal: the model answers planning requests with `planner` and the subtasks' conversations
 * with `worker`.
 */
class PlanningWorld extends World {
  planner: ModelScript = planScenario();
  worker: ModelScript = writeFileScenario();
  override script: ModelScript = (req) => (isPlanningRequest(req) ? this.planner(req) : this.worker(req));

  /** Sends a goal to `main`, as `dan send-task main` does. */
  submitGoal(description: string): Promise<TaskRecord> {
    return this.bus.submit(taskSpecSchema.parse({ domain: 'main', description, timeoutS: 90, maxAttempts: 3 }));
  }

  /** A goal's subtasks by key. */
  async subtasks(goalId: string): Promise<Record<string, TaskRecord>> {
    const goal = await this.bus.tasks.get(goalId);
    return Object.fromEntries((await this.bus.tasks.getMany(goal.children)).map((r) => [r.key!, r]));
  }

  /** The model turns of planning conversations whose goal mentions `word`. */
  planningRequests(word: string): RecordedRequest[] {
    return conversationRequests(this.server.requests).filter((r) => isPlanningRequest(r) && goalOf(r.prompt).includes(word));
  }

  /** The first model turn of the conversation a subtask started (its prompt begins with its description). */
  firstRequestOf(subtask: TaskRecord): RecordedRequest | undefined {
    return conversationRequests(this.server.requests).find((r) => !isPlanningRequest(r) && r.prompt.startsWith(subtask.description.trim()));
  }

  /** A goal and its subtasks as one line each: context for a failure message. */
  override async describe(goalId: string): Promise<string> {
    const goal = await this.bus.tasks.find(goalId).catch(() => undefined);
    if (!goal) return `no record ${goalId}`;
    const kids = await this.bus.tasks.getMany(goal.children).catch(() => []);
    return [goal, ...kids].map((r) => `${r.key ?? 'goal'} ${r.domain} ${r.status} ${r.agent ?? '-'} ${r.error ?? r.reason ?? ''}`).join('\n');
  }
}

// Each planning run is a process of its own (issue 16, item 1): on a busy 2-core machine it starts like an agent does.
const it = itWith(() => PlanningWorld.create({ label: 'plan', settings: TIMINGS, waitTimeoutMs: 120_000 }));

const statuses = (entries: LogEntry[]): string[] => entries.filter((e) => e.type === 'status').map((e) => e.status!);
const texts = (entries: LogEntry[]): string[] => entries.map((e) => e.text);

/** The `## Results of the tasks this one depends on` section: what a subtask's prompt says about its dependencies. */
const dependencySection = (prompt: string): string => {
  const at = prompt.indexOf('## Results of the tasks this one depends on');
  return at < 0 ? '' : prompt.slice(at);
};

describe('planning and running a multi-domain goal', { timeout: 240_000 }, () => {
  it('runs a backend → frontend plan in order, gives frontend the backend result, completes with the aggregate; dan status and dan logs show the tree', async ({ w }) => {
    await w.startOrchestrator('orch-1');
    const goal = await w.submitGoal('Create user registration with an API endpoint and a form component');

    const done = await w.waitForEnd(goal.id);
    expect(done.status, await w.describe(goal.id)).toBe('completed');
    const { api, form } = await w.subtasks(goal.id);
    expect(api).toMatchObject({ domain: 'backend', status: 'completed', parent: goal.id, dependsOn: [] });
    expect(form).toMatchObject({ domain: 'frontend', status: 'completed', parent: goal.id, dependsOn: [api!.id] });

    expect(JSON.parse(done.plan!)).toMatchObject({ source: 'model', subtasks: [{ key: 'api', id: api!.id }, { key: 'form', id: form!.id, dependsOn: ['api'] }] });
    expect(texts(await w.entries(goal.id))).toContain('planned 2 subtasks (by the model)');

    // Backend first: frontend was queued only after backend completed, and started after it finished.
    expect(api!.finishedAt!).toBeLessThanOrEqual(form!.startedAt!);
    expect(statuses(await w.entries(form!.id))).toEqual(['waiting', 'queued', 'active', 'completed']);
    expect(texts(await w.entries(form!.id))).toContain('dependencies completed (api); queued');

    // Frontend's first model turn carries backend's result, under the dependencies section.
    expect(api!.result).toMatch(/^Done: wrote backend-api\.md/);
    const firstFrontendTurn = w.firstRequestOf(form!);
    expect(firstFrontendTurn, 'no model turn for the frontend subtask').toBeDefined();
    expect(dependencySection(firstFrontendTurn!.prompt)).toContain(api!.result!.trim());
    expect(dependencySection(w.firstRequestOf(api!)!.prompt)).toBe(''); // backend depends on nothing

    // The aggregate: a summary per subtask, the files each changed (its branch's diff stat) and its merge, totals.
    expect(done.result).toContain('2 of 2 subtasks completed');
    expect(done.result).toContain('Files changed: backend-api.md, frontend-form.md');
    expect(done.result).toContain(`git: merged into main as ${api!.git!.mergeCommit!.slice(0, 10)}`);
    expect(done.result).toContain(`git: merged into main as ${form!.git!.mergeCommit!.slice(0, 10)}`);
    expect(done.result).toContain('## api (backend): completed');
    expect(done.result).toContain('## form (frontend): completed');
    // Totals: the planner's one turn plus the subtasks' turns and costs.
    expect(done.turns).toBe(1 + api!.turns! + form!.turns!);
    expect(done.costUsd!).toBeGreaterThanOrEqual(api!.costUsd! + form!.costUsd!);
    expect(await readFile(path.join(w.workspace, 'backend-api.md'), 'utf8')).toContain('backend API');
    expect(await readFile(path.join(w.workspace, 'frontend-form.md'), 'utf8')).toContain('frontend form');
    expect(await w.bus.tasks.openGraphs()).toEqual([]);

    // What a user sees: `dan status` (tree, --json, --mermaid) and `dan logs --task` on the goal.
    const env = w.danEnv();
    const [status, json, mermaidRun, logs] = await Promise.all([
      runDan(['status', goal.id], env),
      runDan(['status', goal.id, '--json'], env),
      runDan(['status', goal.id, '--mermaid'], env),
      runDan(['logs', '--task', goal.id, '--no-follow', '-n', '1000'], env),
    ]);
    expect(status.exitCode, String(status.stderr)).toBe(0);
    const tree = String(status.stdout);
    expect(tree).toMatch(/^subtasks$/m);
    expect(tree).toMatch(new RegExp(`^${goal.id} main completed  \\S+  \\$\\d+\\.\\d{4}  Create user registration`, 'm'));
    expect(tree).toMatch(new RegExp(`^├─ api backend completed  ${api!.agent}  \\S+  \\$\\d+\\.\\d{4}  ${api!.id}$`, 'm'));
    expect(tree).toMatch(new RegExp(`^└─ form frontend completed  ${form!.agent}  \\S+  \\$\\d+\\.\\d{4} after api  ${form!.id}$`, 'm'));

    const parsed = JSON.parse(String(json.stdout)) as TaskRecord & { subtasks: TaskRecord[] };
    expect(parsed).toMatchObject({ id: goal.id, status: 'completed', children: [api!.id, form!.id] });
    expect(parsed.subtasks.map((s) => [s.key, s.domain, s.status, s.dependsOn])).toEqual([
      ['api', 'backend', 'completed', []],
      ['form', 'frontend', 'completed', [api!.id]],
    ]);

    const mermaid = String(mermaidRun.stdout).split('\n');
    expect(mermaid[0]).toBe('flowchart TD');
    expect(mermaid).toContain(`  t${goal.id} --> t${api!.id}`);
    expect(mermaid).toContain(`  t${api!.id} --> t${form!.id}`);
    expect(mermaid).toContain(`  t${form!.id}["form<br/>frontend: completed"]`);

    expect(logs.exitCode, String(logs.stderr)).toBe(0);
    const lines = String(logs.stdout).split('\n');
    const apiDone = lines.findIndex((l) => / api\/backend +status +completed /.test(l));
    const formActive = lines.findIndex((l) => / form\/frontend +status +active /.test(l));
    expect(apiDone, String(logs.stdout)).toBeGreaterThan(-1);
    expect(formActive).toBeGreaterThan(apiDone); // interleaved in time order
    expect(lines.some((l) => / goal +info +plan accepted: api \(backend\); form \(frontend\) after api/.test(l))).toBe(true);
    expect(lines.some((l) => / form\/frontend +tool_use /.test(l))).toBe(true);
    // Every entry (continuation lines of multi-line text aside) carries its tag.
    const entryLines = lines.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l));
    expect(entryLines.length).toBeGreaterThan(20);
    expect(entryLines.filter((l) => !/^\S+ (goal|api\/backend|form\/frontend) /.test(l)), String(logs.stdout)).toEqual([]);
  });

  it('runs two independent subtasks at the same time', async ({ w }) => {
    w.planner = () => ({
      text: planText(
        { key: 'left', domain: 'backend', description: 'Answer LEFT for the parallel goal' },
        { key: 'right', domain: 'frontend', description: 'Answer RIGHT for the parallel goal' },
      ),
    });
    // Each subtask's model turn waits until the other's has arrived too (or 30 s), then takes 2 s more: both
    // conversations in flight at once is what running in parallel means, whatever the machine's speed.
    const arrived = new Set<string>();
    let release!: () => void;
    const bothArrived = new Promise<void>((resolve) => (release = resolve));
    w.worker = async (req) => {
      const key = req.prompt.startsWith('Answer LEFT') ? 'left' : 'right';
      arrived.add(key);
      if (arrived.size === 2) release();
      await Promise.race([bothArrived, new Promise((r) => setTimeout(r, 30_000))]);
      return { text: `${key} finished`, delayMs: 2000 };
    };
    await w.startOrchestrator('orch-1');
    const goal = await w.submitGoal('Do two unrelated things in parallel');

    const done = await w.waitForEnd(goal.id);
    expect(done.status, await w.describe(goal.id)).toBe('completed');
    const { left, right } = await w.subtasks(goal.id);
    expect([left!.dependsOn, right!.dependsOn]).toEqual([[], []]);
    expect(arrived).toEqual(new Set(['left', 'right']));
    // Their active intervals overlap: each started before the other finished.
    expect(left!.startedAt!).toBeLessThan(right!.finishedAt!);
    expect(right!.startedAt!).toBeLessThan(left!.finishedAt!);
    expect([left!.result, right!.result]).toEqual(['left finished', 'right finished']);
  });

  it("runs each subtask on its tier's model: small and large as DAN_MODEL_SMALL and DAN_MODEL_LARGE say, the rest on the CLI's default", async ({ w }) => {
    w.planner = () => ({
      text: planText(
        { key: 'rename', domain: 'backend', description: 'Write the file rename.txt, a simple rename', model: 'small' },
        { key: 'design', domain: 'frontend', description: 'Write the file design.txt, a subtle design', model: 'large' },
        { key: 'plain', domain: 'devops', description: 'Write the file plain.txt, ordinary work' },
      ),
    });
    await w.startOrchestrator('orch-1', { settings: { DAN_MODEL_SMALL: 'scripted-small', DAN_MODEL_LARGE: 'scripted-large' } });
    const goal = await w.submitGoal('Do three things of different difficulty');
    const done = await w.waitForEnd(goal.id);
    expect(done.status, await w.describe(goal.id)).toBe('completed');

    const { rename, design, plain } = await w.subtasks(goal.id);
    expect(rename).toMatchObject({ model: 'scripted-small', modelUsed: 'scripted-small' });
    expect(design).toMatchObject({ model: 'scripted-large', modelUsed: 'scripted-large' });
    expect(plain!.model).toBeUndefined();
    expect(w.firstRequestOf(rename!)?.model).toBe('scripted-small');
    expect(w.firstRequestOf(design!)?.model).toBe('scripted-large');
    expect(['scripted-small', 'scripted-large']).not.toContain(w.firstRequestOf(plain!)?.model);
  });

  it('rejects a cyclic plan and an unknown domain, retries once with the reason, and fails a goal whose plan is rejected twice', async ({ w }) => {
    const cycle = planText(
      { key: 'a', domain: 'backend', description: 'Part a', dependsOn: ['b'] },
      { key: 'b', domain: 'frontend', description: 'Part b', dependsOn: ['a'] },
    );
    const unknownDomain = planText({ key: 'app', domain: 'mobile', description: 'Build the mobile app' });
    w.planner = (req) => {
      const goal = goalOf(req.prompt);
      const retry = req.prompt.includes('Your previous plan was rejected');
      const fixed = planText({ key: 'fixed', domain: 'backend', description: `Reply that the corrected plan ran, for: ${goal}` });
      if (goal.includes('cyclic')) return { text: retry ? fixed : cycle };
      if (goal.includes('mobile')) return { text: retry ? fixed : unknownDomain };
      return { text: cycle }; // the stubborn goal: the same cycle both times
    };
    w.worker = (req) => ({ text: `corrected plan ran: ${req.prompt.split('\n')[0]}` });
    await w.startOrchestrator('orch-1');
    const cyclic = await w.submitGoal('Build the cyclic feature');
    const mobile = await w.submitGoal('Build the mobile feature');
    const stubborn = await w.submitGoal('Build the stubborn feature');

    const cycleReason = 'the dependencies form a cycle: a → b → a';
    const domainReason = 'unknown domain "mobile" (subtask app); available: backend, devops, frontend';
    for (const [goal, word, reason] of [
      [cyclic, 'cyclic', cycleReason],
      [mobile, 'mobile', domainReason],
    ] as const) {
      const done = await w.waitForEnd(goal.id);
      expect(done.status, await w.describe(goal.id)).toBe('completed');
      const asked = w.planningRequests(word);
      expect(asked).toHaveLength(2);
      expect(asked[0]!.prompt).not.toContain('rejected');
      expect(asked[1]!.prompt).toContain(`Your previous plan was rejected: ${reason}.`);
      const log = texts(await w.entries(goal.id));
      expect(log).toContain(`plan rejected: ${reason}`);
      expect(log).toContain(`asking again: ${reason}`);
      expect(log).toContain('planned 1 subtask (by the model)');
      // The corrected plan is the one that ran.
      const { fixed, ...others } = await w.subtasks(goal.id);
      expect(others).toEqual({});
      expect(fixed).toMatchObject({ domain: 'backend', status: 'completed' });
      expect(fixed!.result).toContain(`corrected plan ran: Reply that the corrected plan ran, for: Build the ${word} feature`);
      expect(JSON.parse(done.plan!)).toMatchObject({ source: 'model', subtasks: [{ key: 'fixed' }] });
    }

    const failed = await w.waitForEnd(stubborn.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe(`the plan was rejected twice; last reason: ${cycleReason}`);
    expect(failed.children).toEqual([]);
    expect(failed.plan).toBeUndefined();
    expect(w.planningRequests('stubborn')).toHaveLength(2);
    expect(statuses(await w.entries(stubborn.id))).toEqual(['queued', 'active', 'failed']);
  });

  it('falls back to keyword routing when no model is configured, and says so in the log', async ({ w }) => {
    // No ANTHROPIC_* in the orchestrator's environment: its planner has no model, and neither do the agents
    // it spawns (they inherit its environment). The agents run a stand-in CLI that needs none: valid
    // stream-json whose result names the part it was given, and which keeps each prompt it received.
    const standIn = path.join(w.workspace, '.standin', 'claude');
    await mkdir(path.dirname(standIn), { recursive: true });
    await writeFile(standIn, STAND_IN_CLAUDE, { mode: 0o755 });
    await w.startOrchestrator('orch-1', { env: {}, settings: { DAN_CLAUDE_BIN: standIn } });
    const goal = await w.submitGoal('Add a login API endpoint and a signup form component');

    const done = await w.waitForEnd(goal.id);
    expect(done.status, await w.describe(goal.id)).toBe('completed');
    const log = await w.entries(goal.id);
    const fallback = log.find((e) => e.text.startsWith('FALLBACK: '));
    expect(fallback?.text).toBe(
      'FALLBACK: no model is configured (no ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL, Bedrock or Vertex); used keyword routing: backend (backend); frontend (frontend) after backend',
    );
    expect(texts(log)).toContain('planned 2 subtasks (by keyword routing)');
    expect(w.server.requests).toEqual([]); // nobody asked a model

    const { backend, frontend } = await w.subtasks(goal.id);
    expect(backend).toMatchObject({ domain: 'backend', status: 'completed', dependsOn: [] });
    expect(frontend).toMatchObject({ domain: 'frontend', status: 'completed', dependsOn: [backend!.id] });
    expect(JSON.parse(done.plan!)).toMatchObject({ source: 'keywords', subtasks: [{ key: 'backend' }, { key: 'frontend', dependsOn: ['backend'] }] });
    expect(backend!.result).toBe('stand-in finished: Do the backend part');
    expect(backend!.finishedAt!).toBeLessThanOrEqual(frontend!.startedAt!);
    const prompts = await Promise.all(
      (await readdir(path.dirname(standIn))).filter((f) => f.endsWith('.prompt')).map((f) => readFile(path.join(path.dirname(standIn), f), 'utf8')),
    );
    const frontendPrompt = prompts.find((p) => p.includes('Do the frontend part of this goal only.'));
    expect(dependencySection(frontendPrompt ?? '')).toContain('stand-in finished: Do the backend part');
  });

  it('a failing subtask cancels its dependents with the reason and fails the goal, naming the part that failed', async ({ w }) => {
    w.planner = () => ({
      text: planText(
        { key: 'api', domain: 'backend', description: 'Build the refused API' },
        { key: 'form', domain: 'frontend', description: 'Build the form on the refused API', dependsOn: ['api'] },
        { key: 'ci', domain: 'devops', description: 'Ship the form', dependsOn: ['form'] },
      ),
    });
    w.worker = (req) =>
      req.prompt.startsWith('Build the refused API') ? { status: 400, message: 'scripted refusal of the api subtask' } : { text: 'should never run' };
    await w.startOrchestrator('orch-1');
    const goal = await w.submitGoal('Build a form on a new API and ship it');

    const done = await w.waitForEnd(goal.id);
    const { api, form, ci } = await w.subtasks(goal.id);
    expect(api).toMatchObject({ status: 'failed', attempts: 1 });
    expect(api!.error).toContain('scripted refusal of the api subtask');
    expect(form).toMatchObject({ status: 'cancelled', reason: 'dependency api (backend) ended failed' });
    expect(ci).toMatchObject({ status: 'cancelled', reason: 'dependency form (frontend) ended cancelled' });
    expect(statuses(await w.entries(form!.id))).toEqual(['waiting', 'cancelled']);
    expect(statuses(await w.entries(ci!.id))).toEqual(['waiting', 'cancelled']);
    expect(w.firstRequestOf(form!)).toBeUndefined();
    expect(w.firstRequestOf(ci!)).toBeUndefined();

    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/^subtasks did not complete: api \(backend\) failed: .*scripted refusal of the api subtask/);
    expect(done.error).toContain('; form (frontend) cancelled: dependency api (backend) ended failed; ci (devops) cancelled: dependency form (frontend) ended cancelled');
    expect(done.result).toContain('0 of 3 subtasks completed');
    expect(await w.bus.tasks.openGraphs()).toEqual([]);
  });

  it("a goal's budget is shared by its subtasks: spent by the first, the others are cancelled with reason budget and the goal fails naming it", async ({ w }) => {
    w.planner = () => ({
      text: planText(
        { key: 'api', domain: 'backend', description: 'Build the costly API' },
        { key: 'form', domain: 'frontend', description: 'Build the form on the costly API', dependsOn: ['api'] },
        { key: 'docs', domain: 'devops', description: 'Document the costly API', dependsOn: ['api'] },
      ),
    });
    await w.startOrchestrator('orch-1');
    const goal = await w.bus.submit(taskSpecSchema.parse({ domain: 'main', description: 'Build a costly API with a form and docs', timeoutS: 90, maxAttempts: 3, budgetUsd: 0.000001 }));

    const done = await w.waitForEnd(goal.id);
    const { api, form, docs } = await w.subtasks(goal.id);
    // The first subtask ran with what was left of the goal's budget (all of it) as its --max-budget-usd.
    expect(api!.costUsd).toBeGreaterThan(0);
    expect((await w.entries(api!.id)).some((e) => e.type === 'info' && e.text.startsWith("the goal's budget: $0.0000 of $0.000001 left"))).toBe(true);
    for (const rest of [form!, docs!]) {
      expect(rest).toMatchObject({ status: 'cancelled' });
      expect(rest.reason).toMatch(/^budget: the goal's budget \$0\.000001 is spent \(\$\d+\.\d{4}\)$/);
      expect(w.firstRequestOf(rest)).toBeUndefined();
    }
    expect(done).toMatchObject({ status: 'failed', reason: 'budget' });
    expect(done.error).toMatch(/^the goal's budget \$0\.000001 was spent \(\$\d+\.\d{4}\); subtasks did not complete: /);
    // Every run counts towards today's spend (DAN_DAILY_BUDGET_USD): the planning run under main, the subtask's under its domain.
    const spend = await w.bus.gate.spendToday();
    expect(spend.main).toBeGreaterThan(0);
    expect(spend.backend).toBeCloseTo(api!.costUsd!, 9);
    expect(await w.bus.tasks.openGraphs()).toEqual([]);
  });

  it('`dan cancel <goal>` cancels every open subtask, the running one included', async ({ w }) => {
    w.worker = (req) => (req.prompt.startsWith('Write the file backend-api.md') ? { hang: true } : writeFileScenario()(req));
    await w.startOrchestrator('orch-1');
    const goal = await w.submitGoal('Create a sign-up API and form');
    const active = await w.waitFor(goal.id, (r) => r.children.length === 2, 'the plan');
    const api = (await w.subtasks(active.id)).api!;
    await w.waitFor(api.id, (r) => r.status === 'active', 'the api subtask to run');
    await eventually(() => w.firstRequestOf(api), { what: "the api subtask's model turn" });

    const cancel = await runDan(['cancel', goal.id], w.danEnv());
    expect(cancel.exitCode, String(cancel.stderr)).toBe(0);
    expect(String(cancel.stdout).trim()).toBe(`cancelled ${goal.id} (was active)`);

    // Either the cancel itself or the leader's next look at the ended goal reaches a subtask first.
    const becauseOfParent = new RegExp(`^parent ${goal.id} (was|ended) cancelled$`);
    const apiEnd = await w.waitForEnd(api.id);
    expect(apiEnd.status).toBe('cancelled');
    expect(apiEnd.reason).toMatch(becauseOfParent);
    const { form } = await w.subtasks(goal.id);
    expect(form!.status).toBe('cancelled');
    expect(form!.reason).toMatch(becauseOfParent);
    expect(await w.bus.tasks.get(goal.id)).toMatchObject({ status: 'cancelled', reason: 'cancelled by user' });
    expect(await w.bus.tasks.openGraphs()).toEqual([]);
    expect(w.firstRequestOf(form!)).toBeUndefined();
  });

  it('a goal cancelled while it is being planned ends cancelled with no subtasks, even when the orchestrator missed the message', async ({ w }) => {
    // The planner's answers wait for the test: one never comes (the CLI is killed by the cancel), the other
    // once the cancel has been recorded.
    const plan = planScenario();
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    w.planner = async (req) => {
      if (goalOf(req.prompt).includes('dan cancel')) return { hang: true };
      await answered;
      return plan(req);
    };
    await w.startOrchestrator('orch-1');
    const told = await w.submitGoal('Cancel this API and form goal through dan cancel');
    const missed = await w.submitGoal('Cancel this API and form goal by the record only');
    await eventually(() => w.planningRequests('dan cancel').length > 0 && w.planningRequests('record only').length > 0, { what: 'both goals to be planning' });

    // `dan cancel`: the record says so and the orchestrator is told on its control channel.
    const cancel = await runDan(['cancel', told.id], w.danEnv());
    expect(String(cancel.stdout).trim(), String(cancel.stderr)).toBe(
      `cancelling ${told.id}: asked agent orch-1 to stop it; \`dan status ${told.id}\` shows when it has`,
    );
    // The same request when the control message is lost (a reconnecting subscriber): only the record says so.
    expect(await w.bus.tasks.requestCancel(missed.id, 'cancelled by user')).toMatchObject({ outcome: 'ok', agent: 'orch-1' });
    answer();

    for (const goal of [told, missed]) {
      const done = await w.waitForEnd(goal.id);
      expect(done, await w.describe(goal.id)).toMatchObject({ status: 'cancelled', reason: 'cancelled by user', children: [] });
      expect(done.plan).toBeUndefined();
    }
    expect(await w.bus.tasks.openGraphs()).toEqual([]);
    // Nothing was started for either goal.
    expect(conversationRequests(w.server.requests).filter((r) => !isPlanningRequest(r))).toEqual([]);
  });

  it('a new orchestrator finishes the graph of one killed mid-graph: each subtask completes exactly once, the goal is planned once', async ({ w }) => {
    // The backend subtask's first turn takes 3 s: long enough to kill the orchestrator while it runs.
    const write = writeFileScenario();
    w.worker = (req) => (req.prompt.startsWith('Write the file backend-api.md') && !req.hasToolResult ? { ...write(req), delayMs: 3000 } : write(req));
    const first = w.spawnDan(['orchestrator'], { AGENT_ID: 'orch-a' });
    await w.leads(first, 'orch-a', 30_000);
    const goal = await w.submitGoal('Create user registration with an API endpoint and a form component');
    await w.waitFor(goal.id, (r) => r.children.length === 2, 'the plan');
    const { api } = await w.subtasks(goal.id);
    await w.waitFor(api!.id, (r) => r.status === 'active', 'the api subtask to run');
    await eventually(() => w.firstRequestOf(api!), { what: "the api subtask's model turn" });

    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const second = await w.startOrchestrator('orch-b');

    const done = await w.waitForEnd(goal.id, 90_000);
    expect(done.status, await w.describe(goal.id)).toBe('completed');
    expect(second.isLeader).toBe(true);
    const subtasks = await w.subtasks(goal.id);
    expect(Object.keys(subtasks).sort()).toEqual(['api', 'form']);
    for (const [key, sub] of Object.entries(subtasks)) {
      expect(sub.status, key).toBe('completed');
      expect(statuses(await w.entries(sub.id)).filter((s) => s === 'completed'), key).toEqual(['completed']);
    }
    const goalLog = texts(await w.entries(goal.id));
    expect(goalLog.filter((t) => t.startsWith('planned '))).toEqual(['planned 2 subtasks (by the model)']);
    expect(w.planningRequests('user registration')).toHaveLength(1);
    expect(statuses(await w.entries(goal.id)).filter((s) => s === 'completed')).toEqual(['completed']);
    expect(await w.bus.tasks.openGraphs()).toEqual([]);
  });

  it('a goal whose orchestrator dies while planning it is planned again by the next one, and runs once', async ({ w }) => {
    // The first planning turn never answers: orch-a is killed in the middle of it.
    const plan = planScenario();
    let planning = 0;
    w.planner = (req) => (planning++ === 0 ? { hang: true } : plan(req));
    const first = w.spawnDan(['orchestrator'], { AGENT_ID: 'orch-a' });
    await w.leads(first, 'orch-a', 30_000);
    const goal = await w.submitGoal('Create user registration with an API endpoint and a form component');
    await eventually(() => w.planningRequests('user registration').length === 1, { what: 'orch-a to ask for a plan' });
    expect(await w.bus.tasks.get(goal.id)).toMatchObject({ status: 'active', agent: 'orch-a', attempts: 1 });

    first.child.kill('SIGKILL');
    await first.exited;
    await w.startOrchestrator('orch-b');

    const done = await w.waitForEnd(goal.id, 90_000);
    expect(done, await w.describe(goal.id)).toMatchObject({ status: 'completed', agent: 'orch-b', attempts: 2 });
    expect(w.planningRequests('user registration')).toHaveLength(2);
    expect(texts(await w.entries(goal.id)).filter((t) => t.startsWith('planned '))).toEqual(['planned 2 subtasks (by the model)']);
    const subtasks = await w.subtasks(goal.id);
    expect(Object.keys(subtasks).sort()).toEqual(['api', 'form']);
    for (const sub of Object.values(subtasks)) expect(statuses(await w.entries(sub.id)).filter((s) => s === 'completed')).toEqual(['completed']);
  });
});

/**
 * A stand-in for the claude CLI for agents of a network without a model: keeps the prompt it got (in
 * `.standin/<pid>.prompt` under its working directory, the workspace) and prints valid stream-json whose
 * result names the part of the goal it was asked to do.
 */
const STAND_IN_CLAUDE = `#!/bin/sh
prompt=''
while [ "$#" -gt 0 ]; do
  if [ "$1" = -- ]; then shift; prompt="$*"; break; fi
  shift
done
[ -n "$prompt" ] || prompt="$(cat)"
mkdir -p .standin
printf '%s' "$prompt" > ".standin/$$.prompt"
part=$(printf '%s\\n' "$prompt" | grep -o 'Do the [a-z]* part' | head -n 1)
printf '{"type":"system","subtype":"init","cwd":"%s","session_id":"standin-%s","tools":[],"mcp_servers":[],"model":"stand-in","permissionMode":"default"}\\n' "$PWD" "$$"
printf '{"type":"result","subtype":"success","is_error":false,"duration_ms":1,"num_turns":1,"result":"stand-in finished: %s","total_cost_usd":0,"usage":{"input_tokens":1,"output_tokens":1},"session_id":"standin-%s"}\\n' "$part" "$$"
`;
