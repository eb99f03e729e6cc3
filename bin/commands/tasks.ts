import type { Command } from 'commander';
import { queuedWait, readAccessState } from '../../lib/access-state.js';
import { resolveDomain } from '../../lib/domains.js';
import { followTask } from '../../lib/messaging/index.js';
import { listLimitSchema, specFromRequest } from '../../lib/task-request.js';
import {
  answerSchema,
  MAIN_DOMAIN,
  isTerminal,
  parseContextJson,
  taskIdSchema,
  taskStatusSchema,
  TASK_STATUSES,
  type TaskRecord,
} from '../../lib/task.js';
import { BadInputError } from '../../lib/errors.js';
import { checkFollowUp } from '../../lib/follow-up.js';
import { configFrom, connectCli, EXIT, parseFlag, type ConnectionFlags } from '../context.js';
import { printFollow, ProgressLine } from '../follow.js';
import { finalResult } from '../summary.js';
import { ago, c, deadLetterRow, formatRecord, formatThread, table, taskRow, truncate } from '../output.js';
import { formatMermaid, formatTree } from '../tree.js';

interface SendFlags extends ConnectionFlags {
  priority?: string;
  timeout?: string;
  context?: string;
  wait?: boolean;
  /** commander's `--no-merge`: false when given. */
  merge?: boolean;
  strict?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  model?: string;
  effort?: string;
  fallbackModel?: string;
  budget?: string;
  continue?: string;
  gate?: string[];
  /** commander's `--no-gates`: false when given. */
  gates?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `dan send-task`, `dan status`, `dan tasks`, `dan cancel`. */
export function registerTaskCommands(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('send-task')
      .description('put a task on the bus for a domain (or `main` to plan it across domains)')
      .argument('<domain>', `${MAIN_DOMAIN} or a folder under agents/domain-templates/`)
      .argument('<description>', 'what to do (1 byte to 64 KiB)')
      .option('-p, --priority <priority>', 'low | normal | high', 'normal')
      .option('-t, --timeout <seconds>', 'give up after this many seconds (10 to 86400; default DAN_TASK_TIMEOUT_S)')
      .option('-c, --context <json>', 'a JSON object handed to the agent with the task')
      .option('-w, --wait', 'follow the task until it ends; exit 0 if it completed, 1 otherwise')
      .option('--continue <id>', "a follow-up: resume that task's conversation (on its branch); queued after it if it is still running")
      .option('--no-merge', "keep the task's branch for review instead of merging it (then: dan diff, dan merge)")
      .option('--model <name>', "the CLI's --model for this task (default DAN_MODEL, else the domain's settings)")
      .option('--effort <level>', "the CLI's --effort: low | medium | high | xhigh | max")
      .option('--fallback-model <name>', "the CLI's --fallback-model, used when the model is overloaded")
      .option('--budget <usd>', 'the most one run may spend, in US dollars (default DAN_TASK_BUDGET_USD); a run stopped by it fails with reason budget')
      .option('--gate <name>', "a review gate the change passes before it merges (repeat for several, in order; default the domain's dan.json)", collect)
      .option('--no-gates', 'no review gates for this task, whatever its domain says')
      .option('-v, --verbose', 'with --wait: print every log entry (the CLI\'s init, tool results, subagent prompts …)')
      .option('-q, --quiet', 'with --wait: print only the id and the outcome')
      .option('--strict', 'with --wait: a run that completed with warnings (refused tool calls, tool errors, no changes) exits 1 too')
      .option('--json', 'print JSON'),
  ).action(async (asked: string, description: string, flags: SendFlags) => {
    const config = configFrom(flags);
    // Validate everything before touching Redis: bad input writes nothing; the API validates with the same call
    // (specFromRequest). `Backend` means `backend`.
    const domain = resolveDomain(config.templatesDir, asked);
    for (const flag of ['strict', 'verbose', 'quiet'] as const) {
      if (flags[flag] && !flags.wait) throw new BadInputError(`--${flag} needs --wait: it is about following the task`);
    }
    if (flags.verbose && flags.quiet) throw new BadInputError('--verbose and --quiet cannot be used together');
    if (flags.gate && flags.gates === false) throw new BadInputError('--gate and --no-gates cannot be used together');
    let context: Record<string, unknown> = {};
    if (flags.context !== undefined) {
      try {
        context = parseContextJson(flags.context);
      } catch (error) {
        throw new BadInputError(`--context ${(error as Error).message}: pass a JSON object such as '{"repo":"api"}'`);
      }
    }
    const spec = specFromRequest(
      { domain, description, priority: flags.priority, timeoutS: flags.timeout, context, noMerge: flags.merge === false, model: flags.model, effort: flags.effort, fallbackModel: flags.fallbackModel, budgetUsd: flags.budget, follows: flags.continue, gates: flags.gates === false ? [] : flags.gate },
      config,
      { domain: 'domain', description: 'the description', priority: '--priority', timeoutS: '--timeout', context: '--context', noMerge: '--no-merge', model: '--model', effort: '--effort', fallbackModel: '--fallback-model', budgetUsd: '--budget', follows: '--continue', gates: '--gate' },
    );
    const follows = spec.follows;
    await using bus = await connectCli(config);
    let record: TaskRecord;
    if (follows) {
      const followed = await checkFollowUp(bus.tasks, config.network, follows, domain, '--continue');
      const sent = await bus.submitFollowUp({ ...spec, follows }, followed);
      record = sent.record;
      if (sent.waits && !flags.json) console.error(c.gray(`task ${follows} is still ${followed.status}: this follow-up waits for it to end, then resumes its conversation`));
    } else {
      record = await bus.submit(spec);
    }
    if (!flags.wait) {
      console.log(flags.json ? JSON.stringify({ id: record.id, status: record.status, domain: record.domain }) : record.id);
      return;
    }
    if (flags.json) {
      const final = await followTask(bus, record.id);
      printOutcome(final, true);
      process.exitCode = exitFor(final, flags.strict);
      return;
    }
    if (flags.quiet) console.log(record.id);
    else console.error(c.gray(`task ${record.id} sent to ${domain}; following (Ctrl-C stops following, not the task)${flags.verbose ? '' : '; --verbose for every event'}`));
    const progress = new ProgressLine().start();
    let final: TaskRecord;
    try {
      final = await printFollow(bus, record.id, { view: flags.verbose ? 'verbose' : flags.quiet ? 'quiet' : 'summary', progress });
    } finally {
      progress.stop();
    }
    // The answer, last: the task's result text, or a goal's summary of its subtasks.
    const result = finalResult(final);
    if (result && !flags.quiet) console.log(`\n${c.bold('result')}\n${result}\n`);
    printOutcome(final, false);
    process.exitCode = exitFor(final, flags.strict);
  });

  withConnection(
    program
      .command('status')
      .description("show a task's record")
      .argument('<id>', 'task id')
      .option('--json', 'print JSON (a goal includes its subtasks)')
      .option('--mermaid', "print a goal's subtask graph as a Mermaid flowchart"),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean; mermaid?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    await using bus = await connectCli(config);
    const record = await bus.tasks.get(taskId);
    const subtasks = await bus.tasks.getMany(record.children);
    // A queued task held by the daily budget or the network's pause says so.
    const waits = record.status === 'queued' ? queuedWait(await readAccessState(bus.gate)) : undefined;
    if (flags.json) {
      const thread = await bus.thread(record);
      const out = { ...record, ...(waits ? { waits } : {}), ...(subtasks.length > 0 ? { subtasks } : {}), ...(thread.length > 1 ? { thread: thread.map((t) => ({ id: t.id, status: t.status, follows: t.follows, description: t.description })) } : {}) };
      console.log(JSON.stringify(out, null, 2));
    } else if (flags.mermaid) {
      console.log(formatMermaid(record, subtasks));
    } else {
      console.log(formatRecord(record));
      if (waits) console.log(`${c.bold('waits')}      ${c.yellow(waits)}`);
      const thread = await bus.thread(record);
      if (thread.length > 1) console.log(`\n${c.bold('conversation')}\n${formatThread(thread, record.id)}`);
      if (subtasks.length > 0) console.log(`\n${c.bold('subtasks')}\n${formatTree(record, subtasks)}`);
    }
  });

  withConnection(
    program
      .command('tasks')
      .description('list tasks, newest first')
      .option('--domain <domain>', 'only this domain')
      .option('--status <status>', `only this status (${TASK_STATUSES.join(', ')})`)
      .option('-n, --limit <n>', 'at most this many (1 to 1000)', '20')
      .option('--cost', "today's spend (UTC) by domain, against DAN_DAILY_BUDGET_USD")
      .option('--json', 'print JSON'),
  ).action(async (flags: ConnectionFlags & { domain?: string; status?: string; limit: string; cost?: boolean; json?: boolean }) => {
    const config = configFrom(flags);
    const domain = flags.domain === undefined ? undefined : resolveDomain(config.templatesDir, flags.domain);
    const status = flags.status === undefined ? undefined : parseFlag(taskStatusSchema, flags.status, '--status');
    const limit = parseFlag(listLimitSchema, flags.limit, '--limit');
    await using bus = await connectCli(config);
    const state = await readAccessState(bus.gate);
    if (flags.cost) {
      const byDomain = Object.entries(state.spend).filter(([d]) => domain === undefined || d === domain).sort(([a], [b]) => a.localeCompare(b));
      const day = new Date(state.now).toISOString().slice(0, 10);
      if (flags.json) {
        console.log(JSON.stringify({ day, spentUsd: state.spentUsd, dailyBudgetUsd: state.limits.dailyBudgetUsd ?? null, byDomain: Object.fromEntries(byDomain) }, null, 2));
        return;
      }
      if (byDomain.length > 0) console.log(table(['DOMAIN', 'SPENT TODAY'], byDomain.map(([d, usd]) => [d, `$${usd.toFixed(4)}`])));
      const budget = state.limits.dailyBudgetUsd === undefined ? 'no daily budget (DAN_DAILY_BUDGET_USD)' : `of a daily budget of $${state.limits.dailyBudgetUsd.toFixed(2)}`;
      console.log(`${day} (UTC): $${state.spentUsd.toFixed(4)} spent ${budget}`);
      return;
    }
    // `budget`, or the network's pause: what holds every queued task now.
    const wait = queuedWait(state);
    const waits = wait?.startsWith('budget:') ? 'budget' : wait;
    const records = await bus.tasks.list({ domain, status, limit });
    if (flags.json) {
      console.log(JSON.stringify(records, null, 2));
    } else if (records.length === 0) {
      console.log(c.gray('no tasks'));
    } else if (status === 'needs_input') {
      console.log(table(['ID', 'DOMAIN', 'ASKED', 'QUESTION'], records.map((r) => [r.id, r.domain, ago(r.question?.askedAt ?? r.updatedAt), truncate((r.question?.question ?? '').split('\n')[0] ?? '', 100)])));
    } else if (status === 'failed' || status === 'timed_out' || status === 'cancelled') {
      // The dead-letter view: why each ended, in one line.
      console.log(table(['ID', 'DOMAIN', 'ATTEMPTS', 'ENDED', 'DESCRIPTION', 'REASON'], records.map((r) => deadLetterRow(r))));
    } else {
      console.log(table(['ID', 'DOMAIN', 'STATUS', 'AGENT', 'CREATED', 'DESCRIPTION'], records.map((r) => taskRow(r, Date.now(), waits))));
    }
  });

  withConnection(
    program
      .command('answer')
      .description('answer the question a task asked (status needs_input): its run resumes with your answer')
      .argument('<id>', 'task id')
      .argument('<text>', 'your answer (1 byte to 64 KiB)')
      .option('--json', 'print JSON'),
  ).action(async (id: string, text: string, flags: ConnectionFlags & { json?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    const answer = parseFlag(answerSchema, text, 'the answer');
    await using bus = await connectCli(config);
    const record = await bus.answer(taskId, answer);
    if (flags.json) console.log(JSON.stringify({ id: taskId, status: record.status }));
    else console.log(`answered ${taskId}: queued for ${record.domain}; its conversation resumes with your answer (dan logs ${taskId} -f follows it)`);
  });

  withConnection(
    program
      .command('retry')
      .description('start a failed, timed-out or cancelled task again (a goal: its failed and cancelled subtasks)')
      .argument('<id>', 'task id')
      .option('--json', 'print JSON'),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    await using bus = await connectCli(config);
    const { record, subtasks } = await bus.retry(taskId);
    if (flags.json) {
      console.log(JSON.stringify({ id: taskId, status: record.status, subtasks }));
      return;
    }
    const before = record.retried?.at(-1);
    const was = before ? `it had ended ${before.status} after ${before.attempts} attempt${before.attempts === 1 ? '' : 's'}` : '';
    if (subtasks.length > 0) console.log(`retrying goal ${taskId} (${was}): ${subtasks.length} subtask${subtasks.length === 1 ? '' : 's'} again: ${subtasks.join(', ')}`);
    else console.log(`retrying ${taskId} (${was}): queued for ${record.domain}, attempts reset; dan logs ${taskId} keeps the earlier ones`);
  });

  withConnection(
    program.command('cancel').description('cancel a task (an active one is stopped by its agent)').argument('<id>', 'task id').option('--json', 'print JSON'),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    await using bus = await connectCli(config);
    const outcome = await bus.cancel(taskId);
    if (flags.json) {
      console.log(JSON.stringify({ id: taskId, ...outcome }));
      return;
    }
    switch (outcome.outcome) {
      case 'cancelled':
        console.log(`cancelled ${taskId} (was ${outcome.from})`);
        break;
      case 'requested':
        console.log(`cancelling ${taskId}: asked agent ${outcome.agent ?? '(none recorded)'} to stop it; \`dan status ${taskId}\` shows when it has`);
        break;
      case 'already_finished':
        console.log(`task ${taskId} already ended ${outcome.status}; nothing to cancel`);
        break;
    }
  });
}

/** `--wait`'s exit code: 0 completed (with --strict: and no warnings), 5 waiting for the user's answer, 1 otherwise. */
function exitFor(record: TaskRecord, strict: boolean | undefined): number {
  if (record.status === 'needs_input') return EXIT.needsInput;
  const clean = record.status === 'completed' && !(strict && (record.warnings?.length ?? 0) > 0);
  return clean ? EXIT.ok : EXIT.taskNotCompleted;
}

function printOutcome(record: TaskRecord, json: boolean | undefined): void {
  if (json) {
    console.log(JSON.stringify(record, null, 2));
    return;
  }
  if (record.status === 'needs_input') {
    const options = record.question?.options?.length ? `\n  options: ${record.question.options.join(' | ')}` : '';
    console.error(`${c.magenta('needs input')} ${record.id}: ${record.question?.question ?? ''}${options}\n  answer: dan answer ${record.id} "<text>"`);
    return;
  }
  if (!isTerminal(record.status)) return;
  const warned = record.warnings && record.warnings.length > 0 ? c.yellow(` (${record.warnings.join(', ')})`) : '';
  const line = record.status === 'completed' ? `${c.green('completed')}${warned} ${c.green(record.id)}` : c.red(`${record.status} ${record.id}`);
  console.error(line + (record.error ? `: ${record.error}` : ''));
}
