import type { Command } from 'commander';
import { BadInputError } from '../../lib/errors.js';
import { compareStreamIds, type Bus, type StoredLogEntry } from '../../lib/messaging/index.js';
import { printFollow } from '../follow.js';
import { MAIN_DOMAIN, taskIdSchema } from '../../lib/task.js';
import { logLinesSchema } from '../../lib/task-request.js';
import { configFrom, connectCli, parseFlag, type ConnectionFlags } from '../context.js';
import { formatEntry } from '../output.js';

interface LogsFlags extends ConnectionFlags {
  task?: string;
  main?: boolean;
  domains?: boolean;
  grep?: string;
  lines: string;
  follow: boolean;
}

/** How many recent tasks the network-wide view watches. */
const NETWORK_WINDOW = 100;

/** `dan logs`: one task's log, or the whole network's, with history then live entries. */
export function registerLogsCommand(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('logs')
      .description("show and follow logs: one task's (--task) or the whole network's")
      .option('--task <id>', 'only this task')
      .option('--main', 'only main (planning) tasks')
      .option('--domains', 'only domain tasks')
      .option('-g, --grep <pattern>', 'only entries matching this regular expression (case-insensitive)')
      .option('-n, --lines <n>', 'history entries to show first (0 to 100000)', '50')
      .option('--no-follow', 'print the history and exit'),
  ).action(async (flags: LogsFlags) => {
    const config = configFrom(flags);
    const taskId = flags.task === undefined ? undefined : parseFlag(taskIdSchema, flags.task, '--task');
    const lines = parseFlag(logLinesSchema, flags.lines, '--lines');
    if (flags.main && flags.domains) throw new BadInputError('--main and --domains exclude each other: pick one, or neither for all');
    let pattern: RegExp | undefined;
    if (flags.grep !== undefined) {
      try {
        pattern = new RegExp(flags.grep, 'i');
      } catch (error) {
        throw new BadInputError(`--grep is not a valid regular expression: ${(error as Error).message}`);
      }
    }
    const matches = (e: StoredLogEntry): boolean => !pattern || pattern.test(e.entry.text) || pattern.test(e.entry.type);

    await using bus = await connectCli(config);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    if (taskId) {
      await bus.tasks.get(taskId); // unknown id: exit 2 before following
      await printFollow(bus, taskId, {
        last: lines,
        untilDone: flags.follow,
        signal: flags.follow ? controller.signal : AbortSignal.abort(),
        matches,
      });
      return;
    }
    const domainFilter = (domain: string): boolean =>
      flags.main ? domain === MAIN_DOMAIN : flags.domains ? domain !== MAIN_DOMAIN : true;
    await followNetwork(bus, { lines, follow: flags.follow, signal: controller.signal, domainFilter, matches });
  });
}

interface NetworkOptions {
  lines: number;
  follow: boolean;
  signal: AbortSignal;
  domainFilter: (domain: string) => boolean;
  matches: (e: StoredLogEntry) => boolean;
}

/**
 * The network-wide view: the newest entries across recent tasks, merged by stream id (time), then every
 * new entry of those and of tasks created meanwhile, each tagged with its task's domain and short id.
 */
async function followNetwork(bus: Bus, options: NetworkOptions): Promise<void> {
  const tags = new Map<string, string | null>(); // task id → tag, or null when filtered out
  const tagOf = async (ids: string[]): Promise<void> => {
    const unknown = ids.filter((id) => !tags.has(id));
    for (const record of await bus.tasks.getMany(unknown, () => {})) {
      tags.set(record.id, options.domainFilter(record.domain) ? `${record.domain}/${record.id.slice(-6)}` : null);
    }
    for (const id of unknown) if (!tags.has(id)) tags.set(id, null);
  };
  const print = (e: StoredLogEntry): void => {
    const tag = tags.get(e.taskId);
    if (tag && options.matches(e)) console.log(formatEntry(e, { tag }));
  };

  const ids = await bus.tasks.recentIds(NETWORK_WINDOW);
  await tagOf(ids);
  const positions = new Map<string, string>();
  const history: StoredLogEntry[] = [];
  for (const id of ids.filter((i) => tags.get(i))) {
    const recent = await bus.logs.history(id, { last: Math.max(options.lines, 1) });
    history.push(...recent.filter(options.matches));
    // Follow from the newest entry read, not from a second lookup: an entry written in between would be lost.
    positions.set(id, recent.at(-1)?.id ?? '0-0');
  }
  history.sort((a, b) => compareStreamIds(a.id, b.id));
  for (const e of options.lines === 0 ? [] : history.slice(-options.lines)) print(e);
  if (!options.follow) return;

  const blocking = bus.blocking();
  while (!options.signal.aborted) {
    const recent = await bus.tasks.recentIds(NETWORK_WINDOW);
    await tagOf(recent);
    for (const id of recent) if (tags.get(id) && !positions.has(id)) positions.set(id, '0-0');
    if (positions.size === 0) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    for (const e of await bus.logs.readAfter(blocking, positions, 1000)) print(e);
  }
}
