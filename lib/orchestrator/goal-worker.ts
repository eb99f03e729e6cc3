import { WaitingError, type Job, type Worker } from 'bullmq';
import { TaskWorker, taskLeaseOptions } from '../agent/task-worker.js';
import { z } from 'zod';
import { LogWriter } from '../agent/log-writer.js';
import type { DanConfig } from '../config.js';
import { describeZodError } from '../errors.js';
import type { Logger } from '../log.js';
import { createRedis, type Bus, type Redis, type TaskJobData } from '../messaging/index.js';
import type { AgentRegistry } from '../registry/index.js';
import type { Runtime } from '../runtime/index.js';
import { MAIN_DOMAIN, newTaskId, taskIdSchema, taskSpecSchema, type TaskRecord, type TaskSpec } from '../task.js';
import { tierModel, type Plan } from './plan.js';
import { Planner } from './planner.js';
import type { TaskGraph } from './task-graph.js';

const jobDataSchema = z.object({ taskId: taskIdSchema });

export interface GoalWorkerOptions {
  config: DanConfig;
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
  orchestratorId: string;
  /** Where planner runs run (the orchestrator's runtime). */
  runtime: Runtime;
  /** Goals planned at once. @default 2 */
  concurrency?: number;
}

/**
 * Consumes the `main` queue: claims a goal, plans it (lib/orchestrator/planner.ts), and writes its subtasks
 * and plan in one MULTI; the graph then runs through TaskGraph. A goal already planned (its orchestrator
 * died after planning) is not planned again: its graph is resumed.
 */
export class GoalWorker {
  private worker: Worker<TaskJobData> | undefined;
  private connection: Redis | undefined;
  private planner: Planner | undefined;
  private readonly running = new Map<string, AbortController>();
  private readonly log: Logger;

  constructor(
    private readonly options: GoalWorkerOptions,
    private readonly bus: Bus,
    private readonly registry: AgentRegistry,
    private readonly graph: TaskGraph,
  ) {
    this.log = options.logger.child({ component: 'goal-worker' });
  }

  async start(): Promise<void> {
    const { config, orchestratorId } = this.options;
    this.planner = new Planner({ config, env: this.options.env, runtime: this.options.runtime, logger: this.log });
    this.connection = createRedis(config.redisUrl, { name: `dan-orchestrator:${orchestratorId}:main` });
    this.connection.on('error', (error) => this.log.warn({ err: error }, 'redis connection error'));
    this.worker = new TaskWorker<TaskJobData>(MAIN_DOMAIN, (job, token) => this.process(job, token), {
      connection: this.connection,
      prefix: this.bus.keys.queuePrefix,
      concurrency: this.options.concurrency ?? 2,
      ...taskLeaseOptions(config),
    });
    this.worker.on('error', (error) => this.log.warn({ err: error }, 'main queue worker error'));
  }

  /** Aborts the planning of a goal (a cancel request on the orchestrator's control channel). */
  cancel(taskId: string): void {
    this.running.get(taskId)?.abort('cancelled');
  }

  private async process(job: Job<TaskJobData>, token: string | undefined): Promise<void> {
    const data = jobDataSchema.safeParse(job.data);
    if (!data.success) {
      this.log.error({ jobId: job.id, why: describeZodError(data.error) }, 'dropped a main queue job with malformed data');
      return;
    }
    const { taskId } = data.data;
    const { orchestratorId } = this.options;
    await this.registry.setState(orchestratorId, 'busy', [...this.running.keys(), taskId]);
    try {
      const claim = await this.bus.tasks.transition(taskId, 'active', {
        mode: 'claim',
        agent: orchestratorId,
        fields: { agent: orchestratorId, startedAt: Date.now() },
        text: `taken by ${orchestratorId} for planning`,
      });
      if (claim.outcome !== 'ok') return;
      const goal = await this.bus.tasks.find(taskId).catch((error: Error) => error);
      if (!(goal && !(goal instanceof Error))) {
        const why = goal instanceof Error ? goal.message : 'the record vanished';
        await this.bus.tasks.transition(taskId, 'failed', { expectAgent: orchestratorId, expectAttempts: claim.attempts, text: why, fields: { error: why, finishedAt: Date.now() } });
        return;
      }
      if (goal.plan !== undefined) {
        this.log.info({ taskId }, 'goal already planned: resuming its graph');
        await this.graph.advance(taskId, { reconcile: true });
        return;
      }
      if ((await this.planGoal(goal, claim.attempts)) === 'give-back') {
        // This orchestrator is stopping: the goal goes back on the queue for another one.
        await this.bus.tasks.transition(taskId, 'queued', {
          agent: orchestratorId,
          expectAgent: orchestratorId,
          expectAttempts: claim.attempts,
          text: `orchestrator ${orchestratorId} stopped while planning; back on the queue`,
          fields: { reason: 'orchestrator stopped while planning' },
        });
        await job.moveToWait(token).catch(() => undefined);
        throw new WaitingError();
      }
    } catch (error) {
      if (error instanceof WaitingError) throw error;
      this.log.error({ err: error, taskId }, 'planning a goal failed');
      await this.bus.tasks
        .transition(taskId, 'failed', { expectAgent: orchestratorId, text: `planning crashed: ${(error as Error).message}`, fields: { error: (error as Error).message, finishedAt: Date.now() } })
        .catch(() => undefined);
    } finally {
      this.running.delete(taskId);
      await this.registry.setState(orchestratorId, this.running.size > 0 ? 'busy' : 'idle', [...this.running.keys()]).catch(() => undefined);
    }
  }

  private async planGoal(goal: TaskRecord, attempt: number): Promise<'done' | 'give-back'> {
    const { orchestratorId } = this.options;
    const writer = new LogWriter(this.bus.logs, goal.id, this.log);
    const controller = new AbortController();
    this.running.set(goal.id, controller);
    const outcome = await this.planner!.plan(goal, controller.signal, (entry) => writer.push({ ...entry, agent: orchestratorId }));
    await writer.flush();
    // Planning costs count towards today's spend (DAN_DAILY_BUDGET_USD) like any run, under `main`.
    if (outcome.kind !== 'cancelled') await this.bus.gate.addSpend('main', outcome.costUsd);
    if (controller.signal.reason === 'shutdown') return 'give-back';
    const fence = { agent: orchestratorId, expectAgent: orchestratorId, expectAttempts: attempt };
    // A cancel request is in the record (flag and reason) before its control message is sent: honour it even
    // when the message was missed or came after the planner had finished, and keep the user's reason.
    const now = await this.bus.tasks.find(goal.id);
    const cancelReason = now?.cancelRequested ? (now.reason ?? 'cancelled') : undefined;
    if (outcome.kind !== 'plan' || cancelReason !== undefined) {
      const status = outcome.kind === 'failed' && cancelReason === undefined ? 'failed' : 'cancelled';
      const error = cancelReason ?? (outcome.kind === 'plan' ? 'cancelled' : outcome.error);
      await this.bus.tasks.transition(goal.id, status, {
        ...fence,
        text: `${status}: ${error}`,
        fields: { error, reason: error, finishedAt: Date.now(), ...(outcome.kind !== 'cancelled' ? { costUsd: outcome.costUsd, turns: outcome.turns } : {}) },
      });
      return 'done';
    }
    const children = this.childSpecs(goal, outcome.plan);
    // Fenced in the same script that writes: the goal must still be ours (not reaped and handed to another
    // orchestrator, which would plan it again) and unplanned.
    const committed = await this.bus.tasks.commitPlan(
      goal.id,
      children.map(({ id, spec }) => ({ id, spec })),
      { source: outcome.source, subtasks: outcome.plan.subtasks.map((s) => ({ ...s, id: children.find((c) => c.key === s.key)!.id })) },
      { agent: orchestratorId, attempts: attempt },
    );
    if (committed !== 'ok') {
      this.log.warn({ taskId: goal.id, outcome: committed }, 'plan discarded: the goal was handed to another orchestrator, ended, or was planned meanwhile');
      return 'done';
    }
    await this.bus.tasks.transition(goal.id, 'active', {
      ...fence,
      text: `planned ${children.length} subtask${children.length === 1 ? '' : 's'} (${outcome.source === 'model' ? 'by the model' : 'by keyword routing'})`,
      fields: { costUsd: outcome.costUsd, turns: outcome.turns },
    });
    // A cancel requested between the check above and the commit: the subtasks exist now, so end them with the goal.
    const after = await this.bus.tasks.find(goal.id);
    if (after?.cancelRequested && after.status === 'active') await this.bus.cancel(goal.id, after.reason ?? 'cancelled');
    await this.graph.advance(goal.id);
    return 'done';
  }

  /** One task spec per planned subtask, with ids assigned and dependencies as ids. */
  private childSpecs(goal: TaskRecord, plan: Plan): Array<{ key: string; id: string; spec: TaskSpec }> {
    const ids = new Map(plan.subtasks.map((s) => [s.key, newTaskId()]));
    return plan.subtasks.map((s) => ({
      key: s.key,
      id: ids.get(s.key)!,
      spec: taskSpecSchema.parse({
        domain: s.domain,
        description: s.description,
        priority: goal.priority,
        timeoutS: goal.timeoutS,
        context: goal.context,
        parent: goal.id,
        dependsOn: s.dependsOn.map((d) => ids.get(d)!),
        key: s.key,
        maxAttempts: goal.maxAttempts,
        model: tierModel(s.model, this.options.config.modelTiers, goal.model),
      }),
    }));
  }

  async close(): Promise<void> {
    for (const controller of this.running.values()) controller.abort('shutdown');
    await this.worker?.close().catch((error) => this.log.warn({ err: error }, 'closing the main queue worker failed'));
    this.connection?.disconnect();
  }
}
