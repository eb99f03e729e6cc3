import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { z } from 'zod';
import { BadInputError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { configFrom, parseFlag } from '../context.js';

const promptSchema = z.string({ error: 'is not set' }).min(1, 'is empty');
const timeoutSchema = z.coerce
  .number({ error: 'must be a whole number of milliseconds' })
  .int('must be a whole number of milliseconds')
  .min(1000, 'must be at least 1000')
  .max(86_400_000, 'must be at most 86400000');

/**
 * `dan planner`: one sandboxed planning run, what the orchestrator spawns through its runtime for a goal (its
 * own container, or its own process with a clean environment). Reads the prompt from DAN_PLANNER_PROMPT, runs
 * Claude Code with the main orchestrator's read-only permissions, prints JSON lines on stdout, exits.
 */
export function registerPlannerCommand(program: Command): void {
  program
    .command('planner', { hidden: true })
    .description('run one planning run for the orchestrator (prints JSON lines; started by the runtime, not by hand)')
    .action(async () => {
      if (process.env.AGENT_ROLE !== 'planner') {
        throw new BadInputError('dan planner is started by the orchestrator through its runtime (AGENT_ROLE=planner); send a goal with dan send-task main "..."');
      }
      const prompt = parseFlag(promptSchema, process.env.DAN_PLANNER_PROMPT, 'DAN_PLANNER_PROMPT');
      const timeoutMs = parseFlag(timeoutSchema, process.env.DAN_PLANNER_TIMEOUT_MS ?? '600000', 'DAN_PLANNER_TIMEOUT_MS');
      const config = configFrom({});
      const agentId = config.agentId ?? `planner-${randomBytes(4).toString('hex')}`;
      const logger = createLogger({ level: config.logLevel, name: 'dan-planner' }).child({ agentId });
      const controller = new AbortController();
      const onSignal = (signal: NodeJS.Signals): void => {
        logger.info({ signal }, 'signal received: stopping the planning run');
        controller.abort('cancelled');
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      // Nobody reads the answer any more (the orchestrator that started this process died): stop spending.
      process.stdout.on('error', () => controller.abort('the orchestrator stopped reading'));
      // The model's keys arrive on stdin (DAN_SECRETS=stdin), never in this process's environment.
      const { agentEnvironment } = await import('../../lib/secrets.js');
      const env = await agentEnvironment(process.env, process.stdin);
      const { runPlanning } = await import('../../lib/orchestrator/planning-run.js');
      await runPlanning({
        config,
        env,
        agentId,
        prompt,
        timeoutMs,
        signal: controller.signal,
        write: (line) => process.stdout.write(`${line}\n`),
        logger,
      });
    });
}
