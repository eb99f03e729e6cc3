import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus, Redis } from '../../lib/messaging/index.js';
import type { AgentHandle, Runtime } from '../../lib/runtime/index.js';
import { isTerminal, newTaskId, taskSpecSchema, type TaskStatus } from '../../lib/task.js';
import { eventually } from '../helpers/network.js';

/**
 * What the chaos tests share besides their set-ups (stand-in-network.ts, orchestrated-network.ts) and the
 * helpers in tests/helpers: tasks for the stand-in CLI, the victims they kill, and the audit that every chaos
 * test ends with. Nothing here mocks Redis, Docker or dan: these are the real processes.
 */

export const DOMAINS = ['backend', 'frontend', 'devops'] as const;

/**
 * Submits `count` tasks round-robin over `domains`, each naming its own id in a `standin:key=` directive so
 * the executions file says which task each CLI run was for. Returns the ids.
 */
export async function submitTasks(
  bus: Bus,
  count: number,
  options: { domains?: readonly string[]; label?: string; maxAttempts?: number; extra?: string } = {},
): Promise<string[]> {
  const domains = options.domains ?? DOMAINS;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = newTaskId();
    const description = `${options.label ?? 'chaos'} task ${i} standin:key=${id}${options.extra ? ` ${options.extra}` : ''}`;
    await bus.submit(
      taskSpecSchema.parse({ domain: domains[i % domains.length], description, timeoutS: 120, maxAttempts: options.maxAttempts ?? 5 }),
      { id },
    );
    ids.push(id);
  }
  return ids;
}

/** Statuses of the records, in the order of `ids` ('missing' for a record that is not there). */
export async function statuses(redis: Redis, prefix: string, ids: readonly string[]): Promise<Array<TaskStatus | 'missing'>> {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(`${prefix}task:${id}`, 'status');
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([error, status]) => (error || status === null ? 'missing' : (status as TaskStatus)));
}

/** Waits (generously) until every task is terminal; the error names what is still open. */
export async function waitAllTerminal(bus: Bus, ids: readonly string[], timeoutMs: number): Promise<void> {
  let open: string[] = [];
  await eventually(
    async () => {
      const now = await statuses(bus.redis, bus.keys.prefix, ids);
      open = ids.flatMap((id, i) => {
        const status = now[i]!;
        return status === 'missing' || !isTerminal(status) ? [`${id}:${status}`] : [];
      });
      return open.length === 0;
    },
    { what: 'every task to end', timeoutMs, intervalMs: 500 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; still open: ${open.slice(0, 20).join(', ')}${open.length > 20 ? ` … (${open.length})` : ''}`);
  });
}

/** What the audit of a run found. */
export interface Audit {
  byStatus: Partial<Record<TaskStatus | 'missing', number>>;
  /** Everything that breaks the guarantees; [] when the run was clean. */
  problems: string[];
}

/**
 * The checks every chaos run ends with: each task's record is terminal; a completed task has exactly one
 * `completed` status entry in its log (it was recorded completed once, however often it ran), and any other
 * has none; and the domain queues hold no job, waiting or active.
 */
export async function audit(bus: Bus, ids: readonly string[], domains: readonly string[] = DOMAINS): Promise<Audit> {
  const byStatus: Audit['byStatus'] = {};
  const problems: string[] = [];
  const now = await statuses(bus.redis, bus.keys.prefix, ids);
  for (const [i, id] of ids.entries()) {
    const status = now[i]!;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status === 'missing' || !isTerminal(status)) problems.push(`${id} is ${status}`);
    const entries = await bus.logs.history(id);
    const completed = entries.filter((e) => e.entry.type === 'status' && e.entry.status === 'completed').length;
    if (status === 'completed' && completed !== 1) problems.push(`${id} was recorded completed ${completed} times`);
    if (status !== 'completed' && completed !== 0) problems.push(`${id} is ${status} but its log says completed ${completed} times`);
  }
  for (const domain of domains) {
    const counts = await bus.queues.queue(domain).getJobCounts('wait', 'prioritized', 'delayed', 'active');
    const left = Object.entries(counts).filter(([, n]) => (n ?? 0) > 0);
    if (left.length > 0) problems.push(`queue ${domain} still holds ${left.map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
  return { byStatus, problems };
}

/** Waits until the domain queues are empty (a finished job is removed just after its record is written). */
export async function waitQueuesEmpty(bus: Bus, domains: readonly string[] = DOMAINS, timeoutMs = 30_000): Promise<void> {
  await eventually(
    async () => {
      for (const domain of domains) {
        const counts = await bus.queues.queue(domain).getJobCounts('wait', 'prioritized', 'delayed', 'active');
        if (Object.values(counts).some((n) => (n ?? 0) > 0)) return false;
      }
      return true;
    },
    { what: 'the queues to empty', timeoutMs, intervalMs: 200 },
  );
}

/** One line for the test output: what happened in a run, so a reader sees the figures without a debugger. */
export function report(label: string, figures: Record<string, unknown>): void {
  console.log(`[chaos] ${label}: ${Object.entries(figures).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}`);
}

export const randomBetween = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** An agent to kill: mostly one that has registered (and so may hold a task); now and then one still starting. */
async function pickVictim(runtime: Runtime, bus: Bus): Promise<AgentHandle | undefined> {
  const running = (await runtime.list()).filter((h) => h.running && h.role === 'domain');
  const registered = new Set(await bus.redis.smembers(bus.keys.agents));
  const pool = Math.random() < 0.8 ? running.filter((h) => registered.has(h.agentId)) : running;
  return pool[Math.floor(Math.random() * pool.length)];
}

export interface KillerOptions {
  runtime: Runtime;
  bus: Bus;
  /** Resolves when the first kill may come. */
  ready: () => Promise<unknown>;
  /** Kills an agent; false when it could not (the agent was gone). */
  kill: (victim: AgentHandle) => Promise<boolean> | boolean;
  /** The pause after each attempt, drawn at random between these bounds. */
  pauseMs: readonly [number, number];
  /** How many agents to kill at the most. */
  max: number;
}

/**
 * Kills agents of `runtime` at random while `work` runs, and stops once it has ended. Resolves with the ids of
 * the agents killed, or rejects as `work` did.
 */
export async function killAgentsWhile(work: () => Promise<void>, options: KillerOptions): Promise<string[]> {
  const killed: string[] = [];
  let killing = true;
  const killer = (async () => {
    await options.ready();
    while (killing && killed.length < options.max) {
      const victim = await pickVictim(options.runtime, options.bus);
      if (victim && (await options.kill(victim))) killed.push(victim.agentId);
      await sleep(randomBetween(...options.pauseMs));
    }
  })();
  try {
    await work();
  } finally {
    killing = false;
    await killer;
  }
  return killed;
}

/** The agents among `ids` that have a record: those killed before they registered have none, so nothing to reap. */
export async function registeredOf(bus: Bus, ids: readonly string[]): Promise<string[]> {
  const registered: string[] = [];
  for (const id of ids) if ((await bus.redis.exists(bus.keys.agent(id))) === 1) registered.push(id);
  return registered;
}
