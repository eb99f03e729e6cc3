import os from 'node:os';
import type { Command } from 'commander';
import { z } from 'zod';
import { BadInputError } from '../../lib/errors.js';
import { describeGates, gateNameSchema, gatesClear } from '../../lib/gates.js';
import { taskIdSchema } from '../../lib/task.js';
import { configFrom, connectCli, EXIT, parseFlag, type ConnectionFlags } from '../context.js';
import { c } from '../output.js';
import { mergeKept, taskWithBranch } from './git.js';

const reasonSchema = z.string().trim().min(1, 'must not be empty').max(1000, 'must be at most 1000 characters');

/** `dan waive`: passes a failed review gate by hand, recording who and why, and lets the merge go on. */
export function registerReviewCommands(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('waive')
      .description("pass a task's failed review gate by hand (who and why are recorded); when no gate fails any more, its branch merges")
      .argument('<id>', 'task id')
      .requiredOption('--gate <name>', 'the gate to pass')
      .requiredOption('--reason <text>', 'why it may merge anyway (kept on the record)'),
  ).action(async (id: string, flags: ConnectionFlags & { gate: string; reason: string }) => {
    const config = configFrom(flags);
    const taskId = parseFlag(taskIdSchema, id, 'task id');
    const gate = parseFlag(gateNameSchema, flags.gate, '--gate');
    const reason = parseFlag(reasonSchema, flags.reason, '--reason');
    const by = process.env.DAN_USER || process.env.USER || os.userInfo().username;
    await using bus = await connectCli(config);
    const record = await bus.tasks.get(taskId);
    const reviews = record.reviews ?? [];
    const state = reviews.find((g) => g.gate === gate);
    if (!state) throw new BadInputError(`task ${taskId} has no ${gate} gate${reviews.length ? ` (its gates: ${reviews.map((g) => g.gate).join(', ')})` : ''}`);
    if (state.state !== 'fail') throw new BadInputError(`the ${gate} gate of task ${taskId} is ${state.state === 'pending' ? 'still running' : state.state === 'pass' ? 'passed' : 'waived already'}: only a failed gate is waived`);
    if (record.status !== 'failed' || record.reason !== 'review') throw new BadInputError(`task ${taskId} is ${record.status}${record.reason ? ` (${record.reason})` : ''}: only a task that failed its review is waived`);
    const withBranch = await taskWithBranch(bus, taskId);
    // What the gates say, the waiver on them, is recorded before anything merges.
    const waived = reviews.map((g) => (g.gate === gate ? { ...g, state: 'waived' as const, waived: { by, reason, at: Date.now() } } : g));
    await bus.tasks.updateFields(taskId, { reviews: JSON.stringify(waived) });
    await bus.logs.append(taskId, [{ type: 'info', text: `the ${gate} gate was waived by ${by}: ${reason}` }]);
    console.error(c.gray(`gates: ${describeGates(waived)}`));
    if (!gatesClear(waived)) {
      console.log(`waived ${gate}; task ${taskId} still fails ${waived.filter((g) => g.state === 'fail').map((g) => g.gate).join(', ')}: waive ${waived.length > 1 ? 'those' : 'it'} too to merge`);
      process.exitCode = EXIT.taskNotCompleted;
      return;
    }
    const merged = await mergeKept(bus, config, withBranch);
    if (merged !== 'merged') {
      process.exitCode = EXIT.taskNotCompleted;
      return;
    }
    const moved = await bus.tasks.transition(taskId, 'completed', { from: ['failed'], reopen: true, text: `completed: review waived by ${by}`, fields: { reason: 'review waived' }, del: ['error'] });
    if (moved.outcome !== 'ok') console.error(c.yellow(`task ${taskId} merged but stays ${moved.from ?? 'as it was'}: it changed meanwhile`));
  });
}
