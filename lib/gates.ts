import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BadInputError } from './errors.js';
import { suggest } from './suggest.js';

/**
 * Quality gates (issue 15): before a task's change merges, each gate of its domain reviews it as a task of the
 * `review` domain, which answers a verdict; a failed gate sends the change back to its author.
 */

/** The domain whose agents review changes. */
export const REVIEW_DOMAIN = 'review';

export const gateNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must be a gate name: lowercase letters, digits, "_" or "-"');

/** A gate's checklist: `<templates>/domain-templates/review/gates/<gate>.md`. */
const gatesDir = (templatesDir: string): string => path.join(templatesDir, 'domain-templates', REVIEW_DOMAIN, 'gates');

/** The gates a network knows: one checklist file each, sorted. */
export function knownGates(templatesDir: string): string[] {
  const dir = gatesDir(templatesDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && gateNameSchema.safeParse(f.slice(0, -3)).success)
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Throws BadInputError naming the known gates unless every one of `gates` is known (and none twice). */
export function assertKnownGates(templatesDir: string, gates: readonly string[], where = '--gate'): void {
  const known = knownGates(templatesDir);
  for (const gate of gates) {
    if (known.includes(gate)) continue;
    const close = suggest(gate, known)[0];
    throw new BadInputError(
      known.length === 0
        ? `${where}: unknown gate "${gate}": this network has no review domain (${gatesDir(templatesDir)} is missing)`
        : `${where}: unknown gate "${gate}"${close ? ` (did you mean ${close}?)` : ''}; the gates are ${known.join(', ')}`,
    );
  }
  const twice = gates.find((g, i) => gates.indexOf(g) !== i);
  if (twice) throw new BadInputError(`${where}: gate "${twice}" is named twice`);
}

/** The checklist of a gate, as its file says. */
export function gateChecklist(templatesDir: string, gate: string): string {
  return readFileSync(path.join(gatesDir(templatesDir), `${gate}.md`), 'utf8');
}

/** A domain's own settings: `<templates>/domain-templates/<domain>/dan.json`. */
export const domainSettingsSchema = z
  .object({
    /** The gates each task of the domain goes through, in order (a task's `--gate`/`--no-gates` overrides). */
    gates: z.array(gateNameSchema).max(8).default([]),
  })
  .strict();
export type DomainSettings = z.infer<typeof domainSettingsSchema>;

/** The domain's dan.json, validated; `{ gates: [] }` when it has none. Throws BadInputError saying what is wrong. */
export function readDomainSettings(templatesDir: string, domain: string): DomainSettings {
  const file = path.join(templatesDir, 'domain-templates', domain, 'dan.json');
  if (!existsSync(file)) return { gates: [] };
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new BadInputError(`${file} is not JSON: ${(error as Error).message}`);
  }
  const parsed = domainSettingsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadInputError(`${file}: ${issue.path.join('.') || 'the file'} ${issue.message}`);
  }
  assertKnownGates(templatesDir, parsed.data.gates, file);
  return parsed.data;
}

/** The gates a task goes through: its own list when it has one (`--gate`, `--no-gates`: []), else its domain's. */
export function gatesOf(templatesDir: string, domain: string, own: readonly string[] | undefined): string[] {
  return own ? [...own] : readDomainSettings(templatesDir, domain).gates;
}

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

/** What a reviewer answers (the CLI's `--json-schema` holds the run to it). */
export const verdictSchema = z.object({
  verdict: z.enum(['pass', 'fail']),
  findings: z
    .array(
      z.object({
        file: z.string().max(1000),
        line: z.number().int().min(0).optional(),
        severity: z.enum(SEVERITIES),
        message: z.string().min(1).max(4000),
      }),
    )
    .max(100),
  summary: z.string().max(4000),
});
export type Verdict = z.infer<typeof verdictSchema>;

/** The JSON Schema the review run's `--json-schema` gets. */
export const VERDICT_JSON_SCHEMA: Record<string, unknown> = (() => {
  const { $schema: _, ...rest } = z.toJSONSchema(verdictSchema, { target: 'draft-7' }) as Record<string, unknown>;
  return rest;
})();

/** Reads a reviewer's answer: the verdict, or what is wrong with it (for the one retry, and the record). */
export function parseVerdict(text: string): { verdict: Verdict } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text.trim());
  } catch {
    return { error: `the answer is not JSON: ${JSON.stringify(text.slice(0, 200))}` };
  }
  const parsed = verdictSchema.safeParse(value);
  if (parsed.success) return { verdict: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { error: `${issue.path.join('.') || 'the answer'}: ${issue.message}` };
}

/** What a review task reviews: the record's `review` field. */
export const reviewRefSchema = z.object({
  /** The task whose change it reviews: a domain task, or a goal (`goal`). */
  of: z.string().min(1),
  gate: gateNameSchema,
  /** The author's commit under review, and the base it is compared with; a goal's review looks at the integration branch's head. */
  commit: z.string().regex(/^[0-9a-f]{40,64}$/).optional(),
  base: z.string().regex(/^[0-9a-f]{40,64}$/).optional(),
  round: z.number().int().min(1),
  /** A goal's gate: the combined change of its merged subtasks. */
  goal: z.boolean().optional(),
});
export type ReviewRef = z.infer<typeof reviewRefSchema>;

/** One round of one gate, as the author's record keeps it. */
export const gateRoundSchema = z.object({
  task: z.string(),
  verdict: z.enum(['pass', 'fail']).optional(),
  /** Why the round has no verdict: the reviewer answered none that was valid, or ended otherwise. */
  error: z.string().optional(),
  findings: verdictSchema.shape.findings.default([]),
  summary: z.string().optional(),
  costUsd: z.number().default(0),
  /** A goal's gate that failed: the subtask made to fix the findings. */
  fixup: z.string().optional(),
});
export type GateRound = z.infer<typeof gateRoundSchema>;

/** A gate's state on the author's record. */
export const gateStateSchema = z.object({
  gate: gateNameSchema,
  state: z.enum(['pending', 'pass', 'fail', 'waived']),
  rounds: z.array(gateRoundSchema).default([]),
  waived: z.object({ by: z.string(), reason: z.string(), at: z.number() }).optional(),
});
export type GateState = z.infer<typeof gateStateSchema>;

/** Whether every gate passed or was waived: the change may merge. */
export const gatesClear = (gates: readonly GateState[]): boolean => gates.every((g) => g.state === 'pass' || g.state === 'waived');

/** `code ✓ (1 round), security ✗ (2 rounds: 1 high)` */
export function describeGates(gates: readonly GateState[]): string {
  return gates
    .map((g) => {
      const mark = g.state === 'pass' ? '✓' : g.state === 'fail' ? '✗' : g.state === 'waived' ? 'waived' : '…';
      const rounds = `${g.rounds.length} round${g.rounds.length === 1 ? '' : 's'}`;
      const last = g.rounds.at(-1);
      const counts = g.state === 'fail' && last ? severityCounts(last) : '';
      const waived = g.waived ? ` by ${g.waived.by}: ${g.waived.reason}` : '';
      return `${g.gate} ${mark} (${rounds}${counts ? `: ${counts}` : ''})${waived}`;
    })
    .join(', ');
}

function severityCounts(round: GateRound): string {
  if (round.error) return round.error;
  const counts = new Map<string, number>();
  for (const f of round.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  return [...SEVERITIES]
    .reverse()
    .filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
}

/** The most of a patch a review prompt carries; the stat is always whole. */
export const MAX_REVIEW_PATCH = 40 * 1024;

/** The prompt of a gate's review task. Pure. */
export function reviewPrompt(input: { gate: string; checklist: string; taskId: string; description: string; stat: string; patch: string; round: number }): string {
  const patch = input.patch.length > MAX_REVIEW_PATCH ? `${input.patch.slice(0, MAX_REVIEW_PATCH)}\n[… the patch is truncated here: ${input.patch.length} characters in all; read the files themselves for the rest]` : input.patch;
  return [
    `Review gate "${input.gate}" for task ${input.taskId} (round ${input.round})`,
    '',
    'Review the change below against the checklist. Your working directory holds the code with the change applied.',
    'You may read files and run the project\'s tests and linters; never edit, write or delete a file.',
    'Answer with your verdict: "pass" when the change meets the checklist, "fail" with findings (file, line, severity, message) when it does not.',
    '',
    '## The task the change was made for',
    '',
    input.description.trim(),
    '',
    '## Checklist',
    '',
    input.checklist.trim(),
    '',
    '## Files changed',
    '',
    input.stat.trim() || '(none)',
    '',
    '## The change',
    '',
    '```diff',
    patch.trimEnd(),
    '```',
  ].join('\n');
}

/** The message that sends a change back to its author with a gate's findings. Pure. */
export function findingsMessage(gate: string, round: GateRound, roundsLeft: number): string {
  const findings = round.findings.map((f) => `- ${f.file}${f.line ? `:${f.line}` : ''} [${f.severity}] ${f.message}`);
  return [
    `Your change did not pass the "${gate}" review gate.`,
    round.summary ? `Reviewer's summary: ${round.summary}` : '',
    '',
    'Findings:',
    ...(findings.length > 0 ? findings : ['- (the reviewer gave no finding; see the summary)']),
    '',
    `Fix every finding in your working directory, then run the project's checks if it has any. dan commits your fix and reviews it again (${roundsLeft} more round${roundsLeft === 1 ? '' : 's'} at most).`,
    'Do not commit, switch branches, rebase, reset or push.',
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}

/** One merged subtask of a goal, as its goal's review sees it. */
export interface GoalPart {
  key: string;
  domain: string;
  description: string;
  mergeCommit: string;
  stat: string;
}

/** The prompt of a goal's gate: the goal, its merged subtasks and how to see each one's change. Pure. */
export function goalReviewPrompt(input: { gate: string; checklist: string; goalId: string; description: string; parts: readonly GoalPart[]; round: number }): string {
  const parts = input.parts.map((p) => [`### ${p.key} (${p.domain}): ${p.description.trim().split('\n')[0]!.slice(0, 200)}`, `merged as ${p.mergeCommit} (see it: git show ${p.mergeCommit.slice(0, 12)} -m --first-parent)`, p.stat].join('\n'));
  return [
    `Review gate "${input.gate}" for goal ${input.goalId} (round ${input.round})`,
    '',
    "Review the goal's combined change against the checklist: every subtask below has merged, and your working directory holds the integration branch with all of them.",
    "You may read files, run git's read-only commands and the project's tests and linters; never edit, write or delete a file.",
    'Answer with your verdict: "pass" when the change as a whole meets the checklist, "fail" with findings (file, line, severity, message) when it does not.',
    '',
    '## The goal',
    '',
    input.description.trim(),
    '',
    '## Checklist',
    '',
    input.checklist.trim(),
    '',
    '## The subtasks and what each merged',
    '',
    parts.join('\n\n') || '(none changed a file)',
  ].join('\n');
}

/**
 * The domain that owns most of the files a failed goal review names: the subtask domain whose change touched
 * each one; the first subtask's domain when none is named. Pure.
 */
export function owningDomain(findings: Verdict['findings'], parts: ReadonlyArray<{ domain: string; files: readonly string[] }>): string | undefined {
  const votes = new Map<string, number>();
  for (const f of findings) {
    const owner = parts.find((p) => p.files.some((file) => file === f.file || f.file.endsWith(`/${file}`) || file.endsWith(`/${f.file}`)));
    if (owner) votes.set(owner.domain, (votes.get(owner.domain) ?? 0) + 1);
  }
  const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0];
  return best?.[0] ?? parts[0]?.domain;
}
