import { randomBytes } from 'node:crypto';
import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../runtime/index.js';
import type { LogEntryInput } from '../task.js';
import { splitSecrets } from '../secrets.js';
import { PLANNER_DOMAIN, plannerEnv } from './agent-env.js';
import { parsePlannerLine, type PlannerRunResult } from './planner-protocol.js';

/** Above this size the prompt cannot go in one environment variable (Linux allows 128 KiB per string). */
const MAX_PROMPT_BYTES = 100_000;
/** How long past its own timeout a planner run may take before the orchestrator stops it. */
const BACKSTOP_MS = 60_000;

export interface PlannerSandboxOptions {
  runtime: Runtime;
  config: DanConfig;
  /** The orchestrator's environment: only the pass-through model variables are taken from it. */
  env: Readonly<Record<string, string | undefined>>;
  prompt: string;
  timeoutMs: number;
  signal: AbortSignal;
  onEntry: (entry: LogEntryInput) => void;
  logger: Logger;
}

/**
 * Runs one planning run as a sandboxed run through the runtime (issue 16, item 1): `dan planner` in its own
 * container (docker: the agent image's hardening, the workspace read-only, no Redis, no socket) or its own
 * process (process: a clean environment). Reads its stdout, passes its log entries on, and returns its answer.
 * Never throws: a run that cannot start, crashes or says nothing comes back `failed`, a cancel `cancelled`.
 * The container or process is removed at the end.
 */
export async function runPlannerSandbox(options: PlannerSandboxOptions): Promise<PlannerRunResult> {
  const { runtime, signal } = options;
  const agentId = `${PLANNER_DOMAIN}-${randomBytes(6).toString('hex')}`;
  const log = options.logger.child({ planner: agentId });
  const failed = (error: string): PlannerRunResult => ({ status: 'failed', result: '', error, costUsd: 0, turns: 0 });
  if (Buffer.byteLength(options.prompt, 'utf8') > MAX_PROMPT_BYTES) {
    return failed(`the planning prompt is over ${MAX_PROMPT_BYTES} bytes (a long goal or context): too large for a planner run`);
  }
  if (signal.aborted) return { ...failed(String(signal.reason ?? 'cancelled')), status: 'cancelled' };
  const env = plannerEnv(options.config, { agentId, runtime: runtime.kind }, options.env, { prompt: options.prompt, timeoutMs: options.timeoutMs });
  try {
    // The model's keys go on the run's stdin (lib/secrets.ts), never into its environment; it gets no Redis URL.
    const { env: visible, secrets } = splitSecrets(env);
    delete secrets.REDIS_URL;
    await runtime.spawn({ agentId, role: 'planner', domain: PLANNER_DOMAIN, env: visible, secrets });
  } catch (error) {
    log.warn({ err: error }, 'cannot start the planner run');
    return failed(`cannot start the planner run: ${(error as Error).message}`);
  }
  log.info({ runtime: runtime.kind }, 'planner run started');

  let stopped: { status: 'cancelled' | 'timed_out'; error: string } | undefined;
  const stop = (status: 'cancelled' | 'timed_out', error: string): void => {
    if (stopped) return;
    stopped = { status, error };
    void runtime.stop(agentId, { timeoutMs: 10_000 }).catch((err: unknown) => log.warn({ err }, 'stopping the planner run failed'));
  };
  const onAbort = (): void => stop('cancelled', typeof signal.reason === 'string' && signal.reason ? signal.reason : 'cancelled');
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  const backstop = setTimeout(() => stop('timed_out', `the planner run did not end within ${options.timeoutMs + BACKSTOP_MS} ms`), options.timeoutMs + BACKSTOP_MS);

  let answer: PlannerRunResult | undefined;
  let exitCode: number | null = null;
  let tail = '';
  try {
    exitCode = await runtime.output(agentId, (line) => {
      const parsed = parsePlannerLine(line);
      if (!parsed) {
        if (line.trim()) log.debug({ line: line.slice(0, 500) }, 'planner run printed a line that is not a protocol line');
        return;
      }
      if (parsed.danPlanner === 'entry') options.onEntry(parsed.entry);
      else answer = { status: parsed.status, result: parsed.result, ...(parsed.error !== undefined ? { error: parsed.error } : {}), costUsd: parsed.costUsd, turns: parsed.turns };
    });
    if (!answer) tail = (await runtime.logs(agentId, { tail: 10 }).catch(() => '')).trim();
  } catch (error) {
    log.warn({ err: error }, 'reading the planner run failed');
    tail = (error as Error).message;
  } finally {
    clearTimeout(backstop);
    signal.removeEventListener('abort', onAbort);
    await runtime.remove(agentId).catch((err: unknown) => log.warn({ err }, 'removing the planner run failed'));
  }
  if (stopped) return { ...(answer ?? failed('')), ...stopped };
  if (answer) return answer;
  return failed(`the planner run exited${exitCode === null ? '' : ` with code ${exitCode}`} without an answer${tail ? `: ${tail.slice(-1000)}` : ''}`);
}
