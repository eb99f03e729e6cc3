import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { dashboardDir } from '../../lib/web/index.js';
import { ASK_USER_TOOL_ID } from '../../lib/mcp/dan-mcp-server.js';
import { taskSpecSchema } from '../../lib/task.js';
import { writeFileScenario } from '../fixtures/model-server.js';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { snapshot } from '../helpers/network.js';
import { startWeb, type TestWeb } from '../helpers/web.js';
import { World, itWith } from '../helpers/world.js';

/**
 * The dashboard in real headless Chromium (Debian's, through playwright-core) against a real `dan serve`, a real
 * orchestrator and real `dan agent` processes running the real claude binary against the scripted model server.
 * Screenshots go to DAN_SCREENSHOTS_DIR when it is set (docs/screenshots for the README), else to a temporary folder.
 */

const TIMINGS = { DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '1200', DAN_REAPER_MS: '200', DAN_IDLE_TIMEOUT_MS: '5000', DAN_SHUTDOWN_GRACE_MS: '300' };
const SHOTS = process.env.DAN_SCREENSHOTS_DIR ? path.resolve(process.env.DAN_SCREENSHOTS_DIR) : path.join(os.tmpdir(), 'dan-dashboard-shots');

class WebWorld extends World {
  web: TestWeb | undefined;
  page: Page | undefined;

  async open(hash: string): Promise<Page> {
    this.web ??= await startWeb(this.net, { dashboardDir: dashboardDir() });
    this.page ??= await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await this.page.goto(`${this.web.url}/#${hash}`);
    return this.page;
  }

  override async close(): Promise<void> {
    await this.page?.close();
    await this.web?.close();
    await super.close();
  }
}

let browser: Browser;
const it = itWith(() => WebWorld.create({ label: 'webui', settings: TIMINGS, waitTimeoutMs: 60_000 }));

beforeAll(async () => {
  // `npm run build` makes the dashboard; a test run from a fresh clone without it builds it here.
  if (!existsSync(path.join(dashboardDir(), 'index.html'))) await execa('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { cwd: repoRoot() });
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const badge = (page: Page) => page.locator('.head .status');

describe('the dashboard', () => {
  it('sends a task from the form and shows it go queued → active → completed live, without reloading', async ({ w }) => {
    // The model answers only when the test lets it, so the page can be seen in each state.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const base = writeFileScenario();
    w.script = async (req) => {
      await released;
      return base(req);
    };
    const page = await w.open('/send');
    await page.locator('select[name=domain]').selectOption('backend');
    await page.locator('textarea[name=description]').fill('write the greeting file');
    await page.locator('select[name=priority]').selectOption('high');
    await shot(page, 'send-form');
    await page.getByRole('button', { name: 'Send task' }).click();
    await page.waitForURL(/#\/tasks\/[0-9A-Z]{26}$/);
    const id = page.url().split('/').pop()!;
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1)); // gone if the page reloads
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('queued');

    await w.startOrchestrator('orchestrator-ui');
    await expect.poll(() => badge(page).textContent(), { timeout: 60_000 }).toBe('active');
    await shot(page, 'task-active');
    release();
    await expect.poll(() => badge(page).textContent(), { timeout: 60_000 }).toBe('completed');
    await expect.poll(() => page.locator('[data-testid=result]').count(), { timeout: 30_000 }).toBe(1);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    // The log shows the CLI's entry kinds, the transitions among them.
    const types = await page.locator('.log li').evaluateAll((items) => items.map((i) => i.getAttribute('data-type')));
    expect(types).toEqual(expect.arrayContaining(['status', 'init', 'tool_use', 'result']));
    expect((await w.bus.tasks.get(id)).status).toBe('completed');
    await shot(page, 'task-completed');

    await page.goto(`${w.web!.url}/#/`);
    await expect.poll(() => page.locator(`tr[data-task="${id}"] .status`).textContent(), { timeout: 30_000 }).toBe('completed');
    await shot(page, 'overview');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'overview-dark');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'overview-phone');
  });

  it('shows the server\'s validation errors inline and writes nothing', async ({ w }) => {
    const page = await w.open('/send');
    // Once the form has its domains: reading queue depths makes BullMQ write its queues' meta keys, once.
    await expect.poll(() => page.locator('select[name=domain] option').count(), { timeout: 30_000 }).toBe(5);
    const before = await snapshot(w.bus.redis, w.net.config.prefix);
    await page.locator('textarea[name=description]').fill('   ');
    await page.getByRole('button', { name: 'Send task' }).click();
    await expect.poll(() => page.locator('#description-error').textContent(), { timeout: 30_000 }).toMatch(/description .* must not be empty/);
    expect(await page.locator('textarea[name=description]').getAttribute('aria-invalid')).toBe('true');
    await page.locator('textarea[name=description]').fill('fine');
    await page.locator('input[name=timeoutS]').fill('5');
    await page.getByRole('button', { name: 'Send task' }).click();
    await expect.poll(() => page.locator('#timeoutS-error').textContent(), { timeout: 30_000 }).toMatch(/timeoutS must be at least 10 seconds/);
    await page.locator('input[name=timeoutS]').fill('');
    await page.locator('textarea[name=context]').fill('{"repo":');
    await page.getByRole('button', { name: 'Send task' }).click();
    await expect.poll(() => page.locator('#context-error').textContent(), { timeout: 30_000 }).toMatch(/not valid JSON/);
    await shot(page, 'send-form-errors');
    expect(await snapshot(w.bus.redis, w.net.config.prefix)).toEqual(before);
  });

  it("draws a goal's graph, recolours its nodes as subtasks move, and links each to its subtask", async ({ w }) => {
    const spec = (over: Record<string, unknown>) => taskSpecSchema.parse({ domain: 'backend', description: 'part', timeoutS: 60, maxAttempts: 3, ...over });
    const goal = await w.bus.submit(spec({ domain: 'main', description: 'ship the feature' }));
    const api = await w.bus.submit(spec({ description: 'the API', parent: goal.id, key: 'api' }), { waiting: true });
    const ui = await w.bus.submit(spec({ domain: 'frontend', description: 'the page', parent: goal.id, key: 'ui', dependsOn: [api.id] }), { waiting: true });
    const docs = await w.bus.submit(spec({ domain: 'devops', description: 'the docs', parent: goal.id, key: 'docs', dependsOn: [api.id] }), { waiting: true });
    const page = await w.open(`/tasks/${goal.id}`);
    await expect.poll(() => page.locator('svg.graph a.node').count(), { timeout: 30_000 }).toBe(3);
    expect(await page.locator('svg.graph .edge').count()).toBe(2);
    expect(await page.locator(`svg.graph a.node[data-task="${api.id}"]`).getAttribute('data-status')).toBe('waiting');

    await w.bus.tasks.transition(api.id, 'queued', { text: 'dependencies done' });
    await w.bus.tasks.transition(api.id, 'active', { mode: 'claim', agent: 'agent-x', fields: { agent: 'agent-x', startedAt: Date.now() } });
    await expect.poll(() => page.locator(`svg.graph a.node[data-task="${api.id}"]`).getAttribute('data-status'), { timeout: 30_000 }).toBe('active');
    await w.bus.tasks.transition(api.id, 'completed', { agent: 'agent-x', text: 'done', fields: { finishedAt: Date.now(), result: 'ok', costUsd: 0.01 } });
    await w.bus.tasks.transition(ui.id, 'queued', { text: 'dependencies done' });
    await expect.poll(() => page.locator(`svg.graph a.node[data-task="${api.id}"]`).getAttribute('data-status'), { timeout: 30_000 }).toBe('completed');
    await expect.poll(() => page.locator(`svg.graph a.node[data-task="${ui.id}"]`).getAttribute('data-status'), { timeout: 30_000 }).toBe('queued');
    expect(await page.locator(`svg.graph a.node[data-task="${docs.id}"]`).getAttribute('data-status')).toBe('waiting');
    await shot(page, 'goal-graph');

    await page.locator(`svg.graph a.node[data-task="${ui.id}"]`).click();
    await page.waitForURL(new RegExp(`#/tasks/${ui.id}$`));
    await expect.poll(() => page.locator('.head h1').textContent(), { timeout: 30_000 }).toBe(ui.id);
  });

  it('cancels a task from its page', async ({ w }) => {
    const task = await w.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'never mind', timeoutS: 60, maxAttempts: 3 }));
    const page = await w.open(`/tasks/${task.id}`);
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('queued');
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('cancelled');
    expect((await w.bus.tasks.get(task.id)).status).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
  });

  it('shows the question of a task that needs input and sends the answer from the page; the run resumes with it', async ({ w }) => {
    w.script = (req) => {
      if (req.hasToolResult) return { text: 'I asked; waiting for the answer.' };
      if (req.lastUserText.startsWith('Pick a database')) return { text: 'I need a decision.', tools: [{ name: ASK_USER_TOOL_ID, input: { question: 'SQLite or Postgres?', options: ['SQLite', 'Postgres'] } }] };
      return { text: `Echo: ${req.lastUserText}` };
    };
    await w.startOrchestrator('orchestrator-ask');
    const task = await w.submit('Pick a database for the app');
    const page = await w.open(`/tasks/${task.id}`);
    await expect.poll(() => badge(page).textContent(), { timeout: 90_000 }).toBe('needs input');
    await expect.poll(() => page.locator('[data-testid=question]').textContent(), { timeout: 30_000 }).toBe('SQLite or Postgres?');
    // An empty answer: the server's message (the CLI's words) under the box, nothing written.
    const [record, log] = [await w.bus.tasks.get(task.id), await w.entries(task.id)];
    await page.getByRole('button', { name: 'Send answer' }).click();
    await expect.poll(() => page.locator('#answer-error').textContent(), { timeout: 30_000 }).toMatch(/^the answer must not be empty/);
    expect(await page.locator('textarea[name=answer]').getAttribute('aria-invalid')).toBe('true');
    expect(await w.bus.tasks.get(task.id)).toEqual(record);
    expect(await w.entries(task.id)).toEqual(log);
    await page.getByRole('button', { name: 'Postgres' }).click();
    expect(await page.locator('textarea[name=answer]').inputValue()).toBe('Postgres');
    expect(await page.locator('#answer-error').count()).toBe(0);
    await shot(page, 'task-needs-input');
    await page.getByRole('button', { name: 'Send answer' }).click();
    await w.waitFor(task.id, (r) => r.status === 'completed', 'the answered task to complete', 90_000);
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('completed');
    expect(await w.bus.tasks.get(task.id)).toMatchObject({ status: 'completed', attempts: 2, result: 'Echo: Postgres' });
    expect(await page.locator('[data-testid=question]').count()).toBe(0);
  });

  it('retries a failed task from its page', async ({ w }) => {
    const task = await w.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'try again', timeoutS: 60, maxAttempts: 3 }));
    await w.bus.tasks.transition(task.id, 'failed', { text: 'failed for the test' });
    const page = await w.open(`/tasks/${task.id}`);
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('failed');
    await page.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => badge(page).textContent(), { timeout: 30_000 }).toBe('queued');
    expect(await page.getByRole('status').textContent()).toBe('Queued again.');
    expect(await w.bus.tasks.get(task.id)).toMatchObject({ status: 'queued', retried: [expect.objectContaining({ status: 'failed' })] });
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
  });

  it("shows a task's review gates: each round's verdict and findings, linked to its review task", async ({ w }) => {
    const task = await w.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'reviewed twice', timeoutS: 60, maxAttempts: 1, gates: ['code'] }));
    const reviews = [
      {
        gate: 'code',
        state: 'fail',
        rounds: [
          { task: '01M8VXG8FFBNX8V6BT3SF1Z7GB', verdict: 'fail', findings: [{ file: 'hello.txt', line: 1, severity: 'high', message: 'greet the user by name' }], summary: 'too generic', costUsd: 0.1 },
          { task: '01M8VXGKBH4VSDD995ZWVKKVHN', verdict: 'fail', findings: [{ file: 'hello.txt', line: 2, severity: 'medium', message: 'still generic' }], summary: 'better, not there', costUsd: 0.1 },
        ],
      },
    ];
    await w.bus.tasks.transition(task.id, 'failed', { text: 'failed its review', fields: { reason: 'review', error: 'review: the code gate failed after 2 rounds', reviews: JSON.stringify(reviews) } });
    const page = await w.open(`/tasks/${task.id}`);
    await expect.poll(() => page.locator('.gates .gate.fail h3').textContent(), { timeout: 30_000 }).toContain('code ✗');
    expect(await page.locator('.gates .gate h3').textContent()).toContain('(2 rounds)');
    expect(await page.locator('.gates li.mono').allTextContents()).toEqual(['hello.txt:1 [high] greet the user by name', 'hello.txt:2 [medium] still generic']);
    expect(await page.locator('.gates ol > li > a').first().getAttribute('href')).toBe('#/tasks/01M8VXG8FFBNX8V6BT3SF1Z7GB');
    await shot(page, 'review-gates');
  });
});
