import { followTask, type Bus, type FollowTaskOptions, type StoredLogEntry } from '../lib/messaging/index.js';
import { MAIN_DOMAIN, type TaskRecord } from '../lib/task.js';
import { formatEntry } from './output.js';
import { summarizeEntry, type FollowView } from './summary.js';

/**
 * A progress line on a terminal only: after `idleMs` without output, `… active, 12s` on stderr, rewritten in
 * place and erased before the next line is printed. Off a terminal (pipes, CI logs) it never writes.
 */
export class ProgressLine {
  private timer: NodeJS.Timeout | undefined;
  private lastOutput = Date.now();
  private shown = false;
  status = 'queued';

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly idleMs = 2000,
    private readonly started = Date.now(),
  ) {}

  start(): this {
    if (!this.stream.isTTY) return this;
    this.timer = setInterval(() => {
      if (Date.now() - this.lastOutput < this.idleMs) return;
      this.stream.write(`\r\u001b[2K… ${this.status}, ${Math.round((Date.now() - this.started) / 1000)}s`);
      this.shown = true;
    }, 500);
    this.timer.unref();
    return this;
  }

  /** Erases the progress line before something else is printed. */
  clear(): void {
    this.lastOutput = Date.now();
    if (!this.shown) return;
    this.stream.write('\r\u001b[2K');
    this.shown = false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
  }
}

/**
 * Prints a task's log and follows it; a goal's subtasks are interleaved, each line tagged `<key>/<domain>`.
 * Returns the record as `followTask` does.
 */
export async function printFollow(
  bus: Bus,
  taskId: string,
  options: Omit<FollowTaskOptions, 'onEntry'> & { matches?: (e: StoredLogEntry) => boolean; view?: FollowView; progress?: ProgressLine } = {},
): Promise<TaskRecord> {
  const view = options.view ?? 'verbose';
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
      if (e.entry.type === 'status' && e.taskId === taskId && e.entry.status && options.progress) options.progress.status = e.entry.status;
      if (view === 'quiet') return;
      const shown = view === 'summary' ? summarizeEntry(e) : e;
      if (!shown) return;
      printed = printed.then(async () => {
        const line = formatEntry(shown, { tag: await tagOf(e.taskId) });
        options.progress?.clear();
        console.log(line);
      });
    },
  });
  await printed;
  return final;
}
