import { PASSTHROUGH_ENV, type DanConfig } from '../config.js';
import type { AgentRole, RuntimeKind } from '../runtime/index.js';

interface RunSpec {
  agentId: string;
  domain: string;
  role: AgentRole;
  runtime: RuntimeKind;
}

/**
 * What every run a runtime starts gets, agent or planner: who it is, where the workspace, templates and CLI
 * are for its runtime, the model settings, and the pass-through model variables from the orchestrator's own
 * environment. Pure.
 */
function runEnv(config: DanConfig, spec: RunSpec, parentEnv: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {
    AGENT_ID: spec.agentId,
    AGENT_ROLE: spec.role,
    DOMAIN_TYPE: spec.domain,
    DAN_NETWORK: config.network,
    DAN_RUNTIME: spec.runtime,
    DAN_LOG_LEVEL: config.logLevel,
  };
  if (config.model) env.DAN_MODEL = config.model;
  if (spec.runtime === 'process') {
    // Child processes share this machine's paths; containers use the image's own.
    env.DAN_WORKSPACE = config.workspace;
    env.DAN_TEMPLATES = config.templatesDir;
    env.DAN_CLAUDE_BIN = config.agentClaudeBin ?? config.claudeBin;
  } else {
    env.DAN_WORKSPACE = '/workspace';
    // A container has its own paths: only a CLI named for agents (DAN_AGENT_CLAUDE_BIN) replaces the image's.
    if (config.agentClaudeBin) env.DAN_CLAUDE_BIN = config.agentClaudeBin;
  }
  for (const name of PASSTHROUGH_ENV) {
    const value = parentEnv[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  return env;
}

/**
 * The environment a spawned agent starts with: who it is, how to reach the bus, the network's settings, and
 * the pass-through model variables from the orchestrator's own environment. Pure.
 */
export function agentEnv(
  config: DanConfig,
  spec: { agentId: string; domain: string; role: 'main' | 'domain'; runtime: RuntimeKind },
  parentEnv: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const env: Record<string, string> = {
    REDIS_URL: config.agentRedisUrl,
    ...runEnv(config, spec, parentEnv),
    DAN_HEARTBEAT_MS: String(config.heartbeatMs),
    DAN_HEARTBEAT_TTL_MS: String(config.heartbeatTtlMs),
    DAN_REAPER_MS: String(config.reaperMs),
    DAN_IDLE_TIMEOUT_MS: String(config.idleTimeoutMs),
    DAN_SHUTDOWN_GRACE_MS: String(config.shutdownGraceMs),
    DAN_AGENT_CONCURRENCY: String(config.agentConcurrency),
    DAN_TASK_ATTEMPTS: String(config.taskAttempts),
    DAN_LOG_MAXLEN: String(config.logMaxLen),
    // How tasks are worked: an agent in another mode than its orchestrator would merge (or not) behind its back.
    DAN_WORKSPACE_MODE: config.workspaceMode,
    DAN_MERGE_ATTEMPTS: String(config.mergeAttempts),
    DAN_REVIEW_ROUNDS: String(config.reviewRounds),
  };
  if (config.permissionMode) env.DAN_PERMISSION_MODE = config.permissionMode;
  // Workspace by git remote: each agent clones it (in its container's own /workspace, or beside the others here).
  if (config.gitRemote) {
    env.DAN_GIT_REMOTE = config.gitRemote;
    if (spec.runtime === 'process') env.DAN_GIT_CLONE_DIR = config.gitCloneDir;
  }
  return env;
}

/**
 * The environment of a planner run (`dan planner`): what every run gets (identity, paths, model variables),
 * the prompt and the time it has. No REDIS_URL and nothing else of the orchestrator's environment: the run
 * answers on stdout (issue 16, item 1). Pure.
 */
export function plannerEnv(
  config: DanConfig,
  spec: { agentId: string; runtime: RuntimeKind },
  parentEnv: Readonly<Record<string, string | undefined>>,
  run: { prompt: string; timeoutMs: number },
): Record<string, string> {
  return {
    ...runEnv(config, { ...spec, role: 'planner', domain: PLANNER_DOMAIN }, parentEnv),
    DAN_PLANNER_PROMPT: run.prompt,
    DAN_PLANNER_TIMEOUT_MS: String(run.timeoutMs),
  };
}

/** The `dan.domain` label and container name part of planner runs: `<network>-planner-<id>`. */
export const PLANNER_DOMAIN = 'planner';
