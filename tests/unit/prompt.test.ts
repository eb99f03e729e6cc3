import { describe, expect, it } from 'vitest';
import { buildPrompt, type DependencyResult } from '../../lib/agent/index.js';
import type { TaskRecord } from '../../lib/task.js';

function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: '01J0000000000000000000TASK',
    domain: 'backend',
    description: 'Add a /health endpoint',
    priority: 'normal',
    timeoutS: 300,
    context: {},
    status: 'active',
    attempts: 1,
    maxAttempts: 3,
    createdAt: 0,
    updatedAt: 0,
    dependsOn: [],
    children: [],
    cancelRequested: false,
    noMerge: false,
    ...overrides,
  };
}

const parent = { id: '01J000000000000000000PARNT', description: 'Build a sign-up page\nwith an API behind it' };

describe('buildPrompt', () => {
  it('is the description alone, trimmed, for a plain task', () => {
    expect(buildPrompt(task({ description: '  Add a /health endpoint\n\n' }))).toBe('Add a /health endpoint');
  });

  it('adds the context as a JSON block', () => {
    const prompt = buildPrompt(task({ context: { repo: 'api', port: 8080 } }));
    expect(prompt).toBe('Add a /health endpoint\n\n## Context\n\n```json\n{\n  "repo": "api",\n  "port": 8080\n}\n```');
  });

  it("quotes a subtask's parent goal and names the subtask's key", () => {
    const prompt = buildPrompt(task({ key: 'api' }), parent);
    expect(prompt).toContain('## The larger goal');
    expect(prompt).toContain('This task ("api") is one part of this goal');
    expect(prompt).toContain('> Build a sign-up page\n> with an API behind it');
    expect(buildPrompt(task(), parent)).toContain('This task is one part of this goal');
  });

  it('passes on the results of the dependencies, headed by key or domain and the first line of their description', () => {
    const deps: DependencyResult[] = [
      { key: 'schema', domain: 'backend', description: 'Create the users table\nwith an email column', result: '  Created migrations/001_users.sql  ' },
      { domain: 'devops', description: 'Add CI', result: 'Added .github/workflows/ci.yml' },
    ];
    const prompt = buildPrompt(task({ key: 'api' }), parent, deps);
    expect(prompt).toContain('## Results of the tasks this one depends on');
    expect(prompt).toContain('### schema (backend): Create the users table\n\nCreated migrations/001_users.sql');
    expect(prompt).toContain('### devops (devops): Add CI\n\nAdded .github/workflows/ci.yml');
    expect(prompt).not.toContain('with an email column');
  });

  it('keeps the sections in order: task, context, goal, dependencies', () => {
    const prompt = buildPrompt(task({ context: { a: 1 } }), parent, [{ domain: 'frontend', description: 'Form', result: 'done' }]);
    const order = ['Add a /health endpoint', '## Context', '## The larger goal', '## Results of the tasks'].map((s) => prompt.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('truncates a long dependency result and a long description line', () => {
    const long = 'x'.repeat(20 * 1024);
    const prompt = buildPrompt(task(), undefined, [{ domain: 'backend', description: 'y'.repeat(200), result: long }]);
    expect(prompt).toContain(`${'x'.repeat(16 * 1024)}\n[… truncated]`);
    expect(prompt).not.toContain('x'.repeat(16 * 1024 + 1));
    expect(prompt).toContain(`### backend (backend): ${'y'.repeat(119)}…\n`);
  });

  it('leaves out a goal section without a parent, even with dependencies', () => {
    const prompt = buildPrompt(task(), undefined, [{ domain: 'backend', description: 'Schema', result: 'ok' }]);
    expect(prompt).not.toContain('## The larger goal');
    expect(prompt).toContain('### backend (backend): Schema\n\nok');
  });
});
