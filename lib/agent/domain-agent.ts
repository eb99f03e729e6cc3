import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DelayedError, WaitingError, type Job, type Worker } from 'bullmq';
import { z } from 'zod';
import { packageRoot, type DanConfig } from '../config.js';
import { readDomainMcp } from '../executor/mcp-config.js';
import { assertKnownDomain, domainTemplateDir } from '../domains.js';
import { prepareConfigDir, removeConfigDir } from '../executor/index.js';
import type { Logger } from '../log.js';
import { Bus, createRedis, MergeLock, nextUtcDay, type Admission, type Redis, type TaskJobData } from '../messaging/index.js';
import { AgentRegistry, Heartbeat } from '../registry/index.js';
import { taskIdSchema, type ControlMessage } from '../task.js';
import { ensureWorkspace, LocalGitWorkspace, RemoteGitWorkspace, type GitWorkspace } from '../workspace/index.js';
import { admissionText, admitRun } from './admit-run.js';
import { claimTask } from './claim-task.js';
import { LogWriter } from './log-writer.js';
import { recordResult } from './record-result.js';
import { runPipeline } from './task-pipeline.js';
import type { AgentContext, TaskRun } from './task-run.js';
import { TaskWorker, taskLeaseOptions } from './task-worker.js';

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

const jobDataSchema = z.object({ taskId: taskIdSchema });

/**
 * How to start this package's `dan` (for `dan mcp`): the built entry, or from source through tsx when there is no
 * build (a checkout running its tests).
 */
function danCommand(): string[] {
  const built = path.join(packageRoot(), 'dist', 'bin', 'dan.js');
  if (existsSync(built)) return [process.execPath, built];
  return [process.execPath, '--import', import.meta.resolve('tsx'), path.join(packageRoot(), 'bin', 'dan.ts')];
}

/**
 * A domain agent (DESIGN.md, What runs): registers, heartbeats, takes tasks from its domain's queue, runs the
 * Claude Code CLI for each, streams every event to the task's log, and records the result, fenced on its id
 * and the attempt. Exits after an idle timeout, on `stop()`, or when it finds itself reaped.
 */
export class DomainAgent {
  private worker: Worker<TaskJobData> | undefined;
  private workerConnection: Redis | undefined;
  private heartbeat: Heartbeat | undefined;
  private readonly running = new Map<string, TaskRun>();
  private ctx: AgentContext | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private tasksDone = 0;
  /** Until when this agent takes no task (its token or the network paused, the budget spent, no slot free). */
  private heldUntil = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
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

  /**
   * The CLI runs as another uid in the agent's group (DAN_CLI_USER): it must pass through the workspace folder to
   * its worktree (group r-x) and, in shared mode, write the folder itself (group rwx). A folder made with mode 0700
   * (mkdtemp, a user's umask) would stop it; the agent opens it to its group when it owns it, else says why not.
   */
  private async openWorkspaceToCli(workspace: string, mode: 'git' | 'shared'): Promise<void> {
    const wanted = mode === 'shared' ? 0o070 : 0o050;
    try {
      const current = (await stat(workspace)).mode & 0o7777;
      if ((current & wanted) !== wanted) await chmod(workspace, current | wanted);
    } catch (error) {
      this.log.warn({ workspace, why: (error as Error).message }, 'cannot open the workspace to the CLI\'s group: the CLI may not reach it');
    }
  }

  private async begin(templateDir: string): Promise<void> {
    const { config, agentId, domain } = this.options;
    // The CLI runs under a uid of its own in the agent's group (DAN_CLI_USER): what the agent makes (the config
    // dir, worktrees) must be writable by the group, and what the CLI makes by the agent (the umask is inherited).
    if (config.cliUser) process.umask(0o002);
    this.configDir = path.join(os.tmpdir(), 'dan', config.network, agentId);
    const prepared = await prepareConfigDir(templateDir, this.configDir);
    const domainMcp = await readDomainMcp(templateDir);
    await mkdir(config.workspace, { recursive: true });
    if (config.cliUser) await this.openWorkspaceToCli(config.workspace, config.workspaceMode);
    const mergeLock = new MergeLock(this.bus.redis, this.bus.keys, { ttlMs: config.heartbeatTtlMs });
    const gitOptions = { bin: config.gitBin, env: this.options.env };
    // Workspace by git remote: this agent's own clone of it (DESIGN.md, Workspaces), else the shared folder.
    const workspace: GitWorkspace | undefined =
      config.workspaceMode !== 'git' ? undefined : config.gitRemote ? new RemoteGitWorkspace(config.gitRemote, path.join(config.gitCloneDir, agentId), gitOptions) : new LocalGitWorkspace(config.workspace, gitOptions);
    // A workspace that cannot be dan's repository fails each task with the reason, rather than the agent's start
    // (which would only be retried by the scaler, the tasks queued with no word of why).
    const workspaceProblem = workspace ? await ensureWorkspace(workspace, mergeLock, agentId, this.log).then(() => undefined, (error: Error) => error.message) : undefined;
    if (workspaceProblem) this.log.error({ workspace: config.workspace, why: workspaceProblem }, 'the workspace cannot be used');
    this.ctx = {
      config,
      bus: this.bus,
      agentId,
      domain,
      env: this.options.env,
      configDir: this.configDir,
      danCommand: danCommand(),
      domainMcp,
      workspace,
      workspaceProblem,
      mergeLock,
      identity: { name: `dan ${domain} agent (${agentId})`, email: `${agentId}@dan.invalid` },
    };
    this.log.info({ workers: prepared.workers.map((w) => w.name), allowedTools: prepared.allow.length, mcpServers: Object.keys(domainMcp.servers), workspace: config.workspace }, 'agent starting');

    await this.registry.register({
      id: agentId,
      role: domain === 'main' ? 'main' : 'domain',
      domain,
      runtime: this.options.runtime ?? config.runtime,
      ref: this.options.ref ?? `pid:${process.pid}`,
      host: os.hostname(),
      pid: process.pid,
    });
    this.heartbeat = new Heartbeat(this.registry, agentId, { intervalMs: config.heartbeatMs, healthFile: config.healthFile, tasks: () => [...this.running.keys()] });
    this.heartbeat.on('reaped', () => void this.onReaped()); // ends in stop(), which never rejects
    // The record's cancel request is the authority: a cancel message lost in a reconnect is caught here.
    this.heartbeat.on('cancel', (taskId, reason) => this.onControl({ type: 'cancel', taskId, reason }));
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
    // A job lock that could not be renewed (lapsed in a stall of this process, or taken over) means the task's
    // job may already be another agent's: the run stops and the task is handed back (issue 16, item 8).
    this.worker.on('lockRenewalFailed', (jobIds) => this.onLockLapsed(jobIds));
    this.worker.on('failed', (job, error) => {
      if (!(error instanceof WaitingError) && !(error instanceof DelayedError)) this.log.debug({ jobId: job?.id, err: error }, 'job ended with an error');
    });
    this.armIdleTimer();
    this.log.info('agent ready');
  }

  private get context(): AgentContext {
    if (!this.ctx) throw new Error('the agent has not started');
    return this.ctx;
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
    if (this.running.has(taskId)) return this.putOff(job, token, taskId);
    const admission = await admitRun(this.context, taskId);
    if (!admission.admitted) return this.waitForAdmission(job, token, taskId, admission);
    let attempt: number | 'busy' | undefined;
    try {
      attempt = await claimTask(this.context, this.registry, taskId, () => [...this.running.keys()], this.tasksDone);
    } catch (error) {
      await this.releaseSlot(taskId);
      throw error;
    }
    if (typeof attempt !== 'number') {
      await this.releaseSlot(taskId);
      if (attempt === 'busy') return this.putOff(job, token, taskId);
      return;
    }
    const log = this.log.child({ taskId, attempt });
    const run: TaskRun = { taskId, attempt, log, writer: new LogWriter(this.bus.logs, taskId, log), controller: new AbortController() };
    this.running.set(taskId, run);
    try {
      const end = await runPipeline(this.context, run);
      if (end === 'hand-back') {
        // The run ended on a limit: the attempt is given back with the task, and the agent waits out the pause.
        await this.requeue(taskId, attempt, run.handBack!.why, { restoreAttempt: true });
        this.holdIntake(run.handBack!.untilMs, run.handBack!.why);
        await this.giveBack(job, token);
        return;
      }
      if (end === 'reaped') {
        log.warn('this agent was reaped: the task belongs to another agent now; no result recorded');
        await this.giveBack(job, token);
        return;
      }
      if (end === 'shutdown' || end === 'lapsed') {
        await this.requeue(taskId, attempt, end === 'shutdown' ? `agent ${agentId} stopped before the task finished` : `agent ${agentId} lost the task's job lock (it lapsed in a stall), so the run was stopped`);
        await this.giveBack(job, token);
        return;
      }
      const recorded = await recordResult(this.context, run, run.result ?? { status: 'failed', error: 'the run produced no result' });
      // A worktree is removed only by the agent whose task it is, once its result is recorded: the branch keeps the change.
      if (recorded && run.worktree && !run.worktree.keep) {
        await this.context.workspace?.remove(run.worktree).catch((error) => log.warn({ err: error }, 'could not remove the worktree'));
      }
    } catch (error) {
      if (error instanceof WaitingError || error instanceof DelayedError) throw error;
      await this.handBackAfterError(job, token, taskId, attempt, error as Error, log);
    } finally {
      this.running.delete(taskId);
      await this.releaseSlot(taskId);
      this.tasksDone += 1;
      await this.registry
        .setState(agentId, this.running.size > 0 ? 'busy' : this.stopping ? 'draining' : 'idle', [...this.running.keys()], this.tasksDone)
        .catch((error) => log.warn({ err: error }, 'could not update the agent record'));
    }
  }

  /**
   * Hands the task back to its queue, fenced on this attempt. `restoreAttempt`: the attempt does not count (a run
   * that ended on a usage or rate limit): the record's attempts go back to what they were before the claim.
   */
  private async requeue(taskId: string, attempt: number, why: string, options: { restoreAttempt?: boolean } = {}): Promise<void> {
    const { agentId } = this.options;
    await this.bus.tasks.transition(taskId, 'queued', {
      agent: agentId,
      expectAgent: agentId,
      expectAttempts: attempt,
      text: `${why}; back on the queue${options.restoreAttempt ? ` (attempt ${attempt} not counted)` : ''}`,
      fields: { reason: why, ...(options.restoreAttempt ? { attempts: attempt - 1 } : {}) },
    });
  }

  /** Frees the task's running slot (DAN_MAX_RUNNING); a failure is logged: the slot dies with this agent anyway. */
  private async releaseSlot(taskId: string): Promise<void> {
    await this.bus.gate.release(this.options.agentId, taskId).catch((error) => this.log.warn({ err: error, taskId }, 'could not free the running slot'));
  }

  /**
   * A task this agent may not start now (its token or the network paused, the daily budget spent, DAN_MAX_RUNNING
   * CLIs running): nothing is claimed, the job goes back to the queue for an agent that may (another token's),
   * and this agent takes no task until the pause ends, or for a heartbeat interval before it asks again.
   */
  private async waitForAdmission(job: Job<TaskJobData>, token: string | undefined, taskId: string, admission: Exclude<Admission, { admitted: true }>): Promise<never> {
    const now = Date.now();
    const recheck = now + this.options.config.heartbeatMs;
    const until = admission.why === 'paused' ? admission.untilMs : admission.why === 'budget' ? Math.min(nextUtcDay(now), recheck) : recheck;
    this.holdIntake(until, admissionText(admission), taskId);
    return this.giveBack(job, token);
  }

  /** Takes no new task until `untilMs` (the queue worker pauses; running tasks go on). */
  private holdIntake(untilMs: number, why: string, taskId?: string): void {
    if (!this.worker || this.stopping || untilMs <= this.heldUntil) return;
    const worker = this.worker;
    this.heldUntil = untilMs;
    this.log.info({ taskId, until: new Date(untilMs).toISOString(), why }, 'taking no task until then');
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    worker.pause(true).catch((error: unknown) => this.log.warn({ err: error }, 'could not pause the queue worker'));
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      this.heldUntil = 0;
      if (!this.stopping) worker.resume().catch((error: unknown) => this.log.warn({ err: error }, 'could not resume the queue worker'));
    }, Math.max(0, untilMs - Date.now()));
  }

  /**
   * The catch-all of the task path: an error Redis answered with (READONLY after a failover, OOM, WRONGTYPE, a denied
   * command) or any other failure after the claim hands the task back, fenced on this attempt, so it runs again (or
   * ends failed once its attempts are used up) instead of staying active under a live agent for ever. If even the
   * hand-back fails, this agent leaves: once it is not live, the reconciler (or, if it cannot deregister, the
   * reaper after its heartbeat expires) releases the task.
   */
  private async handBackAfterError(job: Job<TaskJobData>, token: string | undefined, taskId: string, attempt: number, error: Error, log: Logger): Promise<never> {
    log.error({ err: error }, 'the task failed inside the agent; handing it back');
    try {
      await this.requeue(taskId, attempt, `agent ${this.options.agentId} failed: ${error.message.split('\n')[0]!.slice(0, 300)}`);
    } catch (again) {
      log.error({ err: again }, 'could not hand the task back either; this agent leaves so that its task is released');
      void this.stop('stopped'); // never rejects; `exited` reports the end
      throw error;
    }
    return this.giveBack(job, token);
  }

  /**
   * Puts off a job whose task another live agent runs (its job came back because its lock lapsed while that
   * agent lived): by then that agent has recorded the result (the claim then finds nothing to take) or handed the
   * task back on noticing the lapse (the claim takes it), or it died (the claim takes it from `active`).
   */
  private async putOff(job: Job<TaskJobData>, token: string | undefined, taskId: string): Promise<never> {
    this.log.info({ taskId }, 'the task is still run by a live agent (its job lock lapsed): trying again later');
    try {
      await job.moveToDelayed(Date.now() + this.options.config.heartbeatTtlMs, token);
    } catch (error) {
      this.log.debug({ jobId: job.id, err: error }, 'job not put off: lock already gone');
    }
    throw new DelayedError();
  }

  private onLockLapsed(jobIds: string[]): void {
    for (const id of jobIds) {
      const running = this.running.get(id);
      if (!running || running.controller.signal.aborted) continue;
      running.log.warn('the job lock of this task could not be renewed (it lapsed): stopping the run and handing the task back');
      running.writer.push({ type: 'info', text: `attempt ${running.attempt}: the agent's job lock lapsed (a stall?): the run stops and the task goes back to the queue` });
      running.controller.abort('lapsed');
    }
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
        if (running && !running.controller.signal.aborted) {
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
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
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
    if (this.configDir) await removeConfigDir(this.configDir);
    this.log.info({ reason, tasksDone: this.tasksDone }, 'agent stopped');
    this.resolveExit(this.exitReason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('stopped', { graceMs: 0 });
  }
}
