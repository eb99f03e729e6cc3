#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { DanError } from '../lib/errors.js';
import { registerAgentCommand } from './commands/agent.js';
import { registerAgentsCommand } from './commands/agents.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerGitCommands } from './commands/git.js';
import { registerReviewCommands } from './commands/review.js';
import { registerDomainCommand } from './commands/domain.js';
import { registerLogsCommand } from './commands/logs.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerOrchestratorCommands } from './commands/orchestrator.js';
import { registerPlannerCommand } from './commands/planner.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTaskCommands } from './commands/tasks.js';
import { EXIT, exitCodeFor } from './context.js';
import { cErr } from './output.js';

/** Adds the connection flags every Redis-talking command accepts. */
function withConnection(cmd: Command): Command {
  return cmd
    .addOption(new Option('-r, --redis-url <url>', 'Redis URL (default REDIS_URL or redis://localhost:6379)'))
    .addOption(new Option('--network <name>', 'network name: key prefix and container label (default DAN_NETWORK or dan)'));
}

function fail(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  const code = exitCodeFor(error);
  process.stderr.write(`${cErr.red('dan:')} ${message}\n`);
  if (!(error instanceof DanError) && process.env.DAN_DEBUG) console.error(error);
  process.exit(code);
}

export function buildProgram(): Command {
  const program = new Command('dan')
    .description('dan, the distributed agent network: Claude Code agents in containers on a Redis bus')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`${cErr.red('dan:')} ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
    });
  registerTaskCommands(program, withConnection);
  registerGitCommands(program, withConnection);
  registerReviewCommands(program, withConnection);
  registerLogsCommand(program, withConnection);
  registerAgentsCommand(program, withConnection);
  registerAgentCommand(program, withConnection);
  registerOrchestratorCommands(program, withConnection);
  registerDoctorCommand(program, withConnection);
  registerServeCommand(program, withConnection);
  registerDomainCommand(program);
  registerPlannerCommand(program);
  registerMcpCommand(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.badInput);
    }
    fail(error);
  }
}

await main(process.argv);
