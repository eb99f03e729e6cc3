import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import {
  assertKnownGates,
  describeGates,
  findingsMessage,
  gatesOf,
  knownGates,
  MAX_REVIEW_PATCH,
  parseVerdict,
  readDomainSettings,
  reviewPrompt,
  VERDICT_JSON_SCHEMA,
  type GateState,
} from '../../lib/gates.js';

const TEMPLATES = path.join(repoRoot(), 'agents');
let scratch: string | undefined;
afterEach(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** A templates folder with the repository's review domain and a backend whose dan.json is `text`. */
async function templatesWith(danJson: string): Promise<string> {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'dan-gates-'));
  await mkdir(path.join(scratch, 'domain-templates', 'review', 'gates'), { recursive: true });
  for (const gate of ['code', 'security']) await writeFile(path.join(scratch, 'domain-templates', 'review', 'gates', `${gate}.md`), `- ${gate}\n`);
  await mkdir(path.join(scratch, 'domain-templates', 'backend'), { recursive: true });
  await writeFile(path.join(scratch, 'domain-templates', 'backend', 'dan.json'), danJson);
  return scratch;
}

describe('gates', () => {
  it('are the checklists of the review domain', () => {
    expect(knownGates(TEMPLATES)).toEqual(['code', 'security', 'tests']);
    expect(() => assertKnownGates(TEMPLATES, ['code', 'security'])).not.toThrow();
    expect(() => assertKnownGates(TEMPLATES, ['secruity'])).toThrow('--gate: unknown gate "secruity" (did you mean security?); the gates are code, security, tests');
    expect(() => assertKnownGates(TEMPLATES, ['code', 'code'])).toThrow('gate "code" is named twice');
    expect(() => assertKnownGates('/nonexistent', ['code'])).toThrow(/this network has no review domain/);
  });

  it("come from the task, else from its domain's dan.json, which is validated", async () => {
    const dir = await templatesWith('{"gates": ["code", "security"]}');
    expect(gatesOf(dir, 'backend', undefined)).toEqual(['code', 'security']);
    expect(gatesOf(dir, 'backend', [])).toEqual([]);
    expect(gatesOf(dir, 'backend', ['security'])).toEqual(['security']);
    expect(gatesOf(dir, 'frontend', undefined)).toEqual([]);
    await writeFile(path.join(dir, 'domain-templates', 'backend', 'dan.json'), '{"gates": ["style"]}');
    expect(() => readDomainSettings(dir, 'backend')).toThrow(/dan\.json: unknown gate "style"; the gates are code, security/);
    await writeFile(path.join(dir, 'domain-templates', 'backend', 'dan.json'), '{"gate": ["code"]}');
    expect(() => readDomainSettings(dir, 'backend')).toThrow(/dan\.json: .*gate/);
    await writeFile(path.join(dir, 'domain-templates', 'backend', 'dan.json'), '{gates');
    expect(() => readDomainSettings(dir, 'backend')).toThrow(/dan\.json is not JSON/);
  });
});

describe('verdicts', () => {
  it('are read with their schema, saying what is wrong', () => {
    expect(parseVerdict('{"verdict":"pass","findings":[],"summary":"ok"}')).toEqual({ verdict: { verdict: 'pass', findings: [], summary: 'ok' } });
    expect(parseVerdict('Looks fine!')).toEqual({ error: 'the answer is not JSON: "Looks fine!"' });
    expect(parseVerdict('{"verdict":"maybe","findings":[],"summary":""}')).toMatchObject({ error: expect.stringMatching(/^verdict: /) });
    expect(parseVerdict('{"verdict":"fail","findings":[{"file":"a.ts","severity":"urgent","message":"x"}],"summary":""}')).toMatchObject({ error: expect.stringMatching(/^findings\.0\.severity: /) });
  });

  it('are asked for with a JSON Schema the CLI takes', () => {
    expect(VERDICT_JSON_SCHEMA).toMatchObject({ type: 'object', required: expect.arrayContaining(['verdict', 'findings', 'summary']) });
    expect(VERDICT_JSON_SCHEMA).not.toHaveProperty('$schema');
  });
});

describe('review text', () => {
  const round = { task: 't', verdict: 'fail' as const, findings: [{ file: 'api.ts', line: 12, severity: 'high' as const, message: 'no auth check' }, { file: 'README.md', severity: 'low' as const, message: 'typo' }], summary: 'auth missing', costUsd: 0 };

  it('describes gates as dan status shows them', () => {
    const gates: GateState[] = [
      { gate: 'code', state: 'pass', rounds: [{ ...round, verdict: 'pass', findings: [] }] },
      { gate: 'security', state: 'fail', rounds: [round, round] },
      { gate: 'tests', state: 'waived', rounds: [round], waived: { by: 'alice', reason: 'flaky CI', at: 0 } },
    ];
    expect(describeGates(gates)).toBe('code ✓ (1 round), security ✗ (2 rounds: 1 high, 1 low), tests waived (1 round) by alice: flaky CI');
  });

  it('sends findings back with where, how bad and how many rounds are left', () => {
    const text = findingsMessage('security', round, 1);
    expect(text).toContain('did not pass the "security" review gate');
    expect(text).toContain('- api.ts:12 [high] no auth check');
    expect(text).toContain('- README.md [low] typo');
    expect(text).toContain('1 more round at most');
  });

  it('truncates a large patch but keeps the stat whole', () => {
    const patch = `+${'x'.repeat(MAX_REVIEW_PATCH * 2)}`;
    const prompt = reviewPrompt({ gate: 'code', checklist: '- works', taskId: 'T', description: 'Add it', stat: 'a.ts (+1 -0)\n1 file, +1 -0', patch, round: 1 });
    expect(prompt.length).toBeLessThan(MAX_REVIEW_PATCH + 4000);
    expect(prompt).toContain('the patch is truncated here');
    expect(prompt).toContain('1 file, +1 -0');
    expect(prompt.split('\n')[0]).toBe('Review gate "code" for task T (round 1)');
  });
});
