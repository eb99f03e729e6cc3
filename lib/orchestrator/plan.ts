import { z } from 'zod';
import { describeZodError } from '../errors.js';

/** The model tiers a plan may give a subtask (issue 12, model per task). */
export const MODEL_TIERS = ['small', 'default', 'large'] as const;
export type ModelTier = (typeof MODEL_TIERS)[number];

/**
 * The model a subtask of tier `tier` runs on: DAN_MODEL_SMALL or DAN_MODEL_LARGE for those tiers when set, else
 * the goal's own model (`--model` on the goal), else none (the domain's default). Pure.
 */
export function tierModel(tier: ModelTier | undefined, tiers: { small?: string; large?: string }, goalModel: string | undefined): string | undefined {
  const mapped = tier === 'small' ? tiers.small : tier === 'large' ? tiers.large : undefined;
  return mapped ?? goalModel;
}

/**
 * The plan the main orchestrator asks Claude Code for (documented in agents/main-orchestrator/CLAUDE.md):
 * `{"subtasks":[{"key":"api","domain":"backend","description":"...","dependsOn":[]}, ...]}`. Pure.
 */
export const subtaskPlanSchema = z.object({
  key: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be 1-32 lowercase letters, digits or dashes'),
  domain: z.string().min(1),
  description: z.string().trim().min(1, 'must not be empty').max(64 * 1024),
  dependsOn: z.array(z.string()).default([]),
  /** The planner's estimate of the subtask's difficulty: which model tier runs it ({@link tierModel}). */
  model: z.enum(MODEL_TIERS, { error: `must be one of ${MODEL_TIERS.join(', ')}` }).optional(),
});
export const planSchema = z.object({ subtasks: z.array(subtaskPlanSchema).min(1, 'must have at least one subtask') });
export type SubtaskPlan = z.infer<typeof subtaskPlanSchema>;
export type Plan = z.infer<typeof planSchema>;

export type PlanCheck = { ok: true; plan: Plan } | { ok: false; reason: string };

/**
 * The plan's JSON from the CLI's final text: the first fenced ```json block, or else the first balanced
 * JSON object in the text. Returns undefined when there is none.
 */
export function extractPlanJson(text: string): unknown {
  const fenced = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(text);
  if (fenced) {
    try {
      return JSON.parse(fenced[1]!);
    } catch {
      // fall through to the first object in the text
    }
  }
  for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
    const end = matchingBrace(text, start);
    if (end < 0) continue;
    try {
      return JSON.parse(text.slice(start, end + 1));
    } catch {
      // not JSON from this brace: try the next one
    }
  }
  return undefined;
}

/** Index of the brace closing the one at `start`, skipping strings; -1 when unbalanced. */
function matchingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Checks a plan: schema, known domains, unique keys, dependencies that exist and form no cycle, size. */
export function checkPlan(json: unknown, options: { domains: readonly string[]; maxSubtasks: number }): PlanCheck {
  if (json === undefined) return { ok: false, reason: 'no JSON plan found: answer with a ```json block holding {"subtasks":[...]}' };
  const parsed = planSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `the plan does not match the format: ${describeZodError(parsed.error)}` };
  const { subtasks } = parsed.data;
  if (subtasks.length > options.maxSubtasks) {
    return { ok: false, reason: `the plan has ${subtasks.length} subtasks; at most ${options.maxSubtasks} are allowed` };
  }
  const unknown = subtasks.filter((s) => !options.domains.includes(s.domain));
  if (unknown.length > 0) {
    return {
      ok: false,
      reason: `unknown domain${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s.domain}" (subtask ${s.key})`).join(', ')}; available: ${options.domains.join(', ')}`,
    };
  }
  const keys = new Set<string>();
  for (const s of subtasks) {
    if (keys.has(s.key)) return { ok: false, reason: `duplicate key "${s.key}": keys must be unique` };
    keys.add(s.key);
  }
  for (const s of subtasks) {
    const dangling = s.dependsOn.filter((d) => !keys.has(d));
    if (dangling.length > 0) return { ok: false, reason: `subtask "${s.key}" depends on unknown key${dangling.length > 1 ? 's' : ''} ${dangling.map((d) => `"${d}"`).join(', ')}` };
    if (s.dependsOn.includes(s.key)) return { ok: false, reason: `subtask "${s.key}" depends on itself` };
  }
  const cycle = findCycle(subtasks);
  if (cycle) return { ok: false, reason: `the dependencies form a cycle: ${cycle.join(' → ')}` };
  return { ok: true, plan: { subtasks: subtasks.map((s) => ({ ...s, dependsOn: [...new Set(s.dependsOn)] })) } };
}

/** A cycle as a list of keys (first repeated at the end), or undefined. Depth-first search. */
export function findCycle(subtasks: readonly Pick<SubtaskPlan, 'key' | 'dependsOn'>[]): string[] | undefined {
  const deps = new Map(subtasks.map((s) => [s.key, s.dependsOn]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (key: string): string[] | undefined => {
    if (state.get(key) === 'done') return undefined;
    if (state.get(key) === 'visiting') return [...stack.slice(stack.indexOf(key)), key];
    state.set(key, 'visiting');
    stack.push(key);
    for (const d of deps.get(key) ?? []) {
      const found = visit(d);
      if (found) return found;
    }
    stack.pop();
    state.set(key, 'done');
    return undefined;
  };
  for (const s of subtasks) {
    const found = visit(s.key);
    if (found) return found;
  }
  return undefined;
}

/** Keyword routing, in dependency order: what each domain is recognised by. */
export const ROUTES: ReadonlyArray<{ domain: string; key: string; words: RegExp }> = [
  { domain: 'backend', key: 'backend', words: /\b(api|apis|endpoints?|database|db|sql|schema|auth|authentication|login|server|backend)\b/i },
  { domain: 'frontend', key: 'frontend', words: /\b(components?|forms?|pages?|css|ui|react|frontend|button|layout|styles?)\b/i },
  { domain: 'devops', key: 'devops', words: /\b(docker|dockerfile|ci|pipeline|deploy|deployment|terraform|kubernetes|k8s|helm|infra|infrastructure)\b/i },
];

/**
 * The fallback plan when no model can plan: one subtask per domain whose keywords the goal mentions, each
 * depending on the previous one (backend → frontend → devops). Undefined when nothing matches.
 */
export function keywordPlan(goal: string, domains: readonly string[]): Plan | undefined {
  const matched = ROUTES.filter((r) => domains.includes(r.domain) && r.words.test(goal));
  if (matched.length === 0) return undefined;
  // Room for the sentence appended below: a subtask's description has the same 64 KiB limit as the goal.
  const room = 64 * 1024 - 256;
  const text = Buffer.byteLength(goal) > room ? `${Buffer.from(goal).subarray(0, room).toString()}…` : goal;
  return {
    subtasks: matched.map((r, i) => ({
      key: r.key,
      domain: r.domain,
      description: `${text}\n\nDo the ${r.domain} part of this goal only.${i > 0 ? ` Build on what the ${matched[i - 1]!.domain} task did (its result is below).` : ''}`,
      dependsOn: i > 0 ? [matched[i - 1]!.key] : [],
    })),
  };
}
