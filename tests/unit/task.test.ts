import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../lib/errors.js';
import {
  BULL_PRIORITY,
  MAX_CONTEXT_BYTES,
  MAX_DESCRIPTION_BYTES,
  TASK_STATUSES,
  assertTransition,
  canTransition,
  contextSchema,
  descriptionSchema,
  isTerminal,
  newRecordFields,
  newTaskId,
  parseContextJson,
  prioritySchema,
  recordFromHash,
  taskIdSchema,
  taskRecordHashSchema,
  taskSpecSchema,
  timeoutSchema,
  type TaskStatus,
} from '../../lib/task.js';

/**
 * A task's life (DESIGN.md): queued → active → completed | failed | cancelled | timed_out; `waiting` for a
 * subtask whose dependencies are open; a retry goes back from active to queued. Written out here by hand, so
 * a change to the state machine in lib/task.ts has to change this specification too.
 */
const ALLOWED: Record<TaskStatus, TaskStatus[]> = {
  waiting: ['queued', 'cancelled', 'failed'],
  queued: ['active', 'cancelled', 'failed'],
  active: ['queued', 'active', 'needs_input', 'completed', 'failed', 'cancelled', 'timed_out'],
  needs_input: ['queued', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('task state machine', () => {
  const pairs = TASK_STATUSES.flatMap((from) => TASK_STATUSES.map((to) => [from, to] as const));

  it.each(pairs.filter(([from, to]) => ALLOWED[from].includes(to)))('allows %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition('T', from, to)).not.toThrow();
  });

  it.each([
    ['queued', 'completed'],
    ['queued', 'timed_out'],
    ['queued', 'waiting'],
    ['queued', 'queued'],
    ['waiting', 'active'],
    ['waiting', 'completed'],
    ['active', 'waiting'],
    ['completed', 'queued'],
    ['failed', 'active'],
    ['cancelled', 'queued'],
    ['timed_out', 'completed'],
  ] as const)('forbids %s → %s with IllegalTransitionError naming the task and both statuses', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
    let thrown: unknown;
    try {
      assertTransition('01TASK', from, to);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IllegalTransitionError);
    expect(thrown).toMatchObject({ code: 'DAN_ILLEGAL_TRANSITION', taskId: '01TASK', from, to });
    expect((thrown as Error).message).toContain(`from ${from} to ${to}`);
  });

  it('forbids every pair not in the table (no transition is allowed by accident)', () => {
    const forbidden = pairs.filter(([from, to]) => !ALLOWED[from].includes(to));
    expect(forbidden.length).toBe(64 - 16);
    for (const [from, to] of forbidden) expect(canTransition(from, to), `${from} → ${to}`).toBe(false);
  });

  it.each(['completed', 'failed', 'cancelled', 'timed_out'] as const)('terminal %s has no way out', (status) => {
    expect(isTerminal(status)).toBe(true);
    for (const to of TASK_STATUSES) expect(canTransition(status, to)).toBe(false);
  });

  it.each(['waiting', 'queued', 'active', 'needs_input'] as const)('%s is not terminal', (status) => {
    expect(isTerminal(status)).toBe(false);
  });
});

describe('task description', () => {
  const ok = (s: string): boolean => descriptionSchema.safeParse(s).success;

  it('accepts 1 byte and exactly 64 KiB', () => {
    expect(ok('x')).toBe(true);
    expect(ok('x'.repeat(MAX_DESCRIPTION_BYTES))).toBe(true);
    expect(MAX_DESCRIPTION_BYTES).toBe(65_536);
  });

  it('rejects the empty string and 64 KiB + 1 byte', () => {
    expect(ok('')).toBe(false);
    expect(ok('x'.repeat(MAX_DESCRIPTION_BYTES + 1))).toBe(false);
  });

  it('counts bytes, not characters: 32768 two-byte characters fit, one more ASCII byte does not', () => {
    const full = 'é'.repeat(MAX_DESCRIPTION_BYTES / 2);
    expect(bytes(full)).toBe(MAX_DESCRIPTION_BYTES);
    expect(ok(full)).toBe(true);
    expect(ok(`${full}x`)).toBe(false);
  });

  it('rejects whitespace only, accepts text surrounded by whitespace', () => {
    expect(ok(' ')).toBe(false);
    expect(ok(' \n\t  ')).toBe(false);
    expect(ok('  fix it \n')).toBe(true);
  });

  it('says why in the error', () => {
    expect(descriptionSchema.safeParse('').error?.issues[0]?.message).toBe('must not be empty');
    expect(descriptionSchema.safeParse('x'.repeat(MAX_DESCRIPTION_BYTES + 1)).error?.issues[0]?.message).toBe(
      'must be at most 65536 bytes',
    );
  });
});

describe('task context', () => {
  /** `{"k":"…"}` is 8 bytes plus the value. */
  const contextOfBytes = (n: number): Record<string, unknown> => ({ k: 'x'.repeat(n - 8) });

  it('accepts an object up to exactly 64 KiB of JSON', () => {
    expect(bytes(JSON.stringify(contextOfBytes(MAX_CONTEXT_BYTES)))).toBe(MAX_CONTEXT_BYTES);
    expect(contextSchema.safeParse(contextOfBytes(MAX_CONTEXT_BYTES)).success).toBe(true);
    expect(contextSchema.safeParse({}).success).toBe(true);
    expect(contextSchema.safeParse({ repo: 'api', nested: { a: [1, 2] } }).success).toBe(true);
  });

  it('rejects 64 KiB + 1 byte of JSON', () => {
    const result = contextSchema.safeParse(contextOfBytes(MAX_CONTEXT_BYTES + 1));
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('must be at most 65536 bytes of JSON');
  });

  it.each([[[1]], ['text'], [1], [null], [true]])('rejects a non-object: %j', (value) => {
    expect(contextSchema.safeParse(value).success).toBe(false);
  });
});

describe('task timeout', () => {
  it.each([10, 300, 86_400, '10', '86400'])('accepts %j seconds', (value) => {
    expect(timeoutSchema.safeParse(value).success).toBe(true);
  });

  it.each([
    [9, 'must be at least 10 seconds'],
    [86_401, 'must be at most 86400 seconds'],
    [1.5, 'must be a whole number of seconds'],
    ['1.5', 'must be a whole number of seconds'],
    ['abc', 'must be a whole number of seconds'],
    [0, 'must be at least 10 seconds'],
    [-30, 'must be at least 10 seconds'],
  ])('rejects %j: %s', (value, message) => {
    const result = timeoutSchema.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe(message);
  });
});

describe('task priority', () => {
  it.each(['low', 'normal', 'high'])('accepts %s', (p) => {
    expect(prioritySchema.parse(p)).toBe(p);
  });

  it.each(['urgent', 'HIGH', '', 'medium'])('rejects %j', (p) => {
    const result = prioritySchema.safeParse(p);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('must be low, normal or high');
  });

  it('maps to BullMQ priorities where high runs first', () => {
    expect(BULL_PRIORITY.high).toBeLessThan(BULL_PRIORITY.normal);
    expect(BULL_PRIORITY.normal).toBeLessThan(BULL_PRIORITY.low);
    expect(BULL_PRIORITY.high).toBeGreaterThan(0); // BullMQ's 0 means "no priority"
  });
});

describe('task spec', () => {
  const base = { domain: 'backend', description: 'add a health endpoint', timeoutS: 300, maxAttempts: 3 };

  it('fills defaults: normal priority, empty context, no dependencies, merged when done', () => {
    expect(taskSpecSchema.parse(base)).toEqual({ ...base, priority: 'normal', context: {}, dependsOn: [], noMerge: false });
  });

  it.each([
    ['an upper-case domain', { domain: 'Backend' }],
    ['a domain with a colon', { domain: 'a:b' }],
    ['a domain with a slash', { domain: '../etc' }],
    ['no attempts', { maxAttempts: 0 }],
    ['a parent that is not a task id', { parent: 'nope' }],
    ['a dependency that is not a task id', { dependsOn: ['nope'] }],
  ])('rejects %s', (_what, change) => {
    expect(taskSpecSchema.safeParse({ ...base, ...change }).success).toBe(false);
  });
});

describe('task ids', () => {
  it('are 26-character ULIDs that the id schema accepts', () => {
    const id = newTaskId();
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(taskIdSchema.safeParse(id).success).toBe(true);
    expect(Math.abs(decodeTime(id) - Date.now())).toBeLessThan(60_000);
  });

  it('are unique and sort in the order they were made, even within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => newTaskId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it.each([
    ['too short', '01ARZ3NDEKTSV4RRFFQ69G5FA'],
    ['too long', '01ARZ3NDEKTSV4RRFFQ69G5FAVV'],
    ['lower case', '01arz3ndektsv4rrffq69g5fav'],
    ['an excluded letter (U)', '01ARZ3NDEKTSV4RRFFQ69G5FAU'],
    ['not an id at all', 'nope'],
    ['empty', ''],
  ])('rejects an id that is %s', (_what, id) => {
    expect(taskIdSchema.safeParse(id).success).toBe(false);
  });
});

describe('parseContextJson', () => {
  it('returns the object of a JSON object', () => {
    expect(parseContextJson('{"repo":"api","n":1}')).toEqual({ repo: 'api', n: 1 });
    expect(parseContextJson('{}')).toEqual({});
  });

  it('says "is not valid JSON" for text that is not JSON', () => {
    expect(() => parseContextJson('nope')).toThrow('is not valid JSON');
    expect(() => parseContextJson('{repo: api}')).toThrow('is not valid JSON');
    expect(() => parseContextJson('')).toThrow('is not valid JSON');
  });

  it.each(['[1]', 'null', '1', '"text"', 'true'])('says "must be a JSON object" for %s', (text) => {
    expect(() => parseContextJson(text)).toThrow('must be a JSON object');
  });
});

describe('task record hash', () => {
  it('round-trips a new record through the schema that reads it back', () => {
    const spec = taskSpecSchema.parse({
      domain: 'backend',
      description: 'x',
      timeoutS: 60,
      maxAttempts: 2,
      context: { a: 1 },
      priority: 'high',
    });
    const id = newTaskId();
    const hash = newRecordFields(id, spec, 'queued', 1234);
    for (const value of Object.values(hash)) expect(typeof value).toBe('string');
    const record = recordFromHash(taskRecordHashSchema.parse(hash));
    expect(record).toEqual({
      id,
      domain: 'backend',
      description: 'x',
      priority: 'high',
      timeoutS: 60,
      context: { a: 1 },
      status: 'queued',
      attempts: 0,
      maxAttempts: 2,
      createdAt: 1234,
      updatedAt: 1234,
      dependsOn: [],
      children: [],
      cancelRequested: false,
      noMerge: false,
    });
  });

  it('round-trips --no-merge and a merge task, and a git field through its schema', () => {
    const spec = taskSpecSchema.parse({ domain: 'backend', description: 'x', timeoutS: 60, maxAttempts: 2, noMerge: true, mergeOf: newTaskId() });
    const hash = newRecordFields(newTaskId(), spec, 'queued', 1);
    const git = { branch: 'dan/x', integration: 'main', base: 'a'.repeat(40), files: [{ path: 'a.txt', added: 1, removed: 0 }], merge: 'skipped', keptAttempts: [] };
    const record = recordFromHash(taskRecordHashSchema.parse({ ...hash, git: JSON.stringify(git) }));
    expect(record).toMatchObject({ noMerge: true, mergeOf: spec.mergeOf, git });
    expect(taskRecordHashSchema.safeParse({ ...hash, git: JSON.stringify({ ...git, merge: 'maybe' }) }).success).toBe(false);
    expect(taskRecordHashSchema.safeParse({ ...hash, git: '{nope' }).success).toBe(false);
  });

  it('refuses a hash with a status outside the state machine or a context that is not JSON', () => {
    const hash = newRecordFields(newTaskId(), taskSpecSchema.parse({ domain: 'b', description: 'x', timeoutS: 60, maxAttempts: 1 }), 'queued', 1);
    expect(taskRecordHashSchema.safeParse({ ...hash, status: 'bogus' }).success).toBe(false);
    expect(taskRecordHashSchema.safeParse({ ...hash, context: '{nope' }).success).toBe(false);
    expect(taskRecordHashSchema.safeParse({ ...hash, attempts: 'many' }).success).toBe(false);
  });
});
