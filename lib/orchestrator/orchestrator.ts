import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { DanConfig } from '../config.js';
import { domainTemplateDir, listDomains } from '../domains.js';
import { REVIEW_DOMAIN, reviewRefSchema } from '../gates.js';
import { domainMcpSecrets } from '../executor/mcp-config.js';
import type { Logger } from '../log.js';
import { Bus, createRedis, MergeLock, type Redis } from '../messaging/index.js';
import { AgentRegistry, Heartbeat, LeaderLease, Reaper, type AgentRecord } from '../registry/index.js';
import type { AgentHandle, Runtime } from '../runtime/index.js';
import { MAIN_DOMAIN, isTerminal } from '../task.js';
import { ensureWorkspace, LocalGitWorkspace } from '../workspace/index.js';
import { agentEnv } from './agent-env.js';
import { splitSecrets } from '../secrets.js';
import { withAgentRole } from './redis-roles.js';
import { GoalWorker } from './goal-worker.js';
import { TaskGraph } from './task-graph.js';
import { Reconciler } from './reconciler.js';
import { releaseAgentTasks } from './release-tasks.js';
import { decideScaling, type DomainLoad, type ScalingDecision } from './scaling.js';
import { TokenPool } from './token-pool.js';

export interface OrchestratorOptions {
  config: DanConfig;
  runtime: Runtime;
  logger: Logger;
  /** The orchestrator's own environment: pass-through model variables reach the agents it spawns. */
  env: Readonly<Record<string, string | undefined>>;
  id?: string;
  /** An agent started but not registered after this long is removed as broken. @default 120000 */
  startupTimeoutMs?: number;
  /** Work arriving wakes the leader's cycle early, but never sooner than this after the last one. @default 200 */
  wakeGapMs?: number;
  /** The clock retention reads (tests simulate days with it). @default Date.now */
  now?: () => number;
}

export type OrchestratorExit = 'stopped' | 'down';

/**
 * The main orchestrator (DESIGN.md, What runs): registers itself, competes for the leader lease, and while it
 * leads runs the reaper and the scaler every `reaperMs`. Several may run; only the leader acts.
 */
export class Orchestrator {
  readonly id: string;
  private readonly log: Logger;
  private readonly lease: LeaderLease;
  /** The lease's own connection, with a command timeout: a renewal never waits on a paused Redis. */
  private readonly leaseConnection: Redis;
  private readonly reaper: Reaper;
  private readonly graph: TaskGraph;
  private readonly reconciler: Reconciler;
  private goals: GoalWorker | undefined;
  private heartbeat: Heartbeat | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = 0;
  private lastTickAt = 0;
  private wakePending = false;
  private ticking: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly firstSeen = new Map<string, number>();
  /** The subscription tokens agents are given one each, when CLAUDE_CODE_OAUTH_TOKEN holds any. */
  private readonly tokens: TokenPool | undefined;
  private resolveExit!: (reason: OrchestratorExit) => void;
  readonly exited: Promise<OrchestratorExit>;
  /** Spawns and reaps this orchestrator did, for `dan status`-like reporting and the chaos tests. */
  readonly stats = { spawned: 0, reaped: 0, ticks: 0 };

  constructor(
    private readonly options: OrchestratorOptions,
    readonly bus: Bus,
    readonly registry: AgentRegistry,
  ) {
    this.id = options.id ?? options.config.agentId ?? `orchestrator-${randomBytes(4).toString('hex')}`;
    this.log = options.logger.child({ component: 'orchestrator', orchestratorId: this.id });
    const ttlMs = options.config.heartbeatTtlMs;
    this.leaseConnection = createRedis(options.config.redisUrl, { name: `dan-orchestrator:${this.id}:lease`, commandTimeoutMs: Math.max(50, Math.floor(ttlMs / 3)) });
    this.leaseConnection.on('error', (error) => this.log.debug({ err: error }, 'lease connection error'));
    this.lease = new LeaderLease(this.leaseConnection, bus.keys, this.id, { ttlMs });
    this.reaper = new Reaper(registry, (error, agent) => this.log.error({ err: error, agentId: agent.id }, 'reaping an agent failed; the next cycle resumes it'), {
      resumeAfterMs: options.config.heartbeatTtlMs,
    });
    this.reaper.onReap((agent, resumed) => this.onReaped(agent, resumed));
    this.graph = new TaskGraph(bus, this.log, { templatesDir: options.config.templatesDir, reviewRounds: options.config.reviewRounds, taskAttempts: options.config.taskAttempts });
    this.reconciler = new Reconciler(bus, this.log, { graceMs: ttlMs, inputTimeoutMs: options.config.inputTimeoutMs });
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    // The tokens agents get come from the orchestrator's own environment, as every pass-through variable does.
    const pool = options.env.CLAUDE_CODE_OAUTH_TOKEN ? options.env.CLAUDE_CODE_OAUTH_TOKEN.split(',') : [];
    if (pool.length > 0) this.tokens = new TokenPool(bus.redis, bus.keys.tokenAgents, pool.length, options.config.agentsPerToken);
  }

  static async start(options: OrchestratorOptions): Promise<Orchestrator> {
    const bus = await Bus.connect(options.config, { name: 'dan-orchestrator' });
    bus.redis.on('error', (error) => options.logger.warn({ err: error }, 'redis connection error'));
    // Agents get their role's user, never this process's (admin) credential, wherever Redis supports it.
    options = { ...options, config: await withAgentRole(bus.redis, options.config, options.logger) };
    const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: options.config.heartbeatTtlMs });
    const orchestrator = new Orchestrator(options, bus, registry);
    await orchestrator.begin();
    return orchestrator;
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  private async begin(): Promise<void> {
    const { config } = this.options;
    await this.registerSelf();
    // The workspace this process sees is the agents' one with the process runtime and inside compose.
    // With DAN_GIT_REMOTE the remote is the repository: each agent clones it (and seeds it when it is empty).
    if (config.workspaceMode === 'git' && !config.gitRemote && (config.runtime === 'process' || config.agentRole === 'main')) {
      const workspace = new LocalGitWorkspace(config.workspace, { bin: config.gitBin, env: this.options.env });
      const lock = new MergeLock(this.bus.redis, this.bus.keys, { ttlMs: config.heartbeatTtlMs });
      await ensureWorkspace(workspace, lock, this.id, this.log).catch((error: Error) => this.log.error({ workspace: config.workspace, why: error.message }, 'the workspace cannot be used: every task will fail until it is fixed'));
    }
    this.lease.on('acquired', () => {
      this.log.info('leader: scaling and reaping');
      void this.refuseQueuedForUnknownDomains(); // logs its own failure
    });
    this.lease.on('lost', (why) => this.log.warn({ why }, 'no longer leader'));
    this.lease.on('error', (error) => this.log.warn({ err: error }, 'leader lease check failed'));
    this.lease.start();

    this.goals = new GoalWorker({ config, env: this.options.env, logger: this.log, orchestratorId: this.id, runtime: this.options.runtime }, this.bus, this.registry, this.graph);
    await this.goals.start();

    const events = this.bus.events();
    events.on('control', (message) => {
      if (message.type === 'cancel') this.goals?.cancel(message.taskId);
      else void this.stop(message.type === 'stop' ? 'down' : 'stopped'); // never rejects; `exited` reports the end
    });
    // A subtask that ends moves its graph along at once; the leader's cycle also reconciles every open graph.
    events.on('event', (event) => {
      if (event.kind !== 'task' || !isTerminal(event.status) || !this.lease.isLeader || this.stopping) return;
      void this.advanceParentOf(event.id); // logs its own failure; the next cycle retries
    });
    // A task queued (new, or back after its agent died) starts its agent now, not at the next cycle: the
    // difference is up to one reaper interval of cold start.
    events.on('event', (event) => {
      if (event.kind !== 'task' || event.status !== 'queued' || !this.lease.isLeader) return;
      if (this.knowsDomain(event.domain)) this.wake();
      else void this.refuseUnknownDomain(event.id, event.domain); // logs its own failure
    });
    await events.subscribeEvents();
    events.on('invalid', (channel, message, why, what) => this.log.warn({ channel, message: message.slice(0, 200), why }, `ignored a malformed ${what}`));
    await events.subscribeControl(this.id);
    this.schedule(0);
    this.log.info({ runtime: this.options.runtime.kind, domains: listDomains(config.templatesDir) }, 'orchestrator started');
  }

  private knowsDomain(domain: string): boolean {
    return domain === MAIN_DOMAIN || listDomains(this.options.config.templatesDir).includes(domain);
  }

  /**
   * Fails at once a task queued for a domain this orchestrator has no template for: no agent could ever be
   * started for it, and it would otherwise stay `queued` forever with nothing saying why (#17). The usual
   * cause is a domain folder added on the host while the orchestrator reads the templates of its image.
   */
  private async refuseUnknownDomain(taskId: string, domain: string): Promise<void> {
    const { templatesDir } = this.options.config;
    const why =
      `no template for domain "${domain}" where the orchestrator runs (${templatesDir}/domain-templates has ${listDomains(templatesDir).join(', ') || 'none'}): ` +
      'no agent can be started for it. With compose, mount ./agents (docker-compose.yml does) or rebuild the image (scripts/build-image.sh) ' +
      'and recreate the orchestrator (docker compose up -d --force-recreate orchestrator); then send the task again';
    try {
      const outcome = await this.bus.tasks.transition(taskId, 'failed', {
        from: ['queued'],
        agent: this.id,
        text: why,
        fields: { error: why, reason: `unknown domain ${domain}`, finishedAt: Date.now() },
      });
      if (outcome.outcome !== 'ok') return; // taken or ended meanwhile
      await this.bus.queues.remove(domain, taskId).catch((error) => this.log.warn({ err: error, taskId }, 'removing the refused job failed'));
      this.log.warn({ taskId, domain, templatesDir }, 'failed a task for a domain without a template here');
    } catch (error) {
      this.log.warn({ err: error, taskId, domain }, 'could not fail a task for an unknown domain; the next leader retries');
    }
  }

  /** On becoming leader: tasks queued while no orchestrator ran, for domains it has no template for. */
  private async refuseQueuedForUnknownDomains(): Promise<void> {
    try {
      for (const task of await this.bus.tasks.list({ status: 'queued', limit: 1000 })) {
        if (!this.knowsDomain(task.domain)) await this.refuseUnknownDomain(task.id, task.domain);
      }
    } catch (error) {
      this.log.warn({ err: error }, 'looking for queued tasks of unknown domains failed');
    }
  }

  /** Registers this orchestrator and heartbeats; after being reaped (a long pause) it registers again. */
  private async registerSelf(): Promise<void> {
    const { config } = this.options;
    await this.registry.register({
      id: this.id,
      role: 'main',
      domain: 'main',
      runtime: config.runtime,
      ref: `pid:${process.pid}`,
      host: os.hostname(),
      pid: process.pid,
    });
    this.heartbeat?.stop();
    this.heartbeat = new Heartbeat(this.registry, this.id, { intervalMs: config.heartbeatMs, healthFile: config.healthFile });
    this.heartbeat.on('error', (error) => this.log.warn({ err: error }, 'heartbeat failed; retrying'));
    this.heartbeat.on('reaped', () => {
      this.log.error('this orchestrator was reaped (its heartbeat lapsed); registering again');
      if (!this.stopping) void this.registerSelf().catch((error) => this.log.error({ err: error }, 'registering again failed'));
    });
    this.heartbeat.start();
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastTickAt = Date.now();
      this.wakePending = false;
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule(this.wakePending ? this.wakeDelay() : this.options.config.reaperMs);
      });
    }, delayMs);
  }

  /** Runs the next cycle soon, coalescing bursts: at most one cycle per `wakeGapMs`. */
  private wake(): void {
    if (this.stopping) return;
    if (this.ticking) {
      this.wakePending = true; // the running cycle may have read the queues before this work arrived
      return;
    }
    const delay = this.wakeDelay();
    if (Date.now() + delay < this.timerDueAt) this.schedule(delay);
  }

  private wakeDelay(): number {
    return Math.max(0, this.lastTickAt + (this.options.wakeGapMs ?? 200) - Date.now());
  }

  /** One cycle of the leader's work; a follower only checks the lease. */
  async tick(): Promise<void> {
    this.stats.ticks += 1;
    if (!(await this.lease.tryAcquire())) return;
    try {
      // DAN_MAX_RUNNING and DAN_DAILY_BUDGET_USD as this leader has them: every agent's admission reads them.
      await this.bus.gate.publishLimits({ maxRunning: this.options.config.maxRunning, dailyBudgetUsd: this.options.config.dailyBudgetUsd });
      await this.reaper.reapOnce();
      const handles = await this.options.runtime.list();
      const registered = await this.registry.list();
      await this.collect(handles, registered);
      await this.scale(handles, registered);
      for (const parentId of await this.bus.tasks.openGraphs()) await this.graph.advance(parentId, { reconcile: true });
      await this.reconciler.reconcileOnce();
      await this.expireEnded();
    } catch (error) {
      this.log.error({ err: error }, 'orchestrator cycle failed; retrying next cycle');
    }
  }

  /** Retention (DAN_RETENTION_DAYS): ended tasks older than the retention period go, with their logs. */
  private async expireEnded(): Promise<void> {
    const { retentionMs } = this.options.config;
    if (retentionMs <= 0) return;
    const removed = await this.bus.tasks.expireEnded((this.options.now ?? Date.now)() - retentionMs);
    if (removed > 0) this.log.info({ removed }, 'retention: removed ended tasks and their logs');
  }

  private async advanceParentOf(taskId: string): Promise<void> {
    try {
      const [parent, review] = await this.bus.redis.hmget(this.bus.keys.task(taskId), 'parent', 'review');
      // A goal's review task moves the goal's gates along, as a subtask moves its graph.
      const goal = review ? reviewedGoal(review) : undefined;
      if (parent) await this.graph.advance(parent);
      else if (goal) await this.graph.advance(goal);
    } catch (error) {
      this.log.warn({ err: error, taskId }, 'advancing a task graph failed; the next cycle retries');
    }
  }

  /**
   * Reaper handler: keep the dead agent's last lines, remove its container or process, free its tasks. Idempotent:
   * a reap that did not finish (this orchestrator or another died, Redis refused a write) is run again, `resumed`.
   */
  private async onReaped(agent: AgentRecord, resumed: boolean): Promise<void> {
    if (!resumed) this.stats.reaped += 1;
    const log = this.log.child({ agentId: agent.id, domain: agent.domain });
    const lines = await this.options.runtime.logs(agent.id, { tail: 50 }).catch(() => '');
    if (lines) await this.registry.keepLogs(agent.id, lines);
    await this.options.runtime.remove(agent.id).catch((error) => log.warn({ err: error }, 'removing the dead agent failed'));
    const released = await releaseAgentTasks(this.bus, agent, 'died (heartbeat expired)', log);
    log.warn({ tasks: released }, resumed ? 'finished releasing a reaped agent' : 'reaped a dead agent');
  }

  /**
   * Removes what is left of agents that are gone: exited containers or processes of agents no longer
   * registered, and agents that never registered within the startup timeout.
   */
  private async collect(handles: readonly AgentHandle[], registered: readonly AgentRecord[]): Promise<void> {
    const live = new Set(registered.map((a) => a.id));
    const now = Date.now();
    for (const handle of handles) {
      if (live.has(handle.agentId) || (handle.role === 'planner' && handle.running)) {
        // A planner run never registers: it ends by its own timeout, and its orchestrator removes it. One that
        // exited (its orchestrator died before removing it) goes after the startup timeout, below.
        this.firstSeen.delete(handle.agentId);
        continue;
      }
      if (handle.role === 'planner') {
        const seen = this.firstSeen.get(handle.agentId) ?? now;
        this.firstSeen.set(handle.agentId, seen);
        if (now - seen > (this.options.startupTimeoutMs ?? 120_000)) {
          await this.options.runtime.remove(handle.agentId).catch((error) => this.log.warn({ err: error, agentId: handle.agentId }, 'cleanup failed'));
          this.firstSeen.delete(handle.agentId);
        }
        continue;
      }
      if (!handle.running) {
        this.firstSeen.delete(handle.agentId);
        await this.options.runtime.remove(handle.agentId).catch((error) => this.log.warn({ err: error, agentId: handle.agentId }, 'cleanup failed'));
        continue;
      }
      const seen = this.firstSeen.get(handle.agentId) ?? now;
      this.firstSeen.set(handle.agentId, seen);
      if (now - seen > (this.options.startupTimeoutMs ?? 120_000)) {
        this.log.error({ agentId: handle.agentId, name: handle.name }, 'agent never registered; removing it');
        const lines = await this.options.runtime.logs(handle.agentId, { tail: 20 }).catch(() => '');
        if (lines) this.log.error({ agentId: handle.agentId, lastLines: lines }, 'last lines of the agent that never registered');
        await this.options.runtime.remove(handle.agentId).catch(() => {});
        this.firstSeen.delete(handle.agentId);
      }
    }
  }

  /** Computes each domain's load and spawns the missing agents. */
  async scale(handles?: readonly AgentHandle[], registered?: readonly AgentRecord[]): Promise<ScalingDecision[]> {
    const { config, runtime } = this.options;
    handles ??= await runtime.list();
    registered ??= await this.registry.list();
    const liveIds = new Set(registered.map((a) => a.id));
    const loads: DomainLoad[] = [];
    for (const domain of listDomains(config.templatesDir)) {
      const counts = await this.bus.queues.counts(domain);
      loads.push({
        domain,
        waiting: counts.waiting,
        active: counts.active,
        live: registered.filter((a) => a.role === 'domain' && a.domain === domain && a.alive).length,
        starting: handles.filter((h) => h.role === 'domain' && h.domain === domain && h.running && !liveIds.has(h.agentId)).length,
      });
    }
    const decisions = decideScaling(loads, {
      tasksPerAgent: config.agentConcurrency,
      minPerDomain: config.minAgentsPerDomain,
      maxPerDomain: config.maxAgentsPerDomain,
      maxAgents: config.maxAgents,
      waitedOn: [REVIEW_DOMAIN],
    });
    // Agents that hold a token: alive, or started and not registered yet.
    const present = new Set([...registered.filter((a) => a.alive).map((a) => a.id), ...handles.filter((h) => h.running).map((h) => h.agentId)]);
    for (const decision of decisions) {
      for (let i = 0; i < decision.spawn; i++) {
        // A spawn can take seconds (an image, a slow engine): a leader whose lease lapsed meanwhile stops here.
        if (!this.lease.isLeader) {
          this.log.warn({ domain: decision.domain }, 'no longer leader: spawning nothing more');
          return decisions;
        }
        if ((await this.spawn(decision.domain, present)) === 'no token') return decisions;
      }
    }
    return decisions;
  }

  /**
   * Starts one agent of a domain. With a token pool, the agent is first given the least used token (recorded
   * by index in Redis, the token itself only in its environment); when every token has its
   * DAN_AGENTS_PER_TOKEN agents, nothing is started.
   */
  private async spawn(domain: string, present: Set<string>): Promise<'spawned' | 'failed' | 'no token'> {
    const agentId = `${domain}-${randomBytes(4).toString('hex')}`;
    const { runtime, config, env } = this.options;
    const agentEnvironment = agentEnv(config, { agentId, domain, role: 'domain', runtime: runtime.kind }, env);
    let tokenIndex: number | undefined;
    if (this.tokens) {
      // A paused token (its usage window used up) gets no new agent: it could start no CLI before the reset.
      const paused = new Set((await this.bus.gate.pauses()).filter((p) => p.scope.startsWith('token:')).map((p) => Number(p.scope.slice('token:'.length))));
      tokenIndex = await this.tokens.assign(agentId, present, paused);
      if (tokenIndex === undefined) {
        this.log.info({ domain, tokens: this.tokens.size, perToken: config.agentsPerToken }, 'every subscription token has its DAN_AGENTS_PER_TOKEN agents: starting no more');
        return 'no token';
      }
      present.add(agentId);
      agentEnvironment.CLAUDE_CODE_OAUTH_TOKEN = (env.CLAUDE_CODE_OAUTH_TOKEN ?? '').split(',')[tokenIndex]!;
      agentEnvironment.DAN_TOKEN_INDEX = String(tokenIndex);
    }
    try {
      // The Redis URL and the model's keys (the pool's token included) go on the agent's stdin, not into its
      // environment (lib/secrets.ts).
      // So do the variables the domain's .mcp.json references.
      const { env: visible, secrets } = splitSecrets(agentEnvironment);
      Object.assign(secrets, await domainMcpSecrets(domainTemplateDir(config.templatesDir, domain), env));
      const handle = await runtime.spawn({ agentId, role: 'domain', domain, env: visible, secrets });
      this.stats.spawned += 1;
      this.firstSeen.set(agentId, Date.now());
      this.log.info({ agentId, domain, where: handle.name, tokenIndex }, 'spawned an agent');
      return 'spawned';
    } catch (error) {
      this.log.error({ err: error, domain }, 'spawning an agent failed; retrying next cycle');
      if (tokenIndex !== undefined) {
        present.delete(agentId);
        await this.tokens!.release(agentId).catch(() => {});
      }
      return 'failed';
    }
  }

  /**
   * Stops the loops and hands back the lease. With `down`, also stops every agent of the network this
   * runtime can reach. Safe to call twice. Does not reject: each step handles its own failure and the rest
   * still run, so `exited` always resolves and callers (a signal, a control message) may leave it un-awaited.
   */
  stop(reason: OrchestratorExit = 'stopped'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: OrchestratorExit): Promise<void> {
    this.log.info({ reason }, 'orchestrator stopping');
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await this.goals?.close();
    await this.lease.stop();
    this.heartbeat?.stop();
    // Docker unreachable must not end the shutdown here: we would stay registered, keep the bus open, never
    // resolve `exited`, and the un-awaited stop() would crash the process with an unhandled rejection.
    if (reason === 'down') {
      await stopAgents(this.options.runtime, this.log).catch((error) => this.log.error({ err: error }, 'stopping the agents failed'));
    }
    await this.registry.deregister(this.id, 'main').catch(() => {});
    this.leaseConnection.disconnect();
    await this.bus.close();
    this.resolveExit(reason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Stops every agent a runtime can reach (SIGTERM, grace, then removal), in parallel. */
export async function stopAgents(runtime: Runtime, log: Logger, timeoutMs = 15_000): Promise<number> {
  const handles = await runtime.list();
  await Promise.all(
    handles.map((h) => runtime.stop(h.agentId, { timeoutMs }).catch((error) => log.warn({ err: error, agentId: h.agentId }, 'stopping an agent failed'))),
  );
  return handles.length;
}

/** The goal a review task reviews (its `review` field, JSON), when it reviews a goal. */
function reviewedGoal(json: string): string | undefined {
  try {
    const parsed = reviewRefSchema.safeParse(JSON.parse(json));
    return parsed.success && parsed.data.goal ? parsed.data.of : undefined;
  } catch {
    return undefined;
  }
}
