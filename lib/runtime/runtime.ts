/**
 * Where agents run. One small interface (DESIGN.md, Runtimes) with a docker, a swarm and a process adapter.
 * Every method acts only on agents of this runtime's network.
 */
export type RuntimeKind = 'docker' | 'process' | 'swarm';

/**
 * What a runtime starts: `main` an orchestrator, `domain` a domain agent, `planner` one sandboxed planning run
 * of a goal (`dan planner`: no Redis, read-only workspace, prints its events and answer on stdout, then exits).
 */
export type AgentRole = 'main' | 'domain' | 'planner';

/** What to start: an agent process of a role and domain, with its environment. */
export interface AgentSpec {
  agentId: string;
  role: AgentRole;
  /** `main` for an orchestrator. */
  domain: string;
  /** Environment of the agent process (AGENT_ID, AGENT_ROLE, DOMAIN_TYPE, settings): what anyone may see. */
  env: Record<string, string>;
  /**
   * The agent's secrets (REDIS_URL, the model's keys: SECRET_ENV): written on its stdin at start, with
   * DAN_SECRETS=stdin in its environment (swarm: a Swarm secret file, DAN_SECRETS=file:…), never in the
   * environment itself (lib/secrets.ts).
   */
  secrets?: Record<string, string>;
}

/** A started agent as the runtime knows it. */
export interface AgentHandle {
  agentId: string;
  role: AgentRole;
  domain: string;
  runtime: RuntimeKind;
  /** Container name, or `pid:<n>` for the process runtime. */
  name: string;
  /** Container id or process id. */
  ref: string;
  /** Whether the container or process is still running. */
  running: boolean;
}

export interface StopOptions {
  /** How long to wait after SIGTERM before SIGKILL. @default 10000 */
  timeoutMs?: number;
}

export interface Runtime {
  readonly kind: RuntimeKind;
  /** Starts an agent. */
  spawn(spec: AgentSpec): Promise<AgentHandle>;
  /** Stops (SIGTERM, then SIGKILL after the timeout) and removes an agent of this network; unknown ids are a no-op. */
  stop(agentId: string, options?: StopOptions): Promise<void>;
  /** Kills an agent at once and removes it (the reaper's path for agents already dead). */
  remove(agentId: string): Promise<void>;
  /** Agents of this network only, running or exited but not yet removed. */
  list(): Promise<AgentHandle[]>;
  /**
   * Follows what an agent writes on stdout, line by line from its start, until it exits; resolves with its exit
   * code (null when killed by a signal or unknown), or null at once for an unknown agent. How the orchestrator
   * reads a planner run's answer.
   */
  output(agentId: string, onLine: (line: string) => void): Promise<number | null>;
  /** The last lines an agent wrote (stdout and stderr). */
  logs(agentId: string, options?: { tail?: number }): Promise<string>;
  /** Releases the runtime's own resources; does not stop agents. Safe to call twice. */
  close(): Promise<void>;
}

/** Labels every container of a network carries. */
export const LABELS = {
  network: 'dan.network',
  /** The installation's id in Redis: two installations with the same network name on one host stay apart. */
  installation: 'dan.installation',
  role: 'dan.role',
  domain: 'dan.domain',
  agentId: 'dan.agent-id',
} as const;
