import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { z } from 'zod';
import { BadInputError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { configFrom, parseFlag, type ConnectionFlags } from '../context.js';

/** A whole number flag within the range its variable allows (lib/config.ts), with a message naming the flag. */
const wholeNumber = (min: number, max: number, unit: string) =>
  z.coerce
    .number({ error: `must be a whole number of ${unit} from ${min} to ${max}` })
    .int(`must be a whole number of ${unit}`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

/** `dan agent --domain <name>`: a domain agent in the foreground (what every agent container runs). */
export function registerAgentCommand(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('agent')
      .description("run a domain agent in the foreground: takes the domain's tasks and runs Claude Code for each")
      .option('-d, --domain <name>', 'the domain (a folder under agents/domain-templates/; default DOMAIN_TYPE)')
      .option('--id <id>', 'agent id (default AGENT_ID or a new one)')
      .option('--idle-timeout <ms>', 'exit after this long without work (default DAN_IDLE_TIMEOUT_MS)')
      .option('--concurrency <n>', 'tasks at once (default DAN_AGENT_CONCURRENCY)'),
  ).action(async (flags: ConnectionFlags & { domain?: string; id?: string; idleTimeout?: string; concurrency?: string }) => {
    // Flags are checked here, so a bad one is named as the user wrote it, not as the variable it overrides.
    const idleTimeout = flags.idleTimeout === undefined ? undefined : parseFlag(wholeNumber(100, 86_400_000, 'milliseconds'), flags.idleTimeout, '--idle-timeout');
    const concurrency = flags.concurrency === undefined ? undefined : parseFlag(wholeNumber(1, 64, 'tasks'), flags.concurrency, '--concurrency');
    // Secrets (the Redis URL, the model's keys) come on stdin when a runtime started this agent: never in its Env.
    const { agentEnvironment } = await import('../../lib/secrets.js');
    const env = await agentEnvironment(process.env, process.stdin);
    const config = configFrom(flags, {
      DOMAIN_TYPE: flags.domain,
      AGENT_ID: flags.id,
      DAN_IDLE_TIMEOUT_MS: idleTimeout,
      DAN_AGENT_CONCURRENCY: concurrency,
    }, env);
    const domain = config.domainType;
    if (!domain) throw new BadInputError('dan agent needs a domain: pass --domain <name> or set DOMAIN_TYPE');
    const agentId = config.agentId ?? `${domain}-${randomBytes(4).toString('hex')}`;
    const logger = createLogger({ level: config.logLevel, name: 'dan-agent' });
    const { DomainAgent } = await import('../../lib/agent/index.js');
    // A signal may come while the agent is still starting (a `dan down` right after a spawn): remember it and
    // stop as soon as the agent exists, so it deregisters instead of dying registered.
    let stopRequested = false;
    let agent: Awaited<ReturnType<typeof DomainAgent.start>> | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'signal received: finishing the current task within the grace period');
      stopRequested = true;
      void agent?.stop('stopped'); // never rejects; the command awaits `exited`
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    agent = await DomainAgent.start({ config, domain, agentId, env, logger });
    if (stopRequested) void agent.stop('stopped'); // as above
    const reason = await agent.exited;
    process.exitCode = reason === 'reaped' ? 1 : 0;
  });
}
