import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { buildClaudeEnv, runClaude, type ExecutorResult } from '../executor/index.js';
import { buildMcpConfig } from '../executor/mcp-config.js';
import { ASK_USER_TOOL_ID } from '../mcp/dan-mcp-server.js';
import { VERDICT_JSON_SCHEMA } from '../gates.js';
import { mcpSecretName } from '../secrets.js';
import { questionSchema } from '../task.js';
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
  await rm(questionFile(ctx, run), { force: true });
  run.result = await runCli(ctx, run, run.prompt!, run.resume);
  return 'next';
}

/** Tools a review run never gets, whatever its domain's settings say. */
const REVIEWER_DISALLOWED = ['Write', 'Edit', 'MultiEdit', 'NotebookEdit'];

/** Where dan's MCP server writes the question a run asks (the agent's config dir, never the workspace). */
const questionFile = (ctx: AgentContext, run: TaskRun): string => path.join(ctx.configDir, 'questions', `${run.taskId}.json`);

/**
 * Stage: a run that asked the user a question (ask_user) and then ended its turn waits for the answer: its result
 * becomes `needs_input` with the question, never `completed`. A run that asked and then failed keeps its failure.
 */
export async function collectQuestion(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const file = questionFile(ctx, run);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return 'next';
  await rm(file, { force: true });
  let parsed;
  try {
    parsed = questionSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) {
    run.writer.push({ type: 'warning', text: 'the run asked a question dan could not read; it is ignored' });
    return 'next';
  }
  if (run.result?.status !== 'completed') {
    run.writer.push({ type: 'info', text: `the run asked "${parsed.data.question}" but ended ${run.result?.status ?? 'without a result'}` });
    return 'next';
  }
  run.question = parsed.data;
  run.result = { ...run.result, status: 'needs_input' };
  return 'next';
}

/** One CLI run in the task's working directory (the task's prompt, or a follow-up in the same session). */
export async function runCli(ctx: AgentContext, run: TaskRun, prompt: string, resume?: string): Promise<ExecutorResult> {
  const file = questionFile(ctx, run);
  await mkdir(path.dirname(file), { recursive: true });
  const env = buildClaudeEnv(ctx.env, ctx.configDir, ctx.agentId);
  // What the domain's .mcp.json references (`${GITHUB_TOKEN}`) reaches the CLI, which expands it.
  // An agent a runtime started got them on its stdin (lib/secrets.ts); one started by hand has them in its own.
  for (const name of ctx.domainMcp?.variables ?? []) {
    const value = ctx.env[mcpSecretName(name)] ?? ctx.env[name];
    if (value !== undefined) env[name] = value;
  }
  const result = await runClaude({
    claudeBin: ctx.config.claudeBin,
    prompt,
    cwd: run.cwd ?? ctx.config.workspace,
    env,
    mcpConfig: buildMcpConfig(ctx.danCommand, file, ctx.domainMcp),
    allowedTools: [ASK_USER_TOOL_ID, ...Object.keys(ctx.domainMcp?.servers ?? {}).map((name) => `mcp__${name}`)],
    model: run.record!.model ?? ctx.config.model,
    effort: run.record!.effort,
    fallbackModel: run.record!.fallbackModel,
    maxBudgetUsd: run.budgetUsd ?? run.record!.budgetUsd,
    // A reviewer answers a verdict and never edits: the domain's settings deny writes, and so do these flags.
    ...(run.record!.review ? { jsonSchema: VERDICT_JSON_SCHEMA, disallowedTools: REVIEWER_DISALLOWED } : {}),
    permissionMode: ctx.config.permissionMode,
    timeoutMs: run.record!.timeoutS * 1000,
    signal: run.controller.signal,
    resume,
    onEntry: (entry) => run.writer.push({ ...entry, agent: ctx.agentId }),
    logger: run.log,
    runAs: ctx.config.cliUser,
  });
  await run.writer.flush();
  // Every run's cost counts towards today's spend (DAN_DAILY_BUDGET_USD), whatever becomes of its result.
  await ctx.bus.gate.addSpend(ctx.domain, result.costUsd ?? 0);
  return result;
}
