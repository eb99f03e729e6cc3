/**
 * Every Redis key name of a network, in one place (DESIGN.md, Redis: keys and messages).
 * `prefix` is `<network>:`.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /** BullMQ's own prefix: queues are `<prefix>q:<domain>`. */
  get queuePrefix(): string {
    return `${this.prefix}q`;
  }
  task(id: string): string {
    return `${this.prefix}task:${id}`;
  }
  taskLog(id: string): string {
    return `${this.prefix}task:${id}:log`;
  }
  /** A task's saved Claude Code session (gzipped JSON of the CLI's transcript files), removed with the task. */
  taskSession(id: string): string {
    return `${this.prefix}task:${id}:session`;
  }
  /** Follow-ups (`--continue`) sent while the task was still open, queued when it ends. */
  taskFollowers(id: string): string {
    return `${this.prefix}task:${id}:followers`;
  }
  get tasks(): string {
    return `${this.prefix}tasks`;
  }
  /** Parent tasks whose subtask graph is still open, for a new leader to pick up. */
  get graphs(): string {
    return `${this.prefix}graphs`;
  }
  /**
   * Top-level tasks (no parent) that ended, scored by when: what retention expires (DAN_RETENTION_DAYS). A
   * subtask is not listed: it goes with its goal.
   */
  get ended(): string {
    return `${this.prefix}tasks:ended`;
  }
  /** Ids of tasks not yet ended (waiting, queued, active): what the reconciler compares with queues and agents. */
  get open(): string {
    return `${this.prefix}tasks:open`;
  }
  get events(): string {
    return `${this.prefix}events`;
  }
  get agents(): string {
    return `${this.prefix}agents`;
  }
  /**
   * Agents reaped whose work is not yet released (tasks handed back, container removed): the reaper's durable
   * to-do list, drained idempotently every cycle, so a reaper that dies mid-way leaves nothing behind.
   */
  get toRelease(): string {
    return `${this.prefix}agents:release`;
  }
  agent(id: string): string {
    return `${this.prefix}agent:${id}`;
  }
  heartbeat(id: string): string {
    return `${this.prefix}agent:${id}:hb`;
  }
  control(agentId: string): string {
    return `${this.prefix}control:${agentId}`;
  }
  /** This installation's id (made once, `SET NX`): the `dan.installation` label of its containers. */
  get installation(): string {
    return `${this.prefix}installation`;
  }
  get leader(): string {
    return `${this.prefix}leader`;
  }
  /** Subscription token pool: agent id → the index of the token it was given (never a token itself). */
  get tokenAgents(): string {
    return `${this.prefix}tokens:agents`;
  }
  /**
   * Pauses after a usage or rate limit (issue 12): scope (`token:<index>`, `network`) → JSON `{ untilMs, kind,
   * failures, message }`. An agent starts no CLI while its token's or the network's pause lasts.
   */
  get pauses(): string {
    return `${this.prefix}pauses`;
  }
  /** CLIs running now (DAN_MAX_RUNNING): `<agent>|<task>` → since (ms). A lease lives as long as its agent's heartbeat. */
  get running(): string {
    return `${this.prefix}running`;
  }
  /** Network-wide limits the leader publishes from its configuration: `maxRunning`, `dailyBudgetUsd`. */
  get limits(): string {
    return `${this.prefix}limits`;
  }
  /** What the network's runs cost on one UTC day (`YYYY-MM-DD`): domain → dollars. */
  spend(day: string): string {
    return `${this.prefix}spend:${day}`;
  }
  /** The merge lock: one merge into the integration branch at a time (holder and token). */
  get merge(): string {
    return `${this.prefix}merge`;
  }
  /** The merge in flight (JSON), for a successor to finish or undo. */
  get mergePending(): string {
    return `${this.prefix}merge:pending`;
  }
  /** The merge train: merge requests (JSON) waiting for whoever holds the merge lock next. */
  get mergeQueue(): string {
    return `${this.prefix}merge:queue`;
  }
  /** Set while a lock holder is merging request `id`: its agent may no longer take it off the train. */
  mergeTaken(id: string): string {
    return `${this.prefix}merge:taken:${id}`;
  }
  /** The answer to merge request `id` (JSON), written by the lock holder that merged it. */
  mergeAnswer(id: string): string {
    return `${this.prefix}merge:answer:${id}`;
  }
}
