import type { Bus, Redis } from '../../lib/messaging/index.js';
import { AgentRegistry } from '../../lib/registry/index.js';
import { runDan } from '../helpers/cli.js';
import { DanProcess } from '../helpers/dan-process.js';
import { openNetwork, type TestNetwork } from '../helpers/network.js';
import { killQuietly } from '../helpers/processes.js';
import { StandInWorkspace } from '../helpers/stand-in-workspace.js';

export interface StandInNetworkOptions {
  /** Names the network (`dan-<label>-…`). */
  label: string;
  /** The stand-in CLI's sleep bounds. */
  workspace: { minMs: number; maxMs: number };
  /** Settings of the network's `dan` processes (timings, limits), on top of what joins them to it. */
  settings: Record<string, string>;
  /** The Redis the network lives on. @default the test Redis */
  redisUrl?: string;
}

/**
 * A network whose `dan` processes the test starts as children (`start`), running the stand-in CLI in a
 * workspace of their own. `env` holds what a `dan` process needs to join it. `close()` leaves nothing behind.
 */
export class StandInNetwork {
  private readonly processes: DanProcess[] = [];

  private constructor(
    readonly net: TestNetwork,
    readonly ws: StandInWorkspace,
    readonly env: Record<string, string>,
  ) {}

  static async open(options: StandInNetworkOptions): Promise<StandInNetwork> {
    const ws = await StandInWorkspace.create(options.workspace);
    try {
      const net = await openNetwork(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}, options.label);
      const env = { REDIS_URL: net.config.redisUrl, DAN_NETWORK: net.network, ...ws.settings, DAN_LOG_LEVEL: 'info', ...options.settings };
      return new StandInNetwork(net, ws, env);
    } catch (error) {
      await ws.remove();
      throw error;
    }
  }

  get bus(): Bus {
    return this.net.bus;
  }

  get redis(): Redis {
    return this.net.redis;
  }

  /** `dan <args>` on this network, `extra` on top of its settings; `close()` stops it. */
  start(args: string[], extra: Record<string, string> = {}): DanProcess {
    const child = DanProcess.start(args, { ...this.env, ...extra });
    this.processes.push(child);
    return child;
  }

  /**
   * Stops everything that ran on the network and removes it. With `down`, `dan down` first asks every agent and
   * orchestrator to stop, as a user would. Then the processes the test started, the last first (SIGTERM, then
   * SIGKILL after `graceMs`), and the agents they spawned: those run in process groups of their own and can
   * outlive their orchestrator, so they are killed by the pids they had registered.
   */
  async close(options: { graceMs?: number; down?: boolean } = {}): Promise<void> {
    const agents = await new AgentRegistry(this.redis, this.bus.keys, { heartbeatTtlMs: this.net.config.heartbeatTtlMs }).list().catch(() => []);
    if (options.down) await runDan(['down', '--timeout', '5000'], { ...this.env, DAN_LOG_LEVEL: 'silent' }).catch(() => undefined);
    for (const child of [...this.processes].reverse()) await child.stop(options.graceMs ?? 10_000);
    for (const agent of agents) if (agent.pid && agent.role === 'domain') killQuietly(agent.pid);
    await this.remove();
  }

  /** Removes the network's keys and the workspace (its processes are the caller's to stop). */
  async remove(): Promise<void> {
    await this.net.cleanup();
    await this.ws.remove();
  }
}
