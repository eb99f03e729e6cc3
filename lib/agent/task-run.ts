import type { DanConfig } from '../config.js';
import type { ExecutorResult } from '../executor/index.js';
import type { Logger } from '../log.js';
import type { Bus, MergeLock } from '../messaging/index.js';
import type { DomainMcp } from '../executor/mcp-config.js';
import type { GateState, Verdict } from '../gates.js';
import type { Question, TaskRecord } from '../task.js';
import type { GitWorkspace, Identity, PreparedWorktree, TaskGit } from '../workspace/index.js';
import type { LogWriter } from './log-writer.js';

/**
 * Why a task's run was aborted by its agent rather than by the task itself: a cancel; the agent stopping
 * (`shutdown`: hand the task back); the agent reaped (the task is someone else's: record nothing); the task's
 * job lock lapsed while the agent lived (`lapsed`: a stall; hand the task back, as the job may run elsewhere).
 */
export type AbortReason = 'cancelled' | 'shutdown' | 'reaped' | 'lapsed';

/** What every stage of an agent's pipeline may use: the agent's own parts, fixed for its life. */
export interface AgentContext {
  config: DanConfig;
  bus: Bus;
  agentId: string;
  domain: string;
  /** The environment the CLI's is built from. */
  env: Readonly<Record<string, string | undefined>>;
  /** The agent's CLAUDE_CONFIG_DIR. */
  configDir: string;
  /** How to start `dan` (its `mcp` command serves ask_user to every run). */
  danCommand: readonly string[];
  /** The domain's MCP servers (its .mcp.json), given to every run with dan's own. */
  domainMcp?: DomainMcp;
  /** The git workspace, or undefined in shared mode. */
  workspace: GitWorkspace | undefined;
  /** Why the workspace cannot be used as a repository, when it cannot (each task fails with it). */
  workspaceProblem?: string;
  mergeLock: MergeLock;
  /** Author and committer of the agent's commits. */
  identity: Identity;
}

/** A result as the record stage writes it: the executor's, or one a stage made up (a malformed record …). */
export type RunResult = { status: ExecutorResult['status'] | 'needs_input'; reason?: ExecutorResult['reason'] | 'review' | 'invalid verdict' } & Partial<Omit<ExecutorResult, 'status' | 'reason'>>;

/**
 * One attempt of one task as it travels through the pipeline (claimed → prepared → run → committed →
 * merged → recorded). Stages read what earlier ones left here and add their own part.
 */
export interface TaskRun {
  taskId: string;
  /** The attempt number: the fencing token of every write. */
  attempt: number;
  log: Logger;
  writer: LogWriter;
  controller: AbortController;
  /** The reason a user gave for cancelling (its control message), kept for the record. */
  cancelReason?: string;
  record?: TaskRecord;
  prompt?: string;
  /** The session the run continues (`--resume`), restored into the config dir by the session stage. */
  resume?: string;
  /** The CLI's working directory: the worktree in git mode, else the workspace. */
  cwd?: string;
  worktree?: PreparedWorktree;
  result?: RunResult;
  git?: TaskGit;
  /** The question the run asked the user (ask_user): the task goes to `needs_input`. */
  question?: Question;
  /** For a merge task (`dan merge --resolve`): the task whose branch it merges. */
  target?: TaskRecord;
  /**
   * The run ended on a limit: the task goes back to its queue without using an attempt, and this agent takes no
   * task before `untilMs` (the pause of its token or of the network).
   */
  handBack?: { untilMs: number; why: string };
  /** `--max-budget-usd` of the run when the goal's budget leaves less than the task's own (goal-budget stage). */
  budgetUsd?: number;
  /** A review task's verdict (verdict stage). */
  verdict?: Verdict;
  /** The author's review gates and their rounds (review stage). */
  reviews?: GateState[];
}

/** What a stage tells the pipeline: go on, or go straight to recording `run.result`. */
export type StageOutcome = 'next' | 'record';

export type Stage = (ctx: AgentContext, run: TaskRun) => Promise<StageOutcome>;

/** The abort reason of the run, if it was aborted by its agent. */
export const abortReason = (run: TaskRun): AbortReason | undefined =>
  run.controller.signal.aborted ? (run.controller.signal.reason as AbortReason) : undefined;

/**
 * Whether this attempt still holds its task: the record is active and names this agent and this attempt. An
 * attempt whose lease lapsed (its job lock not renewed in time) has lost the task to another agent, which
 * works on the same branch name and worktree path: the lapsed attempt must then neither commit nor merge.
 */
export async function holdsTask(ctx: AgentContext, run: TaskRun): Promise<boolean> {
  return holdsAttempt(ctx, run.taskId, ctx.agentId, run.attempt);
}

/** Whether the task is still active under `agent`'s attempt `attempt` (the fence of every step that changes its branch). */
export async function holdsAttempt(ctx: AgentContext, taskId: string, agent: string, attempt: number): Promise<boolean> {
  const record = await ctx.bus.tasks.find(taskId);
  return record?.status === 'active' && record.agent === agent && record.attempts === attempt;
}

/** The first line of the task's description, at most 100 characters: what its commit and merge messages name. */
export const descriptionLine = (run: TaskRun): string => (run.record?.description ?? '').trim().split('\n')[0]!.slice(0, 100);

/** Ends a lapsed attempt's pipeline like a reaped agent's: nothing more done, no result recorded. */
export function loseTask(run: TaskRun, stage: string): void {
  run.log.warn({ stage }, 'the task was handed to another agent (this attempt\'s lease lapsed): stopping before the step changes its branch');
  run.writer.push({ type: 'info', text: `attempt ${run.attempt} lost the task to another agent before its ${stage} step (its lease lapsed): it neither commits nor merges` });
  run.controller.abort('reaped');
}
