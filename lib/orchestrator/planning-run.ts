import os from 'node:os';
import path from 'node:path';
import type { DanConfig } from '../config.js';
import { mainTemplateDir } from '../domains.js';
import { buildClaudeEnv, prepareConfigDir, removeConfigDir, runClaude } from '../executor/index.js';
import type { Logger } from '../log.js';
import { formatPlannerLine, type PlannerRunResult } from './planner-protocol.js';

export interface PlanningRunOptions {
  config: DanConfig;
  /** This run's own environment: the CLI's is built from it (PATH, HOME, the pass-through model variables). */
  env: Readonly<Record<string, string | undefined>>;
  agentId: string;
  prompt: string;
  timeoutMs: number;
  signal: AbortSignal;
  /** Where the protocol lines go (stdout). */
  write: (line: string) => void;
  logger: Logger;
}

/**
 * One planning run, inside its own container or process (`dan planner`, issue 16 item 1): the CLI with the
 * main orchestrator's instructions and permissions (agents/main-orchestrator: read-only tools) in the
 * workspace, every log entry and then the answer printed as protocol lines (lib/orchestrator/planner-protocol.ts)
 * for the orchestrator to read. It holds no Redis connection and no credential but the model's; it writes
 * nothing but its own config dir under the temporary folder.
 */
export async function runPlanning(options: PlanningRunOptions): Promise<PlannerRunResult> {
  const { config, agentId } = options;
  const configDir = path.join(os.tmpdir(), 'dan-planner', agentId);
  let outcome: PlannerRunResult;
  try {
    await prepareConfigDir(mainTemplateDir(config.templatesDir), configDir);
    const run = await runClaude({
      claudeBin: config.claudeBin,
      prompt: options.prompt,
      cwd: config.workspace,
      env: buildClaudeEnv(options.env, configDir, agentId),
      model: config.model,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onEntry: (entry) => options.write(formatPlannerLine({ danPlanner: 'entry', entry })),
      logger: options.logger,
    });
    outcome = {
      status: run.status,
      result: run.result,
      ...(run.error !== undefined ? { error: run.error } : {}),
      costUsd: run.costUsd,
      turns: run.turns,
    };
  } catch (error) {
    outcome = { status: 'failed', result: '', error: `the planner run could not start claude: ${(error as Error).message}`, costUsd: 0, turns: 0 };
  } finally {
    await removeConfigDir(configDir, 1);
  }
  options.write(formatPlannerLine({ danPlanner: 'result', ...outcome }));
  return outcome;
}
