import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import type { Bus, Redis } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { ProcessRuntime, danArgs } from '../../lib/runtime/index.js';
import { danEntry } from '../helpers/cli.js';
import { LogCapture } from '../helpers/log-capture.js';
import { testConfig } from '../helpers/network.js';
import type { StandInWorkspace } from '../helpers/stand-in-workspace.js';
import { StandInNetwork, type StandInNetworkOptions } from './stand-in-network.js';

export interface OrchestratedNetworkOptions extends StandInNetworkOptions {
  /** How much the orchestrator and its agents log. */
  logLevel: 'info' | 'trace';
  /** The orchestrator's own environment, which its agents get the model variables from. */
  env: Record<string, string | undefined>;
}

/**
 * A network run by a real Orchestrator in this process, on the process runtime: it spawns `dan agent`
 * processes that run the stand-in CLI, each logging to a file in `logDir`. Its log lines are in `logs`.
 */
export class OrchestratedNetwork {
  private constructor(
    private readonly network: StandInNetwork,
    readonly logs: LogCapture,
    readonly config: DanConfig,
    readonly logDir: string,
    readonly runtime: ProcessRuntime,
    readonly orchestrator: Orchestrator,
  ) {}

  static async start(options: OrchestratedNetworkOptions): Promise<OrchestratedNetwork> {
    const network = await StandInNetwork.open({ ...options, settings: { ...options.settings, DAN_LOG_LEVEL: options.logLevel } });
    const config = testConfig(network.net.network, network.env);
    let logDir: string | undefined;
    let runtime: ProcessRuntime | undefined;
    try {
      logDir = await mkdtemp(path.join(os.tmpdir(), 'dan-chaos-logs-'));
      runtime = await ProcessRuntime.create(config, { entry: (spec) => [...danEntry(), ...danArgs(spec)], parentEnv: process.env, logDir });
      const logs = new LogCapture();
      const orchestrator = await Orchestrator.start({ config, runtime, logger: createLogger({ level: options.logLevel, destination: logs }), env: options.env });
      return new OrchestratedNetwork(network, logs, config, logDir, runtime, orchestrator);
    } catch (error) {
      await runtime?.close();
      await network.remove();
      if (logDir) await rm(logDir, { recursive: true, force: true });
      throw error;
    }
  }

  get net(): StandInNetwork['net'] {
    return this.network.net;
  }

  get bus(): Bus {
    return this.network.bus;
  }

  get redis(): Redis {
    return this.network.redis;
  }

  get ws(): StandInWorkspace {
    return this.network.ws;
  }

  /** Stops the orchestrator and every agent of its runtime, and removes the network, its workspace and the agents' logs. */
  async close(): Promise<void> {
    await this.orchestrator.stop('down');
    await this.runtime.stopAll({ timeoutMs: 2000 });
    await this.runtime.close();
    await this.network.remove();
    await rm(this.logDir, { recursive: true, force: true });
  }
}
