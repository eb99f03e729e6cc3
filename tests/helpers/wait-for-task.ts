import type { Bus } from '../../lib/messaging/index.js';
import type { TaskRecord } from '../../lib/task.js';
import { eventually } from './eventually.js';

export interface WaitForTaskOptions {
  /** What the test waits for, for the error. */
  what: string;
  timeoutMs: number;
  /** @default 100 */
  intervalMs?: number;
  /** Context for the error: where things stand. @default the task's record */
  context?: () => Promise<string> | string;
}

/** A task's record as it stands, for a failure message. */
export async function describeTask(bus: Bus, id: string): Promise<string> {
  return `record ${JSON.stringify(await bus.tasks.find(id).catch(() => 'unreadable'))}`;
}

/** Waits until task `id`'s record satisfies `check`, and returns that record. */
export async function waitForTask(bus: Bus, id: string, check: (r: TaskRecord) => boolean, options: WaitForTaskOptions): Promise<TaskRecord> {
  return eventually(
    async () => {
      const record = await bus.tasks.get(id);
      return check(record) ? record : undefined;
    },
    { what: options.what, timeoutMs: options.timeoutMs, intervalMs: options.intervalMs ?? 100 },
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await (options.context ?? (() => describeTask(bus, id)))()}`);
  });
}
