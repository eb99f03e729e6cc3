import path from 'node:path';
import type { Command } from 'commander';
import { scaffoldDomain, type ScaffoldedDomain } from '../../lib/domain-scaffold.js';
import { configFrom } from '../context.js';
import { c } from '../output.js';

/** `dan domain new <name>`: a working domain in one step, and what to do next for each way of running dan. */
export function registerDomainCommand(program: Command): void {
  const domain = program.command('domain').description('manage domains (a domain is a folder of templates)');
  domain
    .command('new')
    .description('create a working domain: CLAUDE.md, a worker subagent, a settings.json that lets it write')
    .argument('<name>', 'lowercase letters, digits, "_" or "-"')
    .option('--worker <name>', 'name of its worker subagent (default <name>-worker)')
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { worker?: string; json?: boolean }) => {
      const config = configFrom({});
      const made = await scaffoldDomain(config.templatesDir, name, { worker: flags.worker });
      console.log(flags.json ? JSON.stringify(made, null, 2) : describeNewDomain(made));
    });
  domain.exitOverride();
}

/** What was made, and the next steps per runtime. */
export function describeNewDomain(made: ScaffoldedDomain): string {
  const where = path.relative(process.cwd(), made.dir) || '.';
  const describe: Record<string, string> = {
    'CLAUDE.md': "the domain agent's instructions: say what the domain is for",
    [path.join('.claude', 'agents', `${made.worker}.md`)]: 'a worker subagent it delegates to',
    [path.join('.claude', 'settings.json')]: 'tool permissions: read and edit the workspace, its toolchain; no secrets, no network',
  };
  const width = Math.max(...made.files.map((f) => f.length));
  return [
    `created domain ${c.bold(made.name)} in ${where}/`,
    ...made.files.map((f) => `  ${f.padEnd(width)}  ${c.gray(describe[f] ?? '')}`),
    '',
    'next: edit CLAUDE.md, then send it a task:',
    `  dan send-task ${made.name} "..." --wait`,
    c.gray('  dan up (process runtime): picked up at once, nothing to restart.'),
    c.gray('  docker compose: the orchestrator and its agents read ./agents (mounted), nothing to rebuild; with an older'),
    c.gray('  docker-compose.yml that does not mount it: scripts/build-image.sh && docker compose up -d --force-recreate orchestrator'),
  ].join('\n');
}
