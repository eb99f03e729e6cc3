import { setTimeout as sleep } from 'node:timers/promises';
import {
  findingsMessage,
  gateChecklist,
  gatesOf,
  parseVerdict,
  REVIEW_DOMAIN,
  reviewPrompt,
  type GateRound,
  type GateState,
} from '../gates.js';
import { isTerminal, taskSpecSchema, type TaskRecord } from '../task.js';
import { describeStat } from '../workspace/index.js';
import { admissionText, admitRun } from './admit-run.js';
import { commitChange } from './commit-change.js';
import { runCli } from './run-cli.js';
import { abortReason, holdsTask, loseTask, type AgentContext, type StageOutcome, type TaskRun } from './task-run.js';

/** How often the author looks at its review task while it waits. */
const POLL_MS = 500;
/** The most of the author's description a review prompt quotes. */
const MAX_QUOTED_DESCRIPTION = 8 * 1024;

/**
 * Stage (issue 15): the review gates of a completed change, after its commit and before its merge. Each gate in
 * order reviews the committed change as a task of the `review` domain; the first that fails sends the change
 * back to its author (the task's own session resumed with the findings), which commits again, and the gates run
 * again, up to DAN_REVIEW_ROUNDS rounds. Still failing: the task fails with reason `review`, its branch kept
 * with the findings and never merged (`dan waive` passes a gate by hand).
 */
export async function reviewChange(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const record = run.record;
  if (!record || run.target || record.review || run.result?.status !== 'completed') return 'next';
  let gates: string[];
  try {
    gates = gatesOf(ctx.config.templatesDir, ctx.domain, record.gates);
  } catch (error) {
    return failReview(run, `the review gates cannot be read: ${(error as Error).message}`);
  }
  if (gates.length === 0) return 'next';
  if (!ctx.workspace || !run.git) return failReview(run, `gates ${gates.join(', ')} need a change to review: DAN_WORKSPACE_MODE=git (this agent runs in shared mode)`);
  if (!run.git.commit) {
    run.writer.push({ type: 'info', text: 'no change: nothing for the review gates to look at' });
    return 'next';
  }
  const states: GateState[] = gates.map((gate) => ({ gate, state: 'pending', rounds: [] }));
  run.reviews = states;
  const maxRounds = ctx.config.reviewRounds;
  for (let round = 1; ; round++) {
    const failed = await passGates(ctx, run, states, round);
    if (abortReason(run) || failed === 'aborted') return 'next';
    if (failed === undefined) {
      run.writer.push({ type: 'info', text: `passed every review gate (${gates.join(', ')}) in ${round} round${round === 1 ? '' : 's'}` });
      return 'next';
    }
    const last = failed.rounds.at(-1)!;
    if (last.error) return failReview(run, `the ${failed.gate} gate has no verdict: ${last.error}`);
    if (round >= maxRounds) {
      return failReview(run, `the ${failed.gate} gate failed after ${round} round${round === 1 ? '' : 's'}: ${last.summary ?? `${last.findings.length} findings`}`, failed.gate);
    }
    run.writer.push({ type: 'info', text: `the ${failed.gate} gate failed (round ${round}): back to the author with ${last.findings.length} finding${last.findings.length === 1 ? '' : 's'}` });
    const fixed = await fixFindings(ctx, run, failed.gate, last, maxRounds - round);
    if (fixed !== 'next') return fixed;
  }
}

/** Runs the gates in order on the branch's head; the first that does not pass, or undefined when all passed. */
async function passGates(ctx: AgentContext, run: TaskRun, states: GateState[], round: number): Promise<GateState | 'aborted' | undefined> {
  for (const state of states) {
    state.state = 'pending';
    const reviewed = await reviewOnce(ctx, run, state.gate, round);
    if (reviewed === 'aborted') return 'aborted';
    state.rounds.push(reviewed);
    state.state = reviewed.verdict === 'pass' ? 'pass' : 'fail';
    await saveReviews(ctx, run, `${state.gate} gate, round ${round}: ${reviewed.verdict ?? 'no verdict'}${reviewed.summary ? `: ${reviewed.summary}` : reviewed.error ? `: ${reviewed.error}` : ''}`);
    for (const f of reviewed.findings) run.writer.push({ type: 'info', text: `  ${f.file}${f.line ? `:${f.line}` : ''} [${f.severity}] ${f.message}` });
    if (state.state === 'fail') return state;
  }
  return undefined;
}

/** One gate's review of the branch's head, as a task of the review domain this attempt waits for. */
async function reviewOnce(ctx: AgentContext, run: TaskRun, gate: string, round: number): Promise<GateRound | 'aborted'> {
  const git = run.git!;
  const workspace = ctx.workspace!;
  const [patch, files] = await Promise.all([workspace.patch(git.base, git.commit!), workspace.stat(git.base, git.commit!)]);
  const stat = [...files.map((f) => `${f.path} (+${f.added ?? '-'} -${f.removed ?? '-'})`), describeStat(files)].join('\n');
  const description = reviewPrompt({
    gate,
    checklist: gateChecklist(ctx.config.templatesDir, gate),
    taskId: run.taskId,
    description: run.record!.description.slice(0, MAX_QUOTED_DESCRIPTION),
    stat,
    patch,
    round,
  });
  const spec = taskSpecSchema.parse({
    domain: REVIEW_DOMAIN,
    description,
    timeoutS: run.record!.timeoutS,
    maxAttempts: ctx.config.taskAttempts,
    gates: [],
    review: { of: run.taskId, gate, commit: git.commit, base: git.base, round },
  });
  const review = await ctx.bus.submit(spec);
  run.writer.push({ type: 'info', text: `review gate ${gate}, round ${round}: task ${review.id} reviews ${git.commit!.slice(0, 10)}` });
  // While it waits, the author runs no CLI: its running slot (DAN_MAX_RUNNING) goes to the reviewer.
  await ctx.bus.gate.release(ctx.agentId, run.taskId);
  const ended = await waitForEnd(ctx, run, review.id);
  if (!ended) {
    await ctx.bus.cancel(review.id, `its author's attempt stopped (${abortReason(run) ?? 'aborted'})`).catch(() => undefined);
    return 'aborted';
  }
  const costUsd = ended.costUsd ?? 0;
  run.result = { ...run.result!, costUsd: (run.result?.costUsd ?? 0) + costUsd };
  if (ended.status === 'completed' && ended.verdict) {
    return { task: review.id, verdict: ended.verdict.verdict, findings: ended.verdict.findings, summary: ended.verdict.summary, costUsd };
  }
  // A verdict the record lacks, read from its result as a last resort (it cannot be, but a record is data).
  const parsed = ended.status === 'completed' ? parseVerdict(ended.result ?? '') : undefined;
  if (parsed && 'verdict' in parsed) return { task: review.id, verdict: parsed.verdict.verdict, findings: parsed.verdict.findings, summary: parsed.verdict.summary, costUsd };
  return { task: review.id, error: `review task ${review.id} ended ${ended.status}: ${ended.error ?? 'no verdict'}`, findings: [], costUsd };
}

/** The review task's record once it ended, or undefined when this attempt was aborted meanwhile. */
async function waitForEnd(ctx: AgentContext, run: TaskRun, id: string): Promise<TaskRecord | undefined> {
  for (;;) {
    if (run.controller.signal.aborted) return undefined;
    const record = await ctx.bus.tasks.find(id);
    if (record && isTerminal(record.status)) return record;
    try {
      await sleep(POLL_MS, undefined, { signal: run.controller.signal });
    } catch {
      return undefined;
    }
  }
}

/** Resumes the author's session with the findings, then commits what it changed. */
async function fixFindings(ctx: AgentContext, run: TaskRun, gate: string, round: GateRound, roundsLeft: number): Promise<StageOutcome> {
  if (!(await admitAgain(ctx, run))) return 'next';
  if (!(await holdsTask(ctx, run))) {
    loseTask(run, 'review');
    return 'next';
  }
  const fix = await runCli(ctx, run, findingsMessage(gate, round, roundsLeft), run.result?.sessionId);
  run.result = {
    ...run.result!,
    ...fix,
    costUsd: (run.result?.costUsd ?? 0) + fix.costUsd,
    turns: (run.result?.turns ?? 0) + fix.turns,
  };
  if (fix.status !== 'completed') {
    run.writer.push({ type: 'error', text: `the author's fix for the ${gate} gate ended ${fix.status}: ${fix.error ?? 'no message'}` });
    return 'next';
  }
  return commitChange(ctx, run);
}

/** Takes a running slot again before the author's next run (it gave its slot up while it waited). */
async function admitAgain(ctx: AgentContext, run: TaskRun): Promise<boolean> {
  let said = false;
  for (;;) {
    if (run.controller.signal.aborted) return false;
    const admission = await admitRun(ctx, run.taskId);
    if (admission.admitted) return true;
    if (!said) run.writer.push({ type: 'info', text: `the fix waits: ${admissionText(admission)}` });
    said = true;
    try {
      await sleep(Math.min(5_000, Math.max(POLL_MS, ('untilMs' in admission ? admission.untilMs : 0) - Date.now())), undefined, { signal: run.controller.signal });
    } catch {
      return false;
    }
  }
}

/** The gates' states on the record, with a log line, while the attempt still holds the task. */
async function saveReviews(ctx: AgentContext, run: TaskRun, text: string): Promise<void> {
  run.writer.push({ type: 'info', text });
  await run.writer.flush();
  if (await holdsTask(ctx, run)) await ctx.bus.tasks.updateFields(run.taskId, { reviews: JSON.stringify(run.reviews) });
}

/** Ends the task `failed` with reason `review`: its branch is kept, never merged. */
function failReview(run: TaskRun, why: string, gate?: string): StageOutcome {
  run.result = { ...run.result!, status: 'failed', error: `review: ${why}`, reason: 'review' };
  if (run.git) {
    run.git.merge = 'skipped';
    run.git.mergeReason = gate
      ? `failed review: ${run.git.branch} is kept; dan waive ${run.taskId} --gate ${gate} --reason "…" merges it anyway`
      : `failed review: ${run.git.branch} is kept`;
  }
  run.writer.push({ type: 'error', text: `review: ${why}` });
  return 'next';
}
