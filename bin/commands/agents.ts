import type { Command } from 'commander';
import { agentPause, readAccessState } from '../../lib/access-state.js';
import { describePause } from '../../lib/executor/limits.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { configFrom, connectCli, type ConnectionFlags } from '../context.js';
import { agentRow, c, table } from '../output.js';

/** `dan agents`: registered agents, with whether their heartbeat is alive. */
export function registerAgentsCommand(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(program.command('agents').description('list registered agents').option('--json', 'print JSON')).action(
    async (flags: ConnectionFlags & { json?: boolean }) => {
      const config = configFrom(flags);
      await using bus = await connectCli(config);
      const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
      const agents = (await registry.list()).sort((a, b) => a.domain.localeCompare(b.domain) || a.startedAt - b.startedAt);
      // A paused token's agents (or every agent, when the network is paused) start no CLI until the reset.
      const state = await readAccessState(bus.gate);
      const tokens = await bus.redis.hgetall(bus.keys.tokenAgents);
      const paused = new Map(
        agents.flatMap((a) => {
          const pause = a.role === 'domain' && a.alive ? agentPause(state, tokens[a.id] === undefined ? undefined : Number(tokens[a.id])) : undefined;
          return pause ? [[a.id, describePause(pause.untilMs, pause.kind)] as const] : [];
        }),
      );
      if (flags.json) {
        console.log(JSON.stringify(agents.map((a) => ({ ...a, ...(tokens[a.id] !== undefined ? { tokenIndex: Number(tokens[a.id]) } : {}), ...(paused.has(a.id) ? { paused: paused.get(a.id) } : {}) })), null, 2));
      } else if (agents.length === 0) {
        console.log(c.gray('no agents registered (the orchestrator starts them when work arrives)'));
      } else {
        console.log(table(['ID', 'ROLE', 'DOMAIN', 'STATUS', 'TASKS', 'DONE', 'RUNTIME', 'WHERE', 'STARTED'], agents.map((a) => agentRow(a, Date.now(), paused.get(a.id)))));
      }
    },
  );
}
