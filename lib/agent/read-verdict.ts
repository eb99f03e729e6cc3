import { parseVerdict } from '../gates.js';
import { runCli } from './run-cli.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/**
 * Stage, of a review task (issue 15): reads the reviewer's verdict from its run's answer. An answer that is not a
 * valid verdict gets one more turn in the same session with what was wrong; still invalid, the review task fails
 * with reason `invalid verdict` (its gate then fails with it).
 */
export async function readVerdict(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  if (!run.record?.review || run.result?.status !== 'completed') return 'next';
  let parsed = parseVerdict(run.result.result ?? '');
  if ('error' in parsed) {
    run.writer.push({ type: 'warning', text: `the verdict is invalid (${parsed.error}): asking the reviewer once more` });
    const again = await runCli(ctx, run, `Your answer is not a valid verdict: ${parsed.error}. Answer again, with only the verdict the schema asks for.`, run.result.sessionId);
    run.result = { ...run.result, ...again, costUsd: (run.result.costUsd ?? 0) + again.costUsd, turns: (run.result.turns ?? 0) + again.turns };
    parsed = again.status === 'completed' ? parseVerdict(again.result) : { error: `the second answer ended ${again.status}: ${again.error ?? 'no message'}` };
  }
  if ('error' in parsed) {
    run.result = { ...run.result, status: 'failed', error: `invalid verdict: ${parsed.error}`, reason: 'invalid verdict' };
    run.writer.push({ type: 'error', text: `invalid verdict: ${parsed.error}` });
    return 'next';
  }
  run.verdict = parsed.verdict;
  const count = parsed.verdict.findings.length;
  run.writer.push({ type: 'info', text: `verdict: ${parsed.verdict.verdict} (${count} finding${count === 1 ? '' : 's'}): ${parsed.verdict.summary}` });
  return 'next';
}
