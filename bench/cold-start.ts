import { randomBytes } from 'node:crypto';
import { loadConfig, type DanConfig } from '../lib/config.js';
import { silentLogger } from '../lib/log.js';
import { Bus, installationId } from '../lib/messaging/index.js';
import { Orchestrator } from '../lib/orchestrator/index.js';
import { AgentRegistry } from '../lib/registry/index.js';
import { DockerRuntime, LABELS, createDockerClient } from '../lib/runtime/index.js';
import { newTaskId, taskSpecSchema } from '../lib/task.js';
import { removeDanNetwork } from '../tests/helpers/docker.js';
import { deleteNetworkKeys } from '../tests/helpers/network-keys.js';
import { StandInWorkspace, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import { percentile, type Figure } from './stats.js';

/**
 * Cold start on the Docker runtime: a task for a domain with no agent, from `send` to the task being active
 * (an agent container started, registered, took it), p50 of `rounds`; the orchestrator runs in this process
 * with its default timings. Then the same with one warm agent per domain (DAN_MIN_AGENTS_PER_DOMAIN=1).
 * The stand-in CLI is mounted through the workspace (DAN_AGENT_CLAUDE_BIN), as in the chaos tests.
 */
export async function benchColdStart(redis: BenchRedis, image: string, rounds: number): Promise<Figure[]> {
  if (!redis.containerUrl) throw new Error('agent containers cannot reach this Redis: set DAN_AGENT_REDIS_URL with REDIS_URL');
  const cold = await measure(redis, image, rounds, { minAgents: 0 });
  const warm = await measure(redis, image, rounds, { minAgents: 1 });
  const coldP50 = percentile(cold.latencies, 50);
  const warmP50 = percentile(warm.latencies, 50);
  return [
    {
      bench: 'cold start',
      metric: `send → active, no agent running (Docker), p50 of ${rounds}`,
      value: coldP50,
      unit: 'ms',
      comparison: `of which container create+start p50 ${percentile(cold.containerStart, 50)} ms, start → agent registered p50 ${percentile(cold.boot, 50)} ms; max ${Math.max(...cold.latencies)} ms`,
      target: '< 2 s (peers take about 15 s to start a sandbox)',
      met: coldP50 < 2000,
    },
    {
      bench: 'cold start',
      metric: `send → active, one warm agent (DAN_MIN_AGENTS_PER_DOMAIN=1), p50 of ${rounds}`,
      value: warmP50,
      unit: 'ms',
      comparison: `max ${Math.max(...warm.latencies)} ms`,
      target: '< 50 ms',
      met: warmP50 < 50,
    },
  ];
}

interface Measured {
  latencies: number[];
  /** Orchestrator's spawn call → container running. */
  containerStart: number[];
  /** Container running → the agent registered. */
  boot: number[];
}

async function measure(redis: BenchRedis, image: string, rounds: number, options: { minAgents: number }): Promise<Measured> {
  const network = `dan-bench-cold-${randomBytes(3).toString('hex')}`;
  const ws = await StandInWorkspace.create({ minMs: 0, maxMs: 0, forContainers: true });
  const config: DanConfig = loadConfig({
    REDIS_URL: redis.url,
    DAN_AGENT_REDIS_URL: redis.containerUrl,
    DAN_NETWORK: network,
    DAN_RUNTIME: 'docker',
    DAN_AGENT_IMAGE: image,
    ...ws.containerSettings,
    DAN_MIN_AGENTS_PER_DOMAIN: String(options.minAgents),
    // Cold rounds need the agent gone before the next one: it exits soon after its task.
    DAN_IDLE_TIMEOUT_MS: options.minAgents === 0 ? '500' : '3600000',
    DAN_LOG_LEVEL: 'warn',
  });
  const docker = createDockerClient();
  const bus = await Bus.connect(config, { name: 'bench-cold' });
  const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
  const runtime = await DockerRuntime.create(config, { installation: await installationId(bus.redis, bus.keys), logger: silentLogger() });
  const orchestrator = await Orchestrator.start({ config, runtime, logger: silentLogger(), env: {} });
  const out: Measured = { latencies: [], containerStart: [], boot: [] };
  const liveBackend = async () => (await registry.list()).filter((a) => a.role === 'domain' && a.domain === 'backend' && a.alive);
  try {
    if (options.minAgents > 0) await eventually(async () => (await liveBackend()).length > 0, { what: 'the warm agent', timeoutMs: 120_000, intervalMs: 100 });
    for (let i = 0; i < rounds + 1; i++) {
      if (options.minAgents === 0) {
        // Cold: no backend agent registered, no container left.
        await eventually(async () => (await liveBackend()).length === 0 && (await runtime.list()).every((h) => h.domain !== 'backend'), { what: 'the previous agent to leave', timeoutMs: 120_000, intervalMs: 100 });
      }
      const id = newTaskId();
      const t0 = Date.now();
      await bus.submit(taskSpecSchema.parse({ domain: 'backend', description: `cold ${i} standin:key=${id}`, timeoutS: 60, maxAttempts: 1 }), { id });
      const record = await eventually(async () => {
        const r = await bus.tasks.get(id);
        return r.status === 'completed' || r.status === 'failed' ? r : undefined;
      }, { what: `task ${i} to end`, timeoutMs: 120_000, intervalMs: 20 });
      if (record.status !== 'completed') throw new Error(`cold start task ended ${record.status}: ${record.error}`);
      if (i === 0) continue; // the first round pays one-time costs (image pages into the cache)
      out.latencies.push(record.startedAt! - t0);
      if (options.minAgents === 0) {
        const agent = await registry.get(record.agent!);
        const created = await containerCreated(docker, network, record.agent!);
        if (agent && created) {
          out.containerStart.push(created.started - t0);
          out.boot.push(agent.startedAt - created.started);
        }
      }
    }
  } finally {
    await orchestrator.stop('down');
    await removeDanNetwork(docker, network);
    await deleteNetworkKeys(config.redisUrl, config.prefix);
    await bus.close();
    await ws.remove();
  }
  return out;
}

/** When the agent's container started (Docker's own record), if it is still there. */
async function containerCreated(docker: ReturnType<typeof createDockerClient>, network: string, agentId: string): Promise<{ started: number } | undefined> {
  const [info] = await docker.listContainers({ all: true, filters: { label: [`${LABELS.network}=${network}`, `${LABELS.agentId}=${agentId}`] } });
  if (!info) return undefined;
  const inspected = await docker.getContainer(info.Id).inspect();
  return { started: Date.parse(inspected.State.StartedAt) };
}
