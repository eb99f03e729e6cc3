import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WaitingError, type Job, type Worker } from 'bullmq';
import { z } from 'zod';
import type { DanConfig } from '../config.js';
import { assertKnownDomain, domainTemplateDir } from '../domains.js';
import { CorruptRecordError } from '../errors.js';
import { buildClaudeEnv, prepareConfigDir, runClaude, type ExecutorResult } from '../executor/index.js';
import type { Logger } from '../log.js';
import { Bus, createRedis, type Redis, type TaskJobData } from '../messaging/index.js';
import { AgentRegistry, Heartbeat } from '../registry/index.js';
import { taskIdSchema, type ControlMessage, type TaskRecord } from '../task.js';
import { LogWriter } from './log-writer.js';
import { TaskWorker, taskLeaseOptions } from './task-worker.js';
import { buildPrompt, type DependencyResult } from './prompt.js';

export type AgentExit = 'idle' | 'stopped' | 'reaped' | 'drained';

export interface DomainAgentOptions {
  config: DanConfig;
  domain: string;
  agentId: string;
  /** The environment the CLI's is built from (pass-through ANTHROPIC_* variables, PATH, HOME). */
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
  /** Where this agent runs, for `dan agents`. */
  runtime?: string;
  ref?: string;
}

interface Running {
  controller: AbortController;
  attempt: number;
  /** The reason a user gave for cancelling the task (its control message), kept for the record. */
  cancelReason?: string;
}

const jobDataSchema = z.object({ taskId: taskIdSchema });

/** Why a task's CLI run was aborted by the agent rather than by the task itself. */
type AbortReason = 'cancelled' | 'shutdown' | 'reaped';

/**
 * A domain agent (DESIGN.md, What runs): registers, heartbeats, takes tasks from its domain's queue, runs the
 * Claude Code CLI for each, streams every event to the task's log, and records the result, fenced on its id
 * and the attempt. Exits after an idle timeout, on `stop()`, or when it finds itself reaped.
 */
export class DomainAgent {
  private worker: Worker<TaskJobData> | undefined;
  private workerConnection: Redis | undefined;
  private heartbeat: Heartbeat | undefined;
  private readonly running = new Map<string, Running>();
  private idleTimer: NodeJS.Timeout | undefined;
  private tasksDone = 0;
  private configDir = '';
  private exitReason: AgentExit | undefined;
  private stopping: Promise<void> | undefined;
  private resolveExit!: (reason: AgentExit) => void;
  readonly exited: Promise<AgentExit>;
  private readonly log: Logger;

  constructor(
    private readonly options: DomainAgentOptions,
    private readonly bus: Bus,
    private readonly registry: AgentRegistry,
  ) {
    this.log = options.logger.child({ component: 'agent', agentId: options.agentId, domain: options.domain });
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get id(): string {
    return this.options.agentId;
  }

  /** Connects, registers, prepares the CLI config dir and starts taking tasks. */
  static async start(options: DomainAgentOptions): Promise<DomainAgent> {
    const { config, domain } = options;
    // `main` tasks are planned by the orchestrator, never run by a domain agent.
    assertKnownDomain(config.templatesDir, domain, { allowMain: false });
    const bus = await Bus.connect(config, { name: `dan-agent:${options.agentId}` });
    const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
    const agent = new DomainAgent(options, bus, registry);
    try {
      await agent.begin(domainTemplateDir(config.templatesDir, domain));
    } catch (error) {
      await bus.close();
      throw error;
    }
    return agent;
  }

  private async begin(templateDir: string): Promise<void> {
    const { config, agentId, domain } = this.options;
    this.configDir = path.join(os.tmpdir(), 'dan', config.network, agentId);
    const prepared = await prepareConfigDir(templateDir, this.configDir);
    await mkdir(config.workspace, { recursive: true });
    this.log.info({ workers: prepared.workers.map((w) => w.name), allowedTools: prepared.allow.length, workspace: config.workspace }, 'agent starting');

    await this.registry.register({
      id: agentId,
      role: domain === 'main' ? 'main' : 'domain',
      domain,
      runtime: this.options.runtime ?? config.runtime,
      ref: this.options.ref ?? `pid:${process.pid}`,
      host: os.hostname(),
      pid: process.pid,
    });
    this.heartbeat = new Heartbeat(this.registry, agentId, { intervalMs: config.heartbeatMs, healthFile: config.healthFile });
    this.heartbeat.on('reaped', () => void this.onReaped()); // ends in stop(), which never rejects
    this.heartbeat.on('error', (error) => this.log.warn({ err: error }, 'heartbeat failed; retrying'));
    this.heartbeat.start();

    const events = this.bus.events();
    events.on('control', (message) => this.onControl(message));
    events.on('invalid', (channel, message, why, what) => this.log.warn({ channel, message: message.slice(0, 200), why }, `ignored a malformed ${what}`));
    await events.subscribeControl(agentId);

    const connection = createRedis(config.redisUrl, { name: `dan-agent:${agentId}:worker` });
    this.workerConnection = connection;
    connection.on('error', (error) => this.log.warn({ err: error }, 'redis connection error'));
    this.worker = new TaskWorker<TaskJobData>(domain, (job, token) => this.process(job, token), {
      connection,
      prefix: this.bus.keys.queuePrefix,
      concurrency: config.agentConcurrency,
      ...taskLeaseOptions(config),
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    this.worker.on('error', (error) => this.log.warn({ err: error }, 'queue worker error'));
    this.worker.on('failed', (job, error) => {
      if (!(error instanceof WaitingError)) this.log.debug({ jobId: job?.id, err: error }, 'job ended with an error');
    });
    this.armIdleTimer();
    this.log.info('agent ready');
  }

  /** Runs one job: claim the task, run the CLI, record the result. Never lets a task error escape as a crash. */
  private async process(job: Job<TaskJobData>, token: string | undefined): Promise<void> {
    this.clearIdleTimer();
    try {
      await this.processTask(job, token);
    } finally {
      if (this.running.size === 0) this.armIdleTimer();
    }
  }

  private async processTask(job: Job<TaskJobData>, token: string | undefined): Promise<void> {
    const { agentId } = this.options;
    const data = jobDataSchema.safeParse(job.data);
    if (!data.success) {
      this.log.error({ jobId: job.id, data: JSON.stringify(job.data)?.slice(0, 200) }, 'dropped a queue job with malformed data');
      return;
    }
    const { taskId } = data.data;
    if (this.stopping || this.heartbeat?.isReaped) {
      await this.giveBack(job, token); // never start work while leaving
      return;
    }
    // Name the task in the agent record first, so a reaper that finds this agent dead knows what it held.
    await this.registry.setState(agentId, 'busy', [...this.running.keys(), taskId], this.tasksDone);
    const claim = await this.bus.tasks.transition(taskId, 'active', {
      mode: 'claim',
      agent: agentId,
      fields: { agent: agentId, startedAt: Date.now() },
      del: ['result', 'error', 'finishedAt'],
      text: `taken by ${agentId}`,
    });
    if (claim.outcome !== 'ok') {
      this.log.info({ taskId, outcome: claim.outcome, from: claim.from }, 'task not taken');
      await this.registry.setState(agentId, this.running.size > 0 ? 'busy' : 'idle', [...this.running.keys()], this.tasksDone);
      return;
    }
    const attempt = claim.attempts;
    const log = this.log.child({ taskId, attempt });
    const writer = new LogWriter(this.bus.logs, taskId, log);
    const running: Running = { controller: new AbortController(), attempt };
    this.running.set(taskId, running);
    try {
      let record: TaskRecord;
      try {
        record = await this.bus.tasks.get(taskId);
      } catch (error) {
        if (!(error instanceof CorruptRecordError)) throw error;
        await this.finish(taskId, attempt, { status: 'failed', error: `the task record is malformed: ${error.message}` }, writer);
        return;
      }
      const prompt = buildPrompt(record, ...(await this.lineage(record)));
      writer.push({ type: 'info', text: `attempt ${attempt} of ${record.maxAttempts} on ${agentId}; prompt ${prompt.length} chars` });
      const result = await runClaude({
        claudeBin: this.options.config.claudeBin,
        prompt,
        cwd: this.options.config.workspace,
        env: buildClaudeEnv(this.options.env, this.configDir, agentId),
        model: this.options.config.model,
        permissionMode: this.options.config.permissionMode,
        timeoutMs: record.timeoutS * 1000,
        signal: running.controller.signal,
        onEntry: (entry) => writer.push({ ...entry, agent: agentId }),
        logger: log,
      });
      await writer.flush();
      const reason = running.controller.signal.reason as AbortReason | undefined;
      if (reason === 'reaped') {
        log.warn('this agent was reaped: the task belongs to another agent now; no result recorded');
        await this.giveBack(job, token);
        return;
      }
      if (reason === 'shutdown') {
        await this.requeue(taskId, attempt, `agent ${agentId} stopped before the task finished`);
        await this.giveBack(job, token);
        return;
      }
      // A user's cancel: record their reason, not the abort signal's internal one.
      await this.finish(taskId, attempt, reason === 'cancelled' ? { ...result, error: running.cancelReason ?? result.error } : result, writer);
    } finally {
      this.running.delete(taskId);
      this.tasksDone += 1;
      await this.registry
        .setState(agentId, this.running.size > 0 ? 'busy' : this.stopping ? 'draining' : 'idle', [...this.running.keys()], this.tasksDone)
        .catch((error) => log.warn({ err: error }, 'could not update the agent record'));
    }
  }

  /** The parent goal and the results of the task's dependencies, for a subtask's prompt. */
  private async lineage(record: TaskRecord): Promise<[TaskRecord | undefined, DependencyResult[]]> {
    if (!record.parent && record.dependsOn.length === 0) return [undefined, []];
    const parent = record.parent ? await this.bus.tasks.find(record.parent) : undefined;
    const deps = await this.bus.tasks.getMany(record.dependsOn);
    return [parent, deps.map((d) => ({ key: d.key, domain: d.domain, description: d.description, result: d.result ?? '(no result text)' }))];
  }

  /** Records the outcome, fenced: only if the record still names this agent and this attempt. */
  private async finish(
    taskId: string,
    attempt: number,
    result: Pick<ExecutorResult, 'status'> & Partial<ExecutorResult>,
    writer: LogWriter,
  ): Promise<void> {
    await writer.flush();
    const { agentId } = this.options;
    const outcome = await this.bus.tasks.transition(taskId, result.status, {
      agent: agentId,
      expectAgent: agentId,
      expectAttempts: attempt,
      text: result.status === 'completed' ? `completed by ${agentId}` : `${result.status}: ${result.error ?? 'no message'}`,
      fields: {
        finishedAt: Date.now(),
        result: result.result,
        error: result.status === 'completed' ? undefined : result.error,
        costUsd: result.costUsd,
        turns: result.turns,
        usage: result.usage === undefined ? undefined : JSON.stringify(result.usage),
        reason: result.status === 'cancelled' ? result.error : undefined,
      },
    });
    if (outcome.outcome === 'fenced' || outcome.outcome === 'illegal') {
      this.log.warn({ taskId, attempt, outcome: outcome.outcome, now: outcome.from }, 'result discarded: the task was handed to another agent or ended meanwhile');
    }
  }

  private async requeue(taskId: string, attempt: number, why: string): Promise<void> {
    const { agentId } = this.options;
    await this.bus.tasks.transition(taskId, 'queued', {
      agent: agentId,
      expectAgent: agentId,
      expectAttempts: attempt,
      text: `${why}; back on the queue`,
      fields: { reason: why },
    });
  }

  /** Hands a job back to the queue at once (it is ours only while we hold its lock). */
  private async giveBack(job: Job<TaskJobData>, token: string | undefined): Promise<never> {
    try {
      await job.moveToWait(token);
    } catch (error) {
      // We no longer hold the lock: the stalled-job check or another agent has the job already.
      this.log.debug({ jobId: job.id, err: error }, 'job not handed back: lock already gone');
    }
    throw new WaitingError();
  }

  private onControl(message: ControlMessage): void {
    switch (message.type) {
      case 'cancel': {
        const running = this.running.get(message.taskId);
        if (running) {
          this.log.info({ taskId: message.taskId, reason: message.reason }, 'cancelling task on request');
          running.cancelReason = message.reason;
          running.controller.abort('cancelled');
        }
        break;
      }
      // stop() never rejects; `exited` reports the end.
      case 'drain':
        void this.stop('drained');
        break;
      case 'stop':
        void this.stop('stopped');
        break;
    }
  }

  private async onReaped(): Promise<void> {
    this.log.error('this agent was reaped (its heartbeat lapsed): abandoning work without recording results and exiting');
    for (const running of this.running.values()) running.controller.abort('reaped');
    await this.stop('reaped', { graceMs: 0 });
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    if (this.stopping) return;
    this.idleTimer = setTimeout(() => {
      if (this.running.size === 0) void this.stop('idle'); // never rejects; `exited` reports the end
    }, this.options.config.idleTimeoutMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /**
   * Stops taking work, lets running tasks finish within the grace period, then hands the unfinished ones back
   * to the queue, deregisters and resolves `exited`. Safe to call twice. Does not reject: each step handles its
   * own failure and the rest still run, so signals, control messages and timers may leave it un-awaited.
   */
  stop(reason: AgentExit = 'stopped', options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(reason, options.graceMs ?? this.options.config.shutdownGraceMs);
    return this.stopping;
  }

  private async shutdown(reason: AgentExit, graceMs: number): Promise<void> {
    const { agentId, domain } = this.options;
    this.exitReason = reason;
    this.clearIdleTimer();
    this.log.info({ reason, running: [...this.running.keys()] }, 'agent stopping');
    const graceTimer =
      this.running.size > 0
        ? setTimeout(() => {
            for (const running of this.running.values()) running.controller.abort(reason === 'reaped' ? 'reaped' : 'shutdown');
          }, graceMs)
        : undefined;
    try {
      await this.worker?.close();
    } catch (error) {
      this.log.warn({ err: error }, 'closing the queue worker failed');
    } finally {
      if (graceTimer) clearTimeout(graceTimer);
      // BullMQ never closes a connection it was handed; an open one keeps the process alive after `exited`.
      this.workerConnection?.disconnect();
    }
    this.heartbeat?.stop();
    if (reason !== 'reaped') await this.registry.deregister(agentId, domain).catch((error) => this.log.warn({ err: error }, 'deregister failed'));
    await this.bus.close();
    await rm(this.configDir, { recursive: true, force: true }).catch(() => {});
    this.log.info({ reason, tasksDone: this.tasksDone }, 'agent stopped');
    this.resolveExit(this.exitReason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('stopped', { graceMs: 0 });
  }
}
