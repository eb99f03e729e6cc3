import type { Command } from 'commander';
import { serveDanMcp } from '../../lib/mcp/dan-mcp-server.js';

/** `dan mcp`: dan's stdio MCP server (tool ask_user), which every run of an agent is given as the server `dan`. */
export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description("dan's MCP server on stdio (tool ask_user); agents give it to every run, you do not run it yourself")
    .action(async () => {
      await serveDanMcp(process.env.DAN_QUESTION_FILE, process.env.npm_package_version ?? '0.1.0');
    });
}
