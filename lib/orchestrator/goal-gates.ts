import {
  findingsMessage,
  gateChecklist,
  goalReviewPrompt,
  owningDomain,
  REVIEW_DOMAIN,
  type GateRound,
  type GateState,
} from '../gates.js';
import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import { isTerminal, taskSpecSchema, type TaskRecord } from '../task.js';
import { describeStat } from '../workspace/index.js';

export interface GoalGateSettings {
  templatesDir: string;
  reviewRounds: number;
  taskAttempts: number;
}

/** Where a goal's gates stand: still reviewing or fixing, passed, or failed (why). */
export type GoalGateOutcome = { state: 'open' } | { state: 'passed' } | { state: 'failed'; error: string };

/**
 * A goal's own gates (issue 15), once every subtask completed: each gate in order reviews the goal's combined
 * change as a task of the review domain; a failure becomes a fix-up subtask of the goal for the domain owning
 * the files with findings, and once it completed the gate reviews again, up to DAN_REVIEW_ROUNDS rounds. Moved
 * along by the task graph from what the goal's record holds (`reviews`), one step per call, so any leader can go on.
 */
export async function stepGoalGates(bus: Bus, log: Logger, settings: GoalGateSettings, goal: TaskRecord, children: readonly TaskRecord[]): Promise<GoalGateOutcome> {
  const states: GateState[] = goal.reviews ?? (goal.gates ?? []).map((gate) => ({ gate, state: 'pending' as const, rounds: [] }));
  const save = (text: string): Promise<void> => saveReviews(bus, goal.id, states, text);
  for (const state of states) {
    if (state.state === 'pass' || state.state === 'waived') continue;
    const last = state.rounds.at(-1);
    if (last && last.verdict === undefined && last.error === undefined) {
      const review = await bus.tasks.find(last.task);
      if (review && !isTerminal(review.status)) return { state: 'open' };
      readVerdict(last, review);
      state.state = last.verdict === 'pass' ? 'pass' : 'fail';
      await save(`the goal's ${state.gate} gate, round ${state.rounds.length}: ${last.verdict ?? 'no verdict'}${last.summary ? `: ${last.summary}` : last.error ? `: ${last.error}` : ''}`);
      if (state.state === 'pass') continue;
    }
    if (last?.error) return { state: 'failed', error: `review: the goal's ${state.gate} gate has no verdict: ${last.error}` };
    if (last?.verdict === 'fail') {
      if (!last.fixup) {
        if (state.rounds.length >= settings.reviewRounds) {
          return { state: 'failed', error: `review: the goal's ${state.gate} gate failed after ${state.rounds.length} round${state.rounds.length === 1 ? '' : 's'}: ${last.summary ?? `${last.findings.length} findings`}` };
        }
        last.fixup = await fixUp(bus, settings, goal, children, state.gate, last, state.rounds.length);
        await save(`the goal's ${state.gate} gate failed: fix-up subtask ${last.fixup}`);
        return { state: 'open' };
      }
      const fix = children.find((c) => c.id === last.fixup);
      if (!fix) return { state: 'open' };
      if (fix.status !== 'completed') return { state: 'failed', error: `review: the fix-up of the goal's ${state.gate} gate (${fix.id}) ended ${fix.status}` };
    }
    const round = state.rounds.length + 1;
    const id = await submitReview(bus, settings, goal, children, state.gate, round);
    state.state = 'pending';
    state.rounds.push({ task: id, findings: [], costUsd: 0 });
    await save(`the goal's ${state.gate} gate, round ${round}: task ${id} reviews the merged subtasks`);
    log.info({ goal: goal.id, gate: state.gate, round, review: id }, "reviewing the goal's change");
    return { state: 'open' };
  }
  return { state: 'passed' };
}

function readVerdict(round: GateRound, review: TaskRecord | undefined): void {
  round.costUsd = review?.costUsd ?? 0;
  if (review?.status === 'completed' && review.verdict) {
    round.verdict = review.verdict.verdict;
    round.findings = review.verdict.findings;
    round.summary = review.verdict.summary;
  } else {
    round.error = review ? `review task ${review.id} ended ${review.status}: ${review.error ?? 'no verdict'}` : 'its review task is gone';
  }
}

async function submitReview(bus: Bus, settings: GoalGateSettings, goal: TaskRecord, children: readonly TaskRecord[], gate: string, round: number): Promise<string> {
  const parts = children
    .filter((c) => c.git?.merge === 'merged' && c.git.mergeCommit)
    .map((c) => ({ key: c.key ?? c.id, domain: c.domain, description: c.description, mergeCommit: c.git!.mergeCommit!, stat: `${c.git!.files.map((f) => `${f.path} (+${f.added ?? '-'} -${f.removed ?? '-'})`).join(', ')} (${describeStat(c.git!.files)})` }));
  const description = goalReviewPrompt({ gate, checklist: gateChecklist(settings.templatesDir, gate), goalId: goal.id, description: goal.description.slice(0, 8192), parts, round });
  const spec = taskSpecSchema.parse({ domain: REVIEW_DOMAIN, description, timeoutS: goal.timeoutS, maxAttempts: settings.taskAttempts, gates: [], review: { of: goal.id, gate, round, goal: true } });
  return (await bus.submit(spec)).id;
}

/** A subtask of the goal that fixes a failed gate's findings, for the domain owning the files they name. */
async function fixUp(bus: Bus, settings: GoalGateSettings, goal: TaskRecord, children: readonly TaskRecord[], gate: string, round: GateRound, roundNo: number): Promise<string> {
  const domain = owningDomain(round.findings, children.map((c) => ({ domain: c.domain, files: c.git?.files.map((f) => f.path) ?? [] }))) ?? children[0]!.domain;
  const description = [
    `Fix what the "${gate}" review of the goal found in the merged work.`,
    '',
    findingsMessage(gate, round, settings.reviewRounds - roundNo).split('\n').slice(1).join('\n'),
    '',
    `The goal: ${goal.description.trim().slice(0, 4000)}`,
  ].join('\n');
  const spec = taskSpecSchema.parse({ domain, description, timeoutS: goal.timeoutS, maxAttempts: settings.taskAttempts, parent: goal.id, key: `fix-${gate}-${roundNo}`, model: goal.model });
  return (await bus.submit(spec)).id;
}

async function saveReviews(bus: Bus, goalId: string, states: readonly GateState[], text: string): Promise<void> {
  await bus.tasks.updateFields(goalId, { reviews: JSON.stringify(states) });
  await bus.logs.append(goalId, [{ type: 'info', text }]);
}
