import { buildClaudeEnv, runClaude, type ExecutorResult } from '../executor/index.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

/**
 * Stage: runs the Claude Code CLI on the task's prompt in its working directory, streaming every event; in the
 * session the session stage restored, when the task continues a conversation (a follow-up, an answer).
 */
export async function runTaskCli(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  if (run.target) {
    // A merge task's work is the merge stage's (and its conflict resolution's, when there is one).
    run.result = { status: 'completed', result: `merge of task ${run.target.id}'s branch ${run.git?.branch ?? ''}`, costUsd: 0, turns: 0 };
    return 'next';
  }
  run.result = await runCli(ctx, run, run.prompt!, run.resume);
  return 'next';
}

/** One CLI run in the task's working directory (the task's prompt, or a follow-up in the same session). */
export async function runCli(ctx: AgentContext, run: TaskRun, prompt: string, resume?: string): Promise<ExecutorResult> {
  const result = await runClaude({
    claudeBin: ctx.config.claudeBin,
    prompt,
    cwd: run.cwd ?? ctx.config.workspace,
    env: buildClaudeEnv(ctx.env, ctx.configDir, ctx.agentId),
    model: ctx.config.model,
    permissionMode: ctx.config.permissionMode,
    timeoutMs: run.record!.timeoutS * 1000,
    signal: run.controller.signal,
    resume,
    onEntry: (entry) => run.writer.push({ ...entry, agent: ctx.agentId }),
    logger: run.log,
  });
  await run.writer.flush();
  return result;
}
