import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import type { DanConfig } from '../../lib/config.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { agentEnvironment } from '../../lib/secrets.js';
import { Bus, connectRedis, installationId, Keys } from '../../lib/messaging/index.js';
import { AgentRegistry, type AgentRecord } from '../../lib/registry/index.js';
import type { Runtime } from '../../lib/runtime/index.js';
import { configFrom, connectClient, parseFlag, type ConnectionFlags } from '../context.js';
import { isLocal, startLocalRedis } from '../local-redis.js';
import { c } from '../output.js';
import { assertWebBind, startWebServer } from './serve.js';

const runtimeSchema = z.enum(['process', 'docker'], { error: 'must be process or docker' });

/**
 * How this very CLI was started, so the process runtime starts agents the same way (compiled, or from source
 * through a loader such as tsx). Paths are made absolute: agents run with the workspace as their cwd.
 */
export function selfEntry(): string[] {
  const execArgv = process.execArgv.map((arg, i, all) => {
    const previous = all[i - 1];
    if ((previous === '--import' || previous === '--loader' || previous === '--require') && !arg.startsWith('.') && !path.isAbsolute(arg)) {
      return import.meta.resolve(arg); // a bare loader name resolves from this package, not from the agent's cwd
    }
    return arg;
  });
  return [process.execPath, ...execArgv, path.resolve(process.argv[1]!)];
}

// The orchestrator, runtimes and dockerode load only for the commands that use them: the CLI starts faster.
const loadOrchestrator = () => import('../../lib/orchestrator/index.js');
const loadRuntime = () => import('../../lib/runtime/index.js');

async function makeRuntime(config: DanConfig, logger: Logger): Promise<Runtime> {
  const { createRuntime, danArgs } = await loadRuntime();
  return createRuntime(config, {
    logger,
    process: { entry: (spec) => [...selfEntry(), ...danArgs(spec)], parentEnv: process.env },
    ...(config.runtime !== 'process' ? { docker: { installation: await readInstallation(config) } } : {}),
  });
}

/** This installation's id from Redis (made on first use): the docker runtime acts only on containers labelled with it. */
async function readInstallation(config: DanConfig): Promise<string> {
  const redis = await connectRedis(config.redisUrl, { mode: 'cli', name: 'dan-installation' });
  try {
    return await installationId(redis, new Keys(config.prefix));
  } finally {
    redis.disconnect();
  }
}

/** Runs an orchestrator in the foreground until a signal or `dan down`. `env` holds the model's keys for its agents. */
async function runOrchestrator(config: DanConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const runtime = await makeRuntime(config, logger);
  const { Orchestrator } = await loadOrchestrator();
  const orchestrator = await Orchestrator.start({ config, runtime, logger, env });
  // stop() never rejects; the command awaits `exited`.
  const onSignal = (signal: NodeJS.Signals): void => {
    // Under compose (DAN_STOP_AGENTS_ON_EXIT=1) agents are not compose services: `docker compose down` would leave
    // them running on a network it then cannot remove. Their tasks go back to the queue when they stop.
    if (config.stopAgentsOnExit) {
      logger.info({ signal }, 'signal received: stopping the orchestrator and its agents');
      void orchestrator.stop('down');
    } else {
      logger.info({ signal }, 'signal received: stopping the orchestrator (agents finish and exit when idle)');
      void orchestrator.stop('stopped');
    }
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await orchestrator.exited;
  await runtime.close();
}

/** `dan orchestrator`, `dan up`, `dan down`. */
export function registerOrchestratorCommands(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program.command('orchestrator').description('run a main orchestrator in the foreground (leader election, scaler, reaper)').option('--runtime <runtime>', 'process | docker (default DAN_RUNTIME; DAN_RUNTIME=swarm for Swarm services)'),
  ).action(async (flags: ConnectionFlags & { runtime?: string }) => {
    const runtime = flags.runtime === undefined ? undefined : parseFlag(runtimeSchema, flags.runtime, '--runtime');
    // As a Swarm service (deploy/stack.yml) its secrets are a Swarm secret file, DAN_SECRETS=file:…: never its Env.
    const env = (process.env.DAN_SECRETS ?? '').startsWith('file:') ? await agentEnvironment(process.env, process.stdin) : process.env;
    const config = configFrom(flags, { DAN_RUNTIME: runtime }, env);
    const logger = createLogger({ level: config.logLevel, name: 'dan-orchestrator' });
    await runOrchestrator(config, logger, env);
  });

  withConnection(
    program
      .command('up')
      .description('run the network here: an orchestrator (and a local redis-server if none answers), agents on demand')
      .option('--runtime <runtime>', 'process (default) | docker', 'process')
      .option('--no-web', 'do not serve the dashboard, the API and /metrics (DAN_WEB_HOST:DAN_WEB_PORT)'),
  ).action(async (flags: ConnectionFlags & { runtime: string; web: boolean }) => {
    const runtime = parseFlag(runtimeSchema, flags.runtime, '--runtime');
    let config = configFrom(flags, { DAN_RUNTIME: runtime });
    if (flags.web) await assertWebBind(config);
    if (runtime === 'docker' && config.agentRedisUrl === config.redisUrl && isLocal(config.redisUrl)) {
      // Agents in containers reach this machine's Redis through the host gateway, not localhost.
      const url = new URL(config.redisUrl);
      url.hostname = 'host.docker.internal';
      config = configFrom(flags, { DAN_RUNTIME: runtime, DAN_AGENT_REDIS_URL: url.toString() });
      process.stderr.write(c.yellow(`dan up: agents reach Redis at ${url.host}; Redis must listen on an address containers reach (not only 127.0.0.1)\n`));
    }
    const logger = createLogger({ level: config.logLevel, name: 'dan-up' });
    const local = runtime === 'process' && config.startRedis ? await startLocalRedis(config, logger) : undefined;
    if (local) config = local.config;
    const redis = local?.child;
    process.stderr.write(
      c.gray(`dan up: network "${config.network}", ${runtime} runtime, Redis ${new URL(config.redisUrl).host}, workspace ${config.workspace}. Ctrl-C or \`dan down\` stops it.\n`),
    );
    // The dashboard comes up with the network; a busy port costs the dashboard, not the network.
    const web = flags.web
      ? await startWebServer(config, logger).catch((error: Error) => {
          process.stderr.write(c.yellow(`dan up: no dashboard: ${error.message} (set DAN_WEB_PORT, or pass --no-web)\n`));
          return undefined;
        })
      : undefined;
    if (web) process.stderr.write(`dan up: dashboard and API at ${c.bold(`${web.url}/`)}\n`);
    try {
      await runOrchestrator(config, logger);
    } finally {
      await web?.close();
      if (redis) {
        redis.kill('SIGTERM'); // redis-server flushes its append-only file on SIGTERM
        await new Promise((r) => redis.once('exit', r));
      }
    }
  });

  withConnection(
    program
      .command('down')
      .description('stop the orchestrators and every agent of the network')
      .option('--runtime <runtime>', 'also remove agents of this runtime directly: process | docker (default DAN_RUNTIME)')
      .option('--timeout <ms>', 'how long agents get to finish (default 20000)', '20000'),
  ).action(async (flags: ConnectionFlags & { runtime?: string; timeout: string }) => {
    const runtime = flags.runtime === undefined ? undefined : parseFlag(runtimeSchema, flags.runtime, '--runtime');
    const timeoutMs = parseFlag(
      z.coerce
        .number({ error: 'must be a number of milliseconds from 0 to 600000' })
        .int('must be a whole number of milliseconds')
        .min(0, 'must be at least 0')
        .max(600_000, 'must be at most 600000'),
      flags.timeout,
      '--timeout',
    );
    const config = configFrom(flags, { DAN_RUNTIME: runtime });
    const logger = createLogger({ level: 'warn', name: 'dan-down' });
    await using bus = await connectClient(config, (client) => Bus.connect(client, { mode: 'cli', name: 'dan-down' }));
    const report = await stopNetwork(bus, config, logger, timeoutMs);
    console.log(describeDown(report, config));
  });
}

/** What `dan down` stopped, for its one-line report. */
export interface DownReport {
  orchestrators: string[];
  agents: string[];
  /** Containers the docker runtime removed (docker runtime only). */
  containers?: number;
  /** Whether the Docker network the orchestrator created was removed (docker runtime only). */
  dockerNetwork?: 'removed' | 'kept' | 'absent';
  /** Agents still registered and alive at the end. */
  left: string[];
  /**
   * Redis went away once the orchestrators had stopped: the one `dan up` started stops with it. Not a failure:
   * everything it held is stopped too.
   */
  redisStopped: boolean;
}

/**
 * Stops every orchestrator and agent of the network: orchestrators first, so none of them replaces an agent that
 * is being stopped (they stop their own process agents on the way out), then the domain agents, which finish or
 * hand back their current task. With the docker runtime also removes the network's containers and the Docker
 * network the orchestrator created. Redis going away on the way (`dan up`'s own redis-server stops with its
 * orchestrator) ends the waiting, not the command.
 */
async function stopNetwork(bus: Bus, config: DanConfig, logger: Logger, timeoutMs: number): Promise<DownReport> {
  const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
  const agents = await registry.list();
  const report: DownReport = {
    orchestrators: agents.filter((a) => a.role === 'main').map((a) => a.id),
    agents: agents.filter((a) => a.role !== 'main').map((a) => a.id),
    left: [],
    redisStopped: false,
  };
  /** The registry, or nothing once Redis is gone (after the orchestrators were asked to stop, that is `dan up`'s). */
  const list = async (): Promise<AgentRecord[] | undefined> => {
    if (report.redisStopped) return undefined;
    try {
      return await registry.list();
    } catch (error) {
      if (bus.redis.status === 'ready') throw error;
      report.redisStopped = true;
      return undefined;
    }
  };
  const deadline = Date.now() + timeoutMs;
  const until = async (done: (live: AgentRecord[]) => boolean): Promise<void> => {
    for (;;) {
      const live = (await list())?.filter((a) => a.alive);
      if (live === undefined || done(live) || Date.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  for (const id of report.orchestrators) await bus.events().publishControl(id, { type: 'stop' });
  await until((live) => !live.some((a) => a.role === 'main'));
  if (!report.redisStopped) {
    for (const id of report.agents) await bus.events().publishControl(id, { type: 'stop' }).catch(() => undefined);
  }
  if (config.runtime === 'docker') {
    const [{ DockerRuntime }, { stopAgents }] = await Promise.all([loadRuntime(), loadOrchestrator()]);
    // Neither the network nor the workspace is made here: `down` only removes.
    const installation = await installationId(bus.redis, bus.keys);
    const docker = await DockerRuntime.create(config, { logger, installation, prepareWorkspace: false, ensureNetwork: false });
    report.containers = await stopAgents(docker, logger, timeoutMs);
    report.dockerNetwork = await docker.removeNetwork();
    await docker.close();
  } else if (config.runtime === 'swarm') {
    const [{ SwarmRuntime }, { stopAgents }] = await Promise.all([loadRuntime(), loadOrchestrator()]);
    const installation = await installationId(bus.redis, bus.keys);
    const swarm = await SwarmRuntime.create(config, { logger, installation, prepareWorkspace: false, ensureNetwork: false });
    report.containers = await stopAgents(swarm, logger, timeoutMs);
    await swarm.close();
  }
  await until((live) => live.length === 0);
  report.left = ((await list()) ?? []).filter((a) => a.alive).map((a) => a.id);
  return report;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `dan down`'s report: what stopped, what was removed, what is left. */
export function describeDown(report: DownReport, config: Pick<DanConfig, 'network' | 'redisUrl'>): string {
  const parts = [`network "${config.network}": stopped ${plural(report.orchestrators.length, 'orchestrator')} and ${plural(report.agents.length, 'agent')}`];
  if (report.containers !== undefined) parts.push(`removed ${plural(report.containers, 'container')}`);
  if (report.dockerNetwork === 'removed') parts.push(`removed the Docker network ${config.network}`);
  if (report.dockerNetwork === 'kept') parts.push(`kept the Docker network ${config.network} (compose's, or still in use)`);
  if (report.redisStopped) parts.push(`Redis at ${new URL(config.redisUrl).host} stopped with them (the redis-server \`dan up\` started)`);
  const line = parts.join('; ');
  return report.left.length > 0
    ? line + c.yellow(`; still alive: ${report.left.join(', ')} (the reaper removes them once their heartbeat lapses)`)
    : line;
}
