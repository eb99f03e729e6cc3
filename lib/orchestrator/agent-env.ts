import { PASSTHROUGH_ENV, type DanConfig } from '../config.js';
import type { RuntimeKind } from '../runtime/index.js';

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
    AGENT_ID: spec.agentId,
    AGENT_ROLE: spec.role,
    DOMAIN_TYPE: spec.domain,
    DAN_NETWORK: config.network,
    DAN_RUNTIME: spec.runtime,
    DAN_HEARTBEAT_MS: String(config.heartbeatMs),
    DAN_HEARTBEAT_TTL_MS: String(config.heartbeatTtlMs),
    DAN_REAPER_MS: String(config.reaperMs),
    DAN_IDLE_TIMEOUT_MS: String(config.idleTimeoutMs),
    DAN_SHUTDOWN_GRACE_MS: String(config.shutdownGraceMs),
    DAN_AGENT_CONCURRENCY: String(config.agentConcurrency),
    DAN_TASK_ATTEMPTS: String(config.taskAttempts),
    DAN_LOG_MAXLEN: String(config.logMaxLen),
    DAN_LOG_LEVEL: config.logLevel,
  };
  if (config.model) env.DAN_MODEL = config.model;
  if (config.permissionMode) env.DAN_PERMISSION_MODE = config.permissionMode;
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
