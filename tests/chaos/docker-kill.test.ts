import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type DanConfig } from '../../lib/config.js';
import { createLogger } from '../../lib/log.js';
import { Bus, installationId } from '../../lib/messaging/index.js';
import { Orchestrator } from '../../lib/orchestrator/index.js';
import { DockerRuntime, createDockerClient, type Docker } from '../../lib/runtime/index.js';
import { TEST_AGENT_IMAGE, ensureTestAgentImage, removeDanNetwork } from '../helpers/docker.js';
import { LogCapture } from '../helpers/log-capture.js';
import { deleteNetworkKeys, eventually, uniqueNetwork } from '../helpers/network.js';
import { RedisServer } from '../helpers/redis-server.js';
import { StandInWorkspace } from '../helpers/stand-in-workspace.js';
import { audit, killAgentsWhile, registeredOf, report, statuses, submitTasks, waitAllTerminal, waitQueuesEmpty } from './harness.js';

// The same chaos on the Docker runtime: agents are containers of the agent image, killed with `docker kill`
// (SIGKILL to everything in them). Smaller than the process-runtime run (60 tasks) to keep CI time down.
//
// How the stand-in CLI gets into the containers: the image has only /app, so the stand-in is copied into the
// workspace (bind-mounted at /workspace) and the orchestrator names it for its agents with
// DAN_AGENT_CLAUDE_BIN=/workspace/.standin/claude (lib/orchestrator/agent-env.ts passes it as the agents'
// DAN_CLAUDE_BIN). Agents reach this test's own Redis, bound to the Docker bridge's gateway, as
// host.docker.internal.

const TASKS = 60;
const MAX_KILLS = 10;
const image = TEST_AGENT_IMAGE;
const docker: Docker = createDockerClient();

/** Why the Docker case cannot run here, or undefined when it can. In CI (CI=true) Docker is required. */
async function unavailable(): Promise<string | undefined> {
  try {
    await docker.ping();
  } catch (error) {
    return `no Docker engine answers (${(error as Error).message.split('\n')[0]}): start dockerd (scripts/ci-docker.sh)`;
  }
  try {
    await ensureTestAgentImage(docker, process.env.DAN_BASE_IMAGE);
    return undefined;
  } catch (error) {
    return `the agent image ${image} cannot be built: ${(error as Error).message.split('\n')[0]}`;
  }
}

const reason = await unavailable();
if (reason && process.env.CI === 'true') throw new Error(`the Docker chaos test must run in CI: ${reason}`);
if (reason) console.warn(`[chaos] Docker runtime case not run: ${reason}`);

describe.runIf(!reason)('agents killed with docker kill on the Docker runtime', () => {
  const network = uniqueNetwork('chaos-docker');
  let redis: RedisServer;
  let ws: StandInWorkspace;
  let config: DanConfig;
  let bus: Bus;
  let runtime: DockerRuntime;
  let orchestrator: Orchestrator;
  const logs = new LogCapture();

  beforeAll(async () => {
    const bridge = (await docker.getNetwork('bridge').inspect()) as { IPAM?: { Config?: Array<{ Gateway?: string }> } };
    const gateway = bridge.IPAM?.Config?.find((c) => c.Gateway)?.Gateway ?? '172.17.0.1';
    redis = await RedisServer.start({ bind: ['127.0.0.1', gateway], password: randomBytes(12).toString('hex') });
    ws = await StandInWorkspace.create({ minMs: 200, maxMs: 500, forContainers: true });
    config = loadConfig({
      REDIS_URL: redis.url(),
      DAN_AGENT_REDIS_URL: redis.url('host.docker.internal'),
      DAN_NETWORK: network,
      DAN_RUNTIME: 'docker',
      DAN_AGENT_IMAGE: image,
      ...ws.containerSettings,
      DAN_AGENT_MEMORY_MB: '256',
      DAN_AGENT_CPUS: '0.5',
      DAN_HEARTBEAT_MS: '500',
      DAN_HEARTBEAT_TTL_MS: '3000',
      DAN_REAPER_MS: '500',
      DAN_IDLE_TIMEOUT_MS: '60000',
      DAN_SHUTDOWN_GRACE_MS: '1000',
      DAN_MAX_AGENTS: '6',
      DAN_MAX_AGENTS_PER_DOMAIN: '2',
      DAN_LOG_LEVEL: 'info',
    });
    bus = await Bus.connect(config, { name: 'chaos-docker-test' });
    runtime = await DockerRuntime.create(config, { installation: await installationId(bus.redis, bus.keys), logger: createLogger({ level: 'info', destination: logs }) });
    orchestrator = await Orchestrator.start({ config, runtime, logger: createLogger({ level: 'info', destination: logs }), env: {} });
  });

  afterAll(async () => {
    await orchestrator?.stop('down');
    await removeDanNetwork(docker, network);
    if (config) await deleteNetworkKeys(config.redisUrl, config.prefix).catch(() => undefined);
    await bus?.close();
    await redis?.stop();
    await ws?.remove();
  });

  it('ends every task terminal and records each completion once', async () => {
    const ids = await submitTasks(bus, TASKS);
    const killed = await killAgentsWhile(
      () =>
        waitAllTerminal(bus, ids, 240_000).catch((error: Error) => {
          throw new Error(`${error.message}\norchestrator:\n${logs.lines.slice(-30).join('\n')}`);
        }),
      {
        runtime,
        bus,
        max: MAX_KILLS,
        // Once the first agents have registered, kill one every 1-2 s.
        ready: () => eventually(async () => (await bus.redis.scard(bus.keys.agents)) >= 3, { what: 'the first agents', timeoutMs: 60_000 }).catch(() => undefined),
        kill: (victim) =>
          docker
            .getContainer(victim.ref)
            .kill()
            .then(() => true)
            .catch(() => false), // it exited or was removed meanwhile
        pauseMs: [1000, 2000],
      },
    );
    await waitQueuesEmpty(bus);
    const result = await audit(bus, ids);
    expect(result.problems).toEqual([]);
    expect(killed.length).toBeGreaterThan(0);

    // Killed containers of registered agents are reaped (record dead) and removed by the reaper.
    const registered = await registeredOf(bus, killed);
    await eventually(
      async () => {
        for (const id of registered) if ((await bus.redis.hget(bus.keys.agent(id), 'status')) !== 'dead') return false;
        const handles = await runtime.list();
        return registered.every((id) => !handles.some((h) => h.agentId === id));
      },
      { what: 'the killed agents to be reaped and their containers removed', timeoutMs: 60_000, intervalMs: 500 },
    );

    const executions = await ws.executions();
    const ran = new Set(executions.map((e) => e.key));
    const now = await statuses(bus.redis, bus.keys.prefix, ids);
    expect(ids.filter((id, i) => now[i] === 'completed' && !ran.has(id))).toEqual([]);
    const duplicates = await ws.duplicates();
    report('docker runtime, docker kill', {
      tasks: TASKS,
      ...result.byStatus,
      killed: killed.length,
      killedBeforeRegistering: killed.length - registered.length,
      spawned: orchestrator.stats.spawned,
      reaped: orchestrator.stats.reaped,
      executions: executions.length,
      ranTwiceOrMore: duplicates.size,
      extraRuns: [...duplicates.values()].reduce((sum, n) => sum + n - 1, 0),
    });
  }, 300_000);
});
