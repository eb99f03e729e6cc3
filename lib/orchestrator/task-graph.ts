import { isTerminal, subtasksCost, type TaskRecord } from '../task.js';
import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import { aggregate, filesChanged } from './aggregate.js';
import { stepGoalGates, type GoalGateSettings } from './goal-gates.js';

export type GraphState = 'open' | 'completed' | 'failed' | 'cancelled' | 'missing';

/**
 * Moves a parent's subtask graph along, from what Redis holds (so any leader can pick it up): a waiting
 * subtask whose dependencies all completed is queued; one whose dependency failed, timed out or was
 * cancelled is cancelled with the reason; when every subtask has ended, the parent completes with the
 * aggregate or fails naming the parts that failed. Idempotent: every step is a guarded transition.
 */
export class TaskGraph {
  private readonly inFlight = new Map<string, Promise<GraphState>>();
  private readonly again = new Set<string>();

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    /** For a goal's own review gates. */
    private readonly gates?: GoalGateSettings,
  ) {}

  /**
   * Advances one graph. A call that arrives while a pass for the same parent is running schedules one more
   * pass after it, so a subtask that ended during the pass is not left for the next cycle.
   */
  advance(parentId: string, options: { reconcile?: boolean } = {}): Promise<GraphState> {
    const running = this.inFlight.get(parentId);
    if (running) {
      this.again.add(parentId);
      return running;
    }
    const run = (async (): Promise<GraphState> => {
      let state: GraphState;
      do {
        this.again.delete(parentId);
        state = await this.step(parentId, options.reconcile ?? false);
      } while (state === 'open' && this.again.has(parentId));
      return state;
    })().finally(() => this.inFlight.delete(parentId));
    this.inFlight.set(parentId, run);
    return run;
  }

  private async step(parentId: string, reconcile: boolean): Promise<GraphState> {
    const parent = await this.bus.tasks.find(parentId);
    if (!parent) {
      await this.bus.tasks.closeGraph(parentId);
      return 'missing';
    }
    if (isTerminal(parent.status)) {
      for (const id of parent.children) await this.bus.cancel(id, `parent ${parentId} ended ${parent.status}`).catch(() => undefined);
      await this.bus.tasks.closeGraph(parentId);
      return parent.status === 'completed' ? 'completed' : parent.status === 'cancelled' ? 'cancelled' : 'failed';
    }
    let children = await this.bus.tasks.getMany(parent.children);
    // A goal's budget spent by its subtasks: the open ones are cancelled with reason budget (a running one is
    // asked to stop), before a dependency's failure would cancel them for another reason.
    if (budgetSpent(parent, children)) {
      const why = `budget: the goal's budget $${parent.budgetUsd} is spent ($${subtasksCost(children).toFixed(4)})`;
      for (const child of children.filter((c) => !isTerminal(c.status))) await this.bus.cancel(child.id, why).catch((error) => this.log.warn({ err: error, taskId: child.id }, 'cancelling a subtask failed'));
      children = await this.bus.tasks.getMany(parent.children);
    }
    // Cancellations cascade along dependencies: repeat until nothing changes (graphs are small).
    for (let changed = true; changed; ) {
      changed = false;
      const byId = new Map(children.map((c) => [c.id, c]));
      for (const child of children) {
        if (child.status !== 'waiting') continue;
        const deps = child.dependsOn.map((d) => byId.get(d));
        const broken = deps.find((d) => !d || (isTerminal(d.status) && d.status !== 'completed'));
        if (broken !== undefined || deps.some((d) => d === undefined)) {
          const why = broken ? `dependency ${broken.key ?? broken.id} (${broken.domain}) ended ${broken.status}` : 'a dependency is missing';
          const r = await this.bus.tasks.transition(child.id, 'cancelled', { text: why, fields: { reason: why, finishedAt: Date.now() } });
          changed ||= r.outcome === 'ok';
        } else if (deps.every((d) => d!.status === 'completed')) {
          const r = await this.bus.tasks.transition(child.id, 'queued', {
            text: child.dependsOn.length === 0 ? 'queued' : `dependencies completed (${deps.map((d) => d!.key ?? d!.id).join(', ')}); queued`,
          });
          if (r.outcome === 'ok') {
            await this.bus.enqueue({ ...child, status: 'queued' }).catch((error) => this.log.error({ err: error, taskId: child.id }, 'enqueueing a subtask failed'));
            changed = true;
          }
        }
      }
      if (changed) children = await this.bus.tasks.getMany(parent.children);
    }
    if (reconcile) {
      // A leader that died between queueing a subtask and enqueueing it: job ids are task ids, so adding
      // again is a no-op for a job that exists.
      for (const child of children.filter((c) => c.status === 'queued')) {
        await this.bus.queues.enqueue(child.domain, child.id, child.priority).catch(() => undefined);
      }
    }
    if (children.length === 0 || !children.every((c) => isTerminal(c.status))) return 'open';
    // A goal with gates of its own: once every subtask completed, they review the combined change first.
    if (parent.gates?.length && this.gates && children.every((c) => c.status === 'completed')) {
      const gated = await stepGoalGates(this.bus, this.log, this.gates, parent, children);
      if (gated.state === 'open') return 'open';
      if (gated.state === 'failed') return this.finish(await this.bus.tasks.get(parent.id), children, gated.error);
      return this.finish(await this.bus.tasks.get(parent.id), children);
    }
    return this.finish(parent, children);
  }

  private async finish(parent: TaskRecord, children: TaskRecord[], reviewError?: string): Promise<GraphState> {
    const files = new Map<string, string[]>();
    for (const child of children) files.set(child.id, filesChanged(await this.bus.logs.history(child.id)));
    const outcome = aggregate(parent, children, files);
    // The goal's review cost counts as its own.
    outcome.costUsd += (parent.reviews ?? []).flatMap((g) => g.rounds).reduce((sum, r) => sum + r.costUsd, 0);
    if (reviewError) {
      outcome.status = 'failed';
      outcome.error = reviewError;
    }
    if (outcome.status !== 'completed' && budgetSpent(parent, children)) {
      outcome.error = `the goal's budget $${parent.budgetUsd} was spent ($${subtasksCost(children).toFixed(4)}); ${outcome.error ?? ''}`.trim();
    }
    const result = await this.bus.tasks.transition(parent.id, outcome.status, {
      text: outcome.status === 'completed' ? `all ${children.length} subtasks completed` : outcome.error!,
      fields: {
        reason: reviewError ? 'review' : outcome.status !== 'completed' && budgetSpent(parent, children) ? 'budget' : undefined,
        result: outcome.result,
        error: outcome.error,
        costUsd: outcome.costUsd,
        turns: outcome.turns,
        finishedAt: Date.now(),
      },
    });
    if (result.outcome === 'ok') this.log.info({ taskId: parent.id, status: outcome.status }, 'goal finished');
    await this.bus.tasks.closeGraph(parent.id);
    return outcome.status;
  }
}

/** Whether a goal sent with `--budget` has had it spent by its subtasks. Pure. */
const budgetSpent = (parent: TaskRecord, children: readonly TaskRecord[]): boolean => parent.budgetUsd !== undefined && subtasksCost(children) >= parent.budgetUsd;
