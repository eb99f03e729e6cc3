import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatMermaid, formatTree } from '../../bin/tree.js';
import type { StoredLogEntry } from '../../lib/messaging/index.js';
import { aggregate, filesChanged } from '../../lib/orchestrator/aggregate.js';
import { checkPlan, extractPlanJson, findCycle, keywordPlan, tierModel } from '../../lib/orchestrator/plan.js';
import type { LogEntry, TaskRecord } from '../../lib/task.js';

// The planner's pure parts (DESIGN.md, A task's life, step 5): reading the model's answer, checking the
// plan, the keyword fallback, the aggregate a goal completes with, and the tree and Mermaid views of it.

const DOMAINS = ['backend', 'devops', 'frontend'];
const LIMITS = { domains: DOMAINS, maxSubtasks: 12 };

const sub = (key: string, domain = 'backend', dependsOn: string[] = [], description = `Do ${key}`) => ({ key, domain, description, dependsOn });
const plan = (...subtasks: ReturnType<typeof sub>[]) => ({ subtasks });
/** The reason a plan is refused, or 'accepted'. */
const reasonFor = (json: unknown, limits = LIMITS): string => {
  const check = checkPlan(json, limits);
  return check.ok ? 'accepted' : check.reason;
};

describe('extractPlanJson: the plan from the CLI\'s final text', () => {
  const valid = plan(sub('api'), sub('form', 'frontend', ['api']));

  it('takes a fenced ```json block', () => {
    const text = `Here is the plan.\n\n\`\`\`json\n${JSON.stringify(valid, null, 2)}\n\`\`\`\n`;
    expect(extractPlanJson(text)).toEqual(valid);
  });

  it('takes a fenced block without a language tag', () => {
    expect(extractPlanJson(`Plan:\n\`\`\`\n${JSON.stringify(valid)}\n\`\`\``)).toEqual(valid);
  });

  it('prefers the fenced block over an object mentioned earlier in the prose', () => {
    const text = `The format is {"subtasks": []} as you asked.\n\`\`\`json\n${JSON.stringify(valid)}\n\`\`\``;
    expect(extractPlanJson(text)).toEqual(valid);
  });

  it('takes a bare object out of surrounding prose', () => {
    expect(extractPlanJson(`I would split it like this: ${JSON.stringify(valid)} and that is all.`)).toEqual(valid);
  });

  it('matches nested braces, and braces and escaped quotes inside strings', () => {
    const tricky = plan(sub('api', 'backend', [], 'Return {"ok": true} on success; a "}" or "{" in text must not end the object \\ really'));
    const text = `Plan follows ${JSON.stringify(tricky)} trailing } brace`;
    expect(extractPlanJson(text)).toEqual(tricky);
  });

  it('skips a brace that opens no JSON and takes the next object', () => {
    expect(extractPlanJson(`Use {curly braces} sparingly. ${JSON.stringify(valid)}`)).toEqual(valid);
  });

  it('falls back to the first object when the fenced block is not JSON', () => {
    const text = `\`\`\`json\n{ subtasks: oops }\n\`\`\`\nActually: ${JSON.stringify(valid)}`;
    expect(extractPlanJson(text)).toEqual(valid);
  });

  it('returns undefined when the text holds no JSON object', () => {
    expect(extractPlanJson('I cannot plan this goal.')).toBeUndefined();
    expect(extractPlanJson('an unbalanced { brace')).toBeUndefined();
    expect(extractPlanJson('')).toBeUndefined();
  });
});

describe('checkPlan', () => {
  it('accepts a valid plan, defaulting dependsOn and removing repeated dependencies', () => {
    const check = checkPlan(
      { subtasks: [{ key: 'api', domain: 'backend', description: '  Build the API  ' }, sub('form', 'frontend', ['api', 'api'])] },
      LIMITS,
    );
    expect(check).toEqual({
      ok: true,
      plan: { subtasks: [{ key: 'api', domain: 'backend', description: 'Build the API', dependsOn: [] }, sub('form', 'frontend', ['api'])] },
    });
  });

  it('says what to answer with when there is no JSON at all', () => {
    expect(reasonFor(undefined)).toMatch(/^no JSON plan found: answer with a ```json block/);
  });

  it('refuses what does not match the format, naming the field', () => {
    expect(reasonFor({ plan: [] })).toMatch(/^the plan does not match the format: subtasks: /);
    expect(reasonFor({ subtasks: [] })).toBe('the plan does not match the format: subtasks: must have at least one subtask');
  });

  it('refuses a key that is not 1-32 lowercase letters, digits or dashes', () => {
    for (const key of ['API', 'my api', '-api', '', 'a'.repeat(33)]) {
      expect(reasonFor(plan(sub(key))), key).toBe('the plan does not match the format: subtasks.0.key: must be 1-32 lowercase letters, digits or dashes');
    }
    expect(reasonFor(plan(sub('a'.repeat(32))))).toBe('accepted');
  });

  it('refuses an empty or blank description', () => {
    for (const description of ['', '   \n ']) {
      expect(reasonFor(plan(sub('ok'), sub('api', 'backend', [], description)))).toBe(
        'the plan does not match the format: subtasks.1.description: must not be empty',
      );
    }
  });

  it('refuses an unknown domain, naming it, its subtask, and the available ones', () => {
    expect(reasonFor(plan(sub('api'), sub('app', 'mobile')))).toBe('unknown domain "mobile" (subtask app); available: backend, devops, frontend');
    expect(reasonFor(plan(sub('app', 'mobile'), sub('etl', 'data')))).toBe(
      'unknown domains "mobile" (subtask app), "data" (subtask etl); available: backend, devops, frontend',
    );
  });

  it('refuses a duplicate key', () => {
    expect(reasonFor(plan(sub('api'), sub('api', 'frontend')))).toBe('duplicate key "api": keys must be unique');
  });

  it('refuses a dependency on a key the plan does not have', () => {
    expect(reasonFor(plan(sub('api'), sub('form', 'frontend', ['apii'])))).toBe('subtask "form" depends on unknown key "apii"');
    expect(reasonFor(plan(sub('form', 'frontend', ['x', 'y'])))).toBe('subtask "form" depends on unknown keys "x", "y"');
  });

  it('refuses a subtask that depends on itself', () => {
    expect(reasonFor(plan(sub('api', 'backend', ['api'])))).toBe('subtask "api" depends on itself');
  });

  it('refuses a cycle, reporting its path', () => {
    expect(reasonFor(plan(sub('api', 'backend', ['form']), sub('form', 'frontend', ['api'])))).toBe(
      'the dependencies form a cycle: api → form → api',
    );
    expect(reasonFor(plan(sub('a', 'backend', ['c']), sub('b', 'frontend', ['a']), sub('c', 'devops', ['b']), sub('d', 'backend', ['a'])))).toBe(
      'the dependencies form a cycle: a → c → b → a',
    );
  });

  it('refuses more than maxSubtasks subtasks, saying how many', () => {
    const many = plan(...Array.from({ length: 13 }, (_, i) => sub(`s${i}`)));
    expect(reasonFor(many)).toBe('the plan has 13 subtasks; at most 12 are allowed');
    expect(reasonFor(plan(sub('a'), sub('b'), sub('c')), { domains: DOMAINS, maxSubtasks: 2 })).toBe('the plan has 3 subtasks; at most 2 are allowed');
    expect(reasonFor(plan(...Array.from({ length: 12 }, (_, i) => sub(`s${i}`))))).toBe('accepted');
  });
});

describe('model tiers', () => {
  it('a subtask may name its tier; an unknown tier is refused, saying which are known', () => {
    const check = checkPlan({ subtasks: [{ ...sub('api', 'backend', []), model: 'small' }, { ...sub('form', 'frontend', ['api']), model: 'large' }] }, LIMITS);
    expect(check.ok && check.plan.subtasks.map((s) => s.model)).toEqual(['small', 'large']);
    expect(reasonFor({ subtasks: [{ ...sub('api', 'backend', []), model: 'huge' }] })).toMatch(/model.*must be one of small, default, large/);
  });

  it('maps a tier to DAN_MODEL_SMALL / DAN_MODEL_LARGE, else the goal\'s model, else none', () => {
    const tiers = { small: 'claude-haiku-4-5', large: 'claude-opus-4-1' };
    expect(tierModel('small', tiers, 'sonnet')).toBe('claude-haiku-4-5');
    expect(tierModel('large', tiers, undefined)).toBe('claude-opus-4-1');
    expect(tierModel('default', tiers, 'sonnet')).toBe('sonnet');
    expect(tierModel(undefined, tiers, undefined)).toBeUndefined();
    expect(tierModel('small', {}, 'sonnet')).toBe('sonnet');
  });
});

describe('findCycle', () => {
  it('finds none in a graph without cycles (diamonds included)', () => {
    expect(findCycle([])).toBeUndefined();
    expect(findCycle([sub('a'), sub('b', 'x', ['a']), sub('c', 'x', ['a']), sub('d', 'x', ['b', 'c'])])).toBeUndefined();
  });

  it('returns the cycle with its first key repeated at the end', () => {
    expect(findCycle([sub('a', 'x', ['a'])])).toEqual(['a', 'a']);
    expect(findCycle([sub('root'), sub('a', 'x', ['root', 'b']), sub('b', 'x', ['a'])])).toEqual(['a', 'b', 'a']);
  });

  it('ignores dependencies on keys that do not exist', () => {
    expect(findCycle([sub('a', 'x', ['ghost'])])).toBeUndefined();
  });
});

describe('keywordPlan: the fallback router', () => {
  const domainsOf = (goal: string, domains = DOMAINS): string[] | undefined => keywordPlan(goal, domains)?.subtasks.map((s) => s.domain);

  it('sends API, endpoint, database and auth work to backend', () => {
    for (const goal of ['Add an API for orders', 'A new endpoint /health', 'Migrate the database', 'Add auth to the app']) {
      expect(domainsOf(goal), goal).toEqual(['backend']);
    }
  });

  it('sends component, form, page and CSS work to frontend', () => {
    for (const goal of ['A date picker component', 'A signup form', 'An about page', 'Fix the CSS of the header']) {
      expect(domainsOf(goal), goal).toEqual(['frontend']);
    }
  });

  it('sends docker, CI, deploy and terraform work to devops', () => {
    for (const goal of ['Write a docker setup', 'Set up CI', 'Deploy to staging', 'terraform for the bucket']) {
      expect(domainsOf(goal), goal).toEqual(['devops']);
    }
  });

  it('chains the matched domains backend → frontend → devops as dependencies, whatever the order in the goal', () => {
    const result = keywordPlan('Deploy it with CI, add a form component, and an API endpoint', DOMAINS)!;
    expect(result.subtasks.map((s) => [s.key, s.domain, s.dependsOn])).toEqual([
      ['backend', 'backend', []],
      ['frontend', 'frontend', ['backend']],
      ['devops', 'devops', ['frontend']],
    ]);
    expect(result.subtasks[0]!.description).toMatch(/^Deploy it with CI, add a form component, and an API endpoint\n\nDo the backend part of this goal only\.$/);
    expect(result.subtasks[1]!.description).toContain('Build on what the backend task did (its result is below).');
    expect(checkPlan(result, LIMITS)).toEqual({ ok: true, plan: result });
  });

  it('matches whole words only, in any case', () => {
    expect(domainsOf('Update the PLATFORM docs and the Informational banner')).toBeUndefined();
    expect(domainsOf('ADD AN ENDPOINT')).toEqual(['backend']);
  });

  it('returns undefined when nothing matches', () => {
    expect(keywordPlan('Write a poem about the sea', DOMAINS)).toBeUndefined();
  });

  it('uses only the available domains, chaining what is left', () => {
    expect(domainsOf('An API, a form and a deploy', ['frontend', 'devops'])).toEqual(['frontend', 'devops']);
    expect(keywordPlan('An API, a form and a deploy', ['frontend', 'devops'])!.subtasks.map((s) => s.dependsOn)).toEqual([[], ['frontend']]);
    expect(keywordPlan('An API endpoint', ['frontend'])).toBeUndefined();
  });
});

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function record(overrides: Partial<TaskRecord> & Pick<TaskRecord, 'id'>): TaskRecord {
  return {
    domain: 'main',
    description: 'Create user registration with an API endpoint and a form component',
    priority: 'normal',
    timeoutS: 300,
    context: {},
    status: 'completed',
    attempts: 1,
    maxAttempts: 3,
    createdAt: T0,
    updatedAt: T0,
    dependsOn: [],
    children: [],
    cancelRequested: false,
    noMerge: false,
    ...overrides,
  };
}

const GOAL_ID = '01JGOAL0000000000000000000';
const API_ID = '01JAP10000000000000000000A';
const FORM_ID = '01JF0RM000000000000000000F';
const goal = record({ id: GOAL_ID, status: 'active', costUsd: 0.01, turns: 1, children: [API_ID, FORM_ID], startedAt: T0 });
const api = record({
  id: API_ID,
  key: 'api',
  domain: 'backend',
  parent: GOAL_ID,
  agent: 'backend-1a2b3c4d',
  startedAt: T0 + 1000,
  finishedAt: T0 + 3500,
  costUsd: 0.02,
  turns: 2,
  result: 'Built POST /users.\nReturns 201.',
});
const form = record({
  id: FORM_ID,
  key: 'form',
  domain: 'frontend',
  parent: GOAL_ID,
  dependsOn: [API_ID],
  agent: 'frontend-5e6f7a8b',
  startedAt: T0 + 4000,
  finishedAt: T0 + 6000,
  costUsd: 0.03,
  turns: 3,
  result: 'Built the sign-up form.',
});

let seq = 0;
const stored = (taskId: string, entry: Omit<LogEntry, 'ts'>): StoredLogEntry => ({ id: `${T0}-${seq++}`, taskId, entry: { ts: T0, ...entry } });
const toolUse = (tool: string, input: Record<string, unknown>): StoredLogEntry => stored(API_ID, { type: 'tool_use', text: `${tool} …`, data: { tool, input } });

describe('filesChanged', () => {
  it('lists the files Write, Edit, MultiEdit and NotebookEdit touched, once each, in order of first change', () => {
    const entries = [
      stored(API_ID, { type: 'status', text: 'active', status: 'active' }),
      toolUse('Write', { file_path: '/ws/server/users.ts', content: '…' }),
      toolUse('Read', { file_path: '/ws/README.md' }),
      toolUse('Bash', { command: 'echo > /ws/x' }),
      toolUse('Edit', { file_path: '/ws/server/app.ts', old_string: 'a', new_string: 'b' }),
      toolUse('Write', { file_path: '/ws/server/users.ts', content: 'again' }),
      toolUse('MultiEdit', { file_path: '/ws/server/db.ts', edits: [] }),
      toolUse('NotebookEdit', { notebook_path: '/ws/analysis.ipynb', new_source: '' }),
      stored(API_ID, { type: 'assistant', text: 'I wrote /ws/elsewhere.ts' }),
      stored(API_ID, { type: 'tool_use', text: 'Write without data' }),
    ];
    expect(filesChanged(entries)).toEqual(['/ws/server/users.ts', '/ws/server/app.ts', '/ws/server/db.ts', '/ws/analysis.ipynb']);
  });

  it('is empty for a log without writes', () => {
    expect(filesChanged([])).toEqual([]);
    expect(filesChanged([toolUse('Read', { file_path: '/ws/a.ts' })])).toEqual([]);
  });
});

describe('aggregate', () => {
  const files = new Map([
    [API_ID, ['/ws/server/users.ts']],
    [FORM_ID, ['/ws/web/Signup.tsx', '/ws/server/users.ts']],
  ]);

  it('completes with a summary per subtask, the files changed, and totals including the planning cost', () => {
    const outcome = aggregate(goal, [api, form], files);
    expect(outcome).toMatchObject({ status: 'completed', turns: 6 });
    expect(outcome.costUsd).toBeCloseTo(0.06, 10);
    expect(outcome.error).toBeUndefined();
    expect(outcome.result).toBe(
      [
        '2 of 2 subtasks completed; total $0.0600, 6 turns.',
        'Files changed: /ws/server/users.ts, /ws/web/Signup.tsx',
        '',
        '## api (backend): completed',
        'agent backend-1a2b3c4d, 2.5s, $0.0200, 2 turns',
        'files: /ws/server/users.ts',
        '',
        'Built POST /users.\nReturns 201.',
        '## form (frontend): completed',
        'agent frontend-5e6f7a8b, 2.0s, $0.0300, 3 turns',
        'files: /ws/web/Signup.tsx, /ws/server/users.ts',
        '',
        'Built the sign-up form.',
      ].join('\n'),
    );
  });

  it('says when the logs show no file changes', () => {
    const outcome = aggregate(record({ id: GOAL_ID }), [api], new Map());
    expect(outcome.result).toContain('Files changed: none seen in the logs.');
    expect(outcome.result).toContain('files: none seen in the log');
    expect(outcome).toMatchObject({ costUsd: 0.02, turns: 2 });
  });

  it('fails naming each part that did not complete and why, still summarising every subtask', () => {
    const failedApi = { ...api, status: 'failed' as const, result: undefined, error: 'API Error: 400 bad request\nmore detail', costUsd: 0.001, turns: 1 };
    const cancelledForm = {
      ...form,
      status: 'cancelled' as const,
      result: undefined,
      agent: undefined,
      startedAt: undefined,
      costUsd: undefined,
      turns: undefined,
      reason: 'dependency api (backend) ended failed',
    };
    const outcome = aggregate(goal, [failedApi, cancelledForm], new Map());
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toBe('subtasks did not complete: api (backend) failed: API Error: 400 bad request; form (frontend) cancelled: dependency api (backend) ended failed');
    expect(outcome.result).toContain('0 of 2 subtasks completed; total $0.0110, 2 turns.');
    expect(outcome.result).toContain('## api (backend): failed\nagent backend-1a2b3c4d, 2.5s, $0.0010, 1 turns\nfiles: none seen in the log\n\nAPI Error: 400 bad request\nmore detail');
    expect(outcome.result).toContain('## form (frontend): cancelled\nagent -, -, $0.0000, 0 turns');
  });

  it("with git workspaces lists each subtask's real diff stat and merge commit, or why its branch was kept", () => {
    const merged = {
      ...api,
      git: { branch: `dan/${API_ID}`, integration: 'main', base: 'a'.repeat(40), commit: 'b'.repeat(40), mergeCommit: 'c'.repeat(40), files: [{ path: 'server/users.ts', added: 40, removed: 2 }], merge: 'merged' as const, keptAttempts: [] },
    };
    const conflicted = {
      ...form,
      git: { branch: `dan/${FORM_ID}`, integration: 'main', base: 'a'.repeat(40), commit: 'd'.repeat(40), files: [{ path: 'web/Signup.tsx', added: 12, removed: 0 }, { path: 'logo.png', added: null, removed: null }], merge: 'conflict' as const, mergeReason: 'conflicts in web/Signup.tsx', keptAttempts: [] },
    };
    const outcome = aggregate(goal, [merged, conflicted], files);
    expect(outcome.result).toContain('Files changed: server/users.ts, web/Signup.tsx, logo.png');
    expect(outcome.result).toContain('files: server/users.ts (+40 -2) (1 file, +40 -2)\ngit: merged into main as cccccccccc');
    expect(outcome.result).toContain(`files: web/Signup.tsx (+12 -0), logo.png (binary) (2 files, +12 -0)\ngit: conflict: conflicts in web/Signup.tsx; branch dan/${FORM_ID}`);
  });

  it('names a single failed part in the singular', () => {
    const timedOut = { ...form, status: 'timed_out' as const, error: 'timed out after 300s' };
    expect(aggregate(goal, [api, timedOut], files)).toMatchObject({
      status: 'failed',
      error: 'subtask did not complete: form (frontend) timed_out: timed out after 300s',
    });
  });
});

describe('the tree and Mermaid views of a goal (bin/tree.ts)', () => {
  const plain = (text: string): string => stripVTControlCharacters(text);
  const done = record({ ...goal, status: 'completed', finishedAt: T0 + 6500, costUsd: 0.06 });
  const waiting = record({ id: FORM_ID, key: 'form', domain: 'frontend', parent: GOAL_ID, status: 'waiting', dependsOn: [API_ID] });

  it('formatTree shows the goal (description cut at 60), then each subtask with domain, status, agent, duration, cost, dependencies and id', () => {
    const lines = plain(formatTree(done, [api, form])).split('\n');
    expect(lines).toEqual([
      `${GOAL_ID} main completed  6.5s  $0.0600  Create user registration with an API endpoint and a form co…`,
      `├─ api backend completed  backend-1a2b3c4d  2.5s  $0.0200  ${API_ID}`,
      `└─ form frontend completed  frontend-5e6f7a8b  2.0s  $0.0300 after api  ${FORM_ID}`,
    ]);
  });

  it('formatTree shows "-" for what a subtask that has not started lacks', () => {
    const lines = plain(formatTree(goal, [api, waiting])).split('\n');
    expect(lines[2]).toBe(`└─ form frontend waiting  -  -  - after api  ${FORM_ID}`);
  });

  it('formatMermaid draws a flowchart: the goal, one node per subtask, an edge per dependency, a style per status', () => {
    expect(formatMermaid(goal, [api, waiting]).split('\n')).toEqual([
      'flowchart TD',
      `  t${GOAL_ID}["goal<br/>active"]`,
      `  t${API_ID}["api<br/>backend: completed"]`,
      `  t${FORM_ID}["form<br/>frontend: waiting"]`,
      `  t${GOAL_ID} --> t${API_ID}`,
      `  t${API_ID} --> t${FORM_ID}`,
      `  style t${GOAL_ID} fill:#d4e4f7`,
      `  style t${API_ID} fill:#d4f7d4`,
      `  style t${FORM_ID} fill:#ffffff`,
    ]);
  });

  it('formatMermaid has no ANSI colour and falls back to the id tail for a subtask without a key', () => {
    const keyless = { ...api, key: undefined };
    const text = formatMermaid(goal, [keyless]);
    expect(text).toBe(stripVTControlCharacters(text));
    expect(text).toContain(`t${API_ID}["${API_ID.slice(-6)}<br/>backend: completed"]`);
  });
});

describe('keywordPlan with a goal at the size limit', () => {
  it('keeps every subtask description within the 64 KiB limit', async () => {
    const { taskSpecSchema } = await import('../../lib/task.js');
    const goal = `Add an API endpoint and a form component. ${'x'.repeat(64 * 1024 - 60)}`;
    const plan = keywordPlan(goal, ['backend', 'frontend', 'devops'])!;
    expect(plan.subtasks.map((s) => s.domain)).toEqual(['backend', 'frontend']);
    for (const s of plan.subtasks) {
      expect(Buffer.byteLength(s.description)).toBeLessThanOrEqual(64 * 1024);
      expect(taskSpecSchema.safeParse({ domain: s.domain, description: s.description, timeoutS: 60, maxAttempts: 1 }).success).toBe(true);
    }
  });
});
