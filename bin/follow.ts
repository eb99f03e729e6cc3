import { followTask, type Bus, type FollowTaskOptions, type StoredLogEntry } from '../lib/messaging/index.js';
import { MAIN_DOMAIN, type TaskRecord } from '../lib/task.js';
import { formatEntry } from './output.js';

/**
 * Prints a task's log and follows it; a goal's subtasks are interleaved, each line tagged `<key>/<domain>`.
 * Returns the record as `followTask` does.
 */
export async function printFollow(
  bus: Bus,
  taskId: string,
  options: Omit<FollowTaskOptions, 'onEntry'> & { matches?: (e: StoredLogEntry) => boolean } = {},
): Promise<TaskRecord> {
  const record = await bus.tasks.get(taskId);
  const tags = new Map<string, string>();
  for (const ch of await bus.tasks.getMany(record.children)) tags.set(ch.id, `${ch.key ?? ch.id.slice(-6)}/${ch.domain}`);
  const isGoal = record.domain === MAIN_DOMAIN || record.children.length > 0;
  const width = 14;
  const tagOf = async (id: string): Promise<string | undefined> => {
    if (!isGoal) return undefined;
    if (id === taskId) return 'goal'.padEnd(width);
    if (!tags.has(id)) {
      const child = await bus.tasks.find(id).catch(() => undefined);
      tags.set(id, `${child?.key ?? id.slice(-6)}/${child?.domain ?? '?'}`);
    }
    return tags.get(id)!.padEnd(width);
  };
  // Tags of subtasks created while following are looked up once; chaining keeps the lines in order.
  let printed: Promise<void> = Promise.resolve();
  const final = await followTask(bus, taskId, {
    ...options,
    onEntry: (e) => {
      if (options.matches && !options.matches(e)) return;
      printed = printed.then(async () => console.log(formatEntry(e, { tag: await tagOf(e.taskId) })));
    },
  });
  await printed;
  return final;
}
