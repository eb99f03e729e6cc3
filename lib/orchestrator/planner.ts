import { accessMethod } from '../access.js';
import type { DanConfig } from '../config.js';
import { listDomains } from '../domains.js';
import { REVIEW_DOMAIN } from '../gates.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../runtime/index.js';
import type { LogEntryInput, TaskRecord } from '../task.js';
import { checkPlan, extractPlanJson, keywordPlan, type Plan } from './plan.js';
import { runPlannerSandbox } from './planner-sandbox.js';

export type PlanOutcome =
  | { kind: 'plan'; plan: Plan; source: 'model' | 'keywords'; costUsd: number; turns: number }
  | { kind: 'failed'; error: string; costUsd: number; turns: number }
  | { kind: 'cancelled'; error: string };

export interface PlannerOptions {
  config: DanConfig;
  /** The orchestrator's environment: planner runs get its pass-through model variables (ANTHROPIC_* …), nothing else. */
  env: Readonly<Record<string, string | undefined>>;
  /** Where planner runs run: the orchestrator's runtime (their own container, or their own process). */
  runtime: Runtime;
  logger: Logger;
}

/** Whether any model endpoint is configured for the CLI. */
export function modelConfigured(env: Readonly<Record<string, string | undefined>>): boolean {
  return accessMethod(env) !== undefined;
}

/** The planning prompt: the goal, the domains it may use, the format, and on a retry why the last plan was refused. */
export function planningPrompt(goal: TaskRecord, domains: readonly string[], maxSubtasks: number, rejection?: string): string {
  const parts = [
    `Goal: ${goal.description.trim()}`,
    `Available domains: ${domains.join(', ')}. Use only these.`,
    `Answer with a plan: a \`\`\`json block holding {"subtasks":[{"key":"...","domain":"...","description":"...","dependsOn":[]}]}, at most ${maxSubtasks} subtasks, as your CLAUDE.md describes. A subtask may say how hard it is with "model": "small" (simple, mechanical), "default" or "large" (hard, subtle): it runs on that tier's model. Do not change any file.`,
  ];
  if (Object.keys(goal.context).length > 0) parts.push(`Context:\n\`\`\`json\n${JSON.stringify(goal.context, null, 2)}\n\`\`\``);
  if (rejection) parts.push(`Your previous plan was rejected: ${rejection}. Fix exactly that and answer with the whole corrected plan.`);
  return parts.join('\n\n');
}

/**
 * Plans a `main` task (DESIGN.md, A task's life, step 5): asks Claude Code for a plan in a sandboxed planner run
 * (lib/orchestrator/planner-sandbox.ts: its own container or process, no Redis, no socket, read-only tools),
 * checks the answer, asks once more with the reason if it is invalid, and falls back to keyword routing when no
 * model is configured or the planner run itself fails (not for a bad plan: that fails the task, saying why).
 */
export class Planner {
  constructor(private readonly options: PlannerOptions) {}

  async plan(goal: TaskRecord, signal: AbortSignal, onEntry: (entry: LogEntryInput) => void): Promise<PlanOutcome> {
    const { config, env } = this.options;
    // Reviewers are not a plan's domain: they review the plan's changes (issue 15).
    const domains = listDomains(config.templatesDir).filter((d) => d !== REVIEW_DOMAIN);
    if (!modelConfigured(env)) {
      return this.fallback(goal, domains, 'no model is configured (no ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL, Bedrock or Vertex)', onEntry, 0, 0);
    }
    let costUsd = 0;
    let turns = 0;
    let rejection: string | undefined;
    for (let attempt = 1; attempt <= 2; attempt++) {
      onEntry({ type: 'info', text: attempt === 1 ? `planning across ${domains.join(', ')}` : `asking again: ${rejection}` });
      const run = await runPlannerSandbox({
        runtime: this.options.runtime,
        config,
        env,
        prompt: planningPrompt(goal, domains, config.maxSubtasks, rejection),
        timeoutMs: goal.timeoutS * 1000,
        signal,
        onEntry,
        logger: this.options.logger,
      });
      costUsd += run.costUsd;
      turns += run.turns;
      if (run.status === 'cancelled') return { kind: 'cancelled', error: run.error ?? 'cancelled' };
      if (run.status !== 'completed') {
        return this.fallback(goal, domains, `the planner ${run.status === 'timed_out' ? 'timed out' : 'failed'}: ${run.error ?? 'no message'}`, onEntry, costUsd, turns);
      }
      const check = checkPlan(extractPlanJson(run.result), { domains, maxSubtasks: config.maxSubtasks });
      if (check.ok) {
        onEntry({ type: 'info', text: `plan accepted: ${describePlan(check.plan)}`, data: { plan: check.plan } });
        return { kind: 'plan', plan: check.plan, source: 'model', costUsd, turns };
      }
      rejection = check.reason;
      onEntry({ type: 'error', text: `plan rejected: ${check.reason}` });
    }
    return { kind: 'failed', error: `the plan was rejected twice; last reason: ${rejection}`, costUsd, turns };
  }

  private fallback(goal: TaskRecord, domains: readonly string[], why: string, onEntry: (e: LogEntryInput) => void, costUsd: number, turns: number): PlanOutcome {
    const plan = keywordPlan(goal.description, domains);
    if (!plan) {
      const error = `${why}, and keyword routing found no domain in the goal: send it to a domain directly (dan send-task <domain> ...)`;
      onEntry({ type: 'error', text: error });
      return { kind: 'failed', error, costUsd, turns };
    }
    onEntry({ type: 'info', text: `FALLBACK: ${why}; used keyword routing: ${describePlan(plan)}`, data: { plan, fallback: true } });
    return { kind: 'plan', plan, source: 'keywords', costUsd, turns };
  }
}

/** `api (backend) → form (frontend) ← api`, for log lines. */
export function describePlan(plan: Plan): string {
  return plan.subtasks.map((s) => `${s.key} (${s.domain})${s.dependsOn.length > 0 ? ` after ${s.dependsOn.join(', ')}` : ''}`).join('; ');
}
