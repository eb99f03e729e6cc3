import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { LABELS, type AgentHandle, type AgentSpec, type Runtime } from './runtime.js';
import { createDockerClient, dockerStatus, pingDocker, translateDockerError } from './docker-client.js';
import { demuxDockerLogs } from './docker-logs.js';
import { ensureWorkspace } from './docker-setup.js';
import { containerName } from './container-spec.js';
import { agentServiceSpec, type SecretRef, type ServiceSettings } from './swarm-spec.js';
import { domainConstraints, ensureOverlayNetwork, ensureSwarmManager } from './swarm-setup.js';
import type { DockerRuntimeConfig, DockerRuntimeOptions } from './docker-runtime.js';
import { RuntimeError } from './runtime-errors.js';
import { latestTask, LIVE_STATES, newest, serviceTasks, type TaskInfo } from './swarm-tasks.js';
import { secretsLine, splitSecrets } from '../secrets.js';

/** The parts of the configuration the swarm runtime uses: the docker runtime's, and the agents' stop grace. */
export type SwarmRuntimeConfig = DockerRuntimeConfig & Partial<Pick<DanConfig, 'shutdownGraceMs'>>;

export interface SwarmRuntimeOptions extends DockerRuntimeOptions {
  /** How long spawn waits for the agent's task to run (scheduled, image present, started). @default 120000 */
  startTimeoutMs?: number;
  /** How often spawn, stop and output look at a task's state. @default 250 */
  pollMs?: number;
}

/**
 * Agents as Docker Swarm services (README, Across machines): one service of one replica per agent that never
 * restarts by itself, on the network's overlay network, from the same run as the docker runtime's containers
 * (container-spec.ts). Its secrets go in a Swarm secret of its own, created before the service, mounted for
 * the agent's uid alone and removed with the service. Services and secrets carry the `dan.network`,
 * `dan.installation` and `dan.agent-id` labels, and every lookup filters on them.
 */
export class SwarmRuntime implements Runtime {
  readonly kind = 'swarm' as const;

  constructor(
    private readonly docker: Docker,
    private readonly settings: ServiceSettings & { logTail: number; startTimeoutMs: number; pollMs: number },
    private readonly logger: Logger,
  ) {}

  /** Connects to a Swarm manager, ensures the overlay network and (unless told not to) the workspace. */
  static async create(config: SwarmRuntimeConfig, options: SwarmRuntimeOptions): Promise<SwarmRuntime> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.installation)) {
      throw new RuntimeError(`invalid installation id "${options.installation}"`, { details: { installation: options.installation } });
    }
    const docker = options.docker ?? createDockerClient({ host: options.dockerHost });
    const logger = (options.logger ?? silentLogger()).child({ component: 'swarm-runtime', network: config.network });
    const image = options.image ?? config.images.agent;
    await pingDocker(docker);
    await ensureSwarmManager(docker);
    if (options.ensureNetwork ?? true) await ensureOverlayNetwork(docker, config.network, logger);
    // On this node only: a volume or folder on other nodes is theirs (a workspace across nodes is a git remote).
    if (options.prepareWorkspace ?? true) await ensureWorkspace(docker, { network: config.network, workspaceVolume: config.workspaceVolume, image, logger });
    return new SwarmRuntime(
      docker,
      {
        network: config.network,
        installation: options.installation,
        image,
        cmd: options.cmd,
        agentRedisUrl: config.agentRedisUrl,
        workspaceVolume: config.workspaceVolume,
        templatesVolume: config.templatesVolume,
        credentialFiles: config.credentialFiles ?? [],
        memoryMb: config.agentMemoryMb,
        cpus: config.agentCpus,
        pidsLimit: options.pidsLimit ?? 512,
        stopGraceMs: config.shutdownGraceMs ?? 10_000,
        logTail: options.logTail ?? 200,
        startTimeoutMs: options.startTimeoutMs ?? 120_000,
        pollMs: options.pollMs ?? 250,
      },
      logger,
    );
  }

  async spawn(spec: AgentSpec): Promise<AgentHandle> {
    const { network } = this.settings;
    if ((await this.services(spec.agentId)).length > 0) {
      throw new RuntimeError(`agent ${spec.agentId} already has a service in network ${network}`, { details: { agentId: spec.agentId, network } });
    }
    const secret = await this.createSecret(spec);
    let service: { id: string; name: string };
    try {
      service = await this.createService(spec, secret);
      await this.waitStarted(service.id, spec.agentId);
    } catch (error) {
      await this.remove(spec.agentId).catch((cleanup: unknown) => this.logger.warn({ err: cleanup, agentId: spec.agentId }, 'cleanup after a failed spawn failed'));
      throw error;
    }
    this.logger.info({ agentId: spec.agentId, service: service.name, domain: spec.domain }, 'agent service started');
    return { agentId: spec.agentId, role: spec.role, domain: spec.domain, runtime: 'swarm', name: service.name, ref: service.id, running: true };
  }

  /** The agent's secrets (as the docker runtime writes them on stdin) as a Swarm secret of its own. */
  private async createSecret(spec: AgentSpec): Promise<SecretRef> {
    const values: Record<string, string> = { REDIS_URL: this.settings.agentRedisUrl, ...splitSecrets(spec.env).secrets, ...spec.secrets };
    if (spec.role === 'planner') delete values.REDIS_URL; // a planner run gets no Redis at all
    for (const file of this.settings.credentialFiles ?? []) delete values[file.env];
    const name = `${this.settings.network.slice(0, 40)}-secrets-${randomBytes(8).toString('hex')}`;
    try {
      const created = (await this.docker.createSecret({
        Name: name,
        Labels: this.labelsOf(spec.agentId),
        Data: Buffer.from(secretsLine(values)).toString('base64'),
      })) as { id?: string; ID?: string };
      return { id: created.id ?? created.ID ?? name, name };
    } catch (error) {
      throw translateDockerError(this.docker, error, `create the secret of agent ${spec.agentId}`, { agentId: spec.agentId });
    }
  }

  private async createService(spec: AgentSpec, secret: SecretRef): Promise<{ id: string; name: string }> {
    const constraints = await domainConstraints(this.docker, spec.domain);
    for (const full of [false, true]) {
      const name = containerName(this.settings.network, spec.domain, spec.agentId, full);
      try {
        const service = await this.docker.createService(agentServiceSpec(this.settings, spec, name, secret, constraints));
        return { id: service.id, name };
      } catch (error) {
        if (dockerStatus(error) === 409 && !full) continue;
        throw translateDockerError(this.docker, error, `start agent ${spec.agentId} from image ${this.settings.image}`, { agentId: spec.agentId, image: this.settings.image });
      }
    }
    throw new RuntimeError(`no free service name for agent ${spec.agentId}`);
  }

  /**
   * Waits until the service's task has started its container (`starting`: Swarm holds a task there until the
   * image's HEALTHCHECK first passes, up to its interval, which the agent does not need to register); one that
   * ends or is rejected first, or is not started in time (no node fits, the image is missing), is an error.
   */
  private async waitStarted(serviceId: string, agentId: string): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    for (;;) {
      const task = await latestTask(this.docker, serviceId);
      const state = task?.Status?.State;
      if (state === 'starting' || state === 'running') return;
      if (state !== undefined && !LIVE_STATES.has(state)) {
        throw new RuntimeError(`agent ${agentId}'s task ended ${state} before it ran: ${task?.Status?.Err ?? 'no reason given'}`, { details: { agentId, state } });
      }
      if (Date.now() > deadline) {
        throw new RuntimeError(`agent ${agentId}'s task is still ${state ?? 'unscheduled'} after ${this.settings.startTimeoutMs} ms (no node fits its placement, or the image is missing there: scripts/swarm-images.sh)`, {
          retryable: true,
          details: { agentId, state },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, this.settings.pollMs));
    }
  }

  /** Removes the service (the engine stops its task: SIGTERM, then SIGKILL after the spec's grace) and its secret. */
  async stop(agentId: string): Promise<void> {
    await this.remove(agentId);
  }

  async remove(agentId: string): Promise<void> {
    for (const service of await this.services(agentId)) {
      try {
        await this.docker.getService(service.ID).remove();
        this.logger.info({ agentId, service: service.Spec?.Name }, 'agent service removed');
      } catch (error) {
        if (dockerStatus(error) !== 404) throw translateDockerError(this.docker, error, `remove agent ${agentId}`, { agentId });
      }
    }
    await this.removeSecrets(agentId);
  }

  /** Removes the agent's secrets; the engine refuses while a service still names one, so a few tries. */
  private async removeSecrets(agentId: string): Promise<void> {
    const secrets = await this.docker.listSecrets({ filters: { label: this.labelFilters(agentId) } }).catch((error: unknown) => {
      throw translateDockerError(this.docker, error, `list the secrets of agent ${agentId}`, { agentId });
    });
    for (const secret of secrets) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.docker.getSecret(secret.ID).remove();
          break;
        } catch (error) {
          const status = dockerStatus(error);
          if (status === 404) break;
          if (attempt >= 20) throw translateDockerError(this.docker, error, `remove the secret of agent ${agentId}`, { agentId });
          await new Promise((resolve) => setTimeout(resolve, this.settings.pollMs));
        }
      }
    }
  }

  /** Stops and removes every agent of this network (`dan down`). Returns how many there were. */
  async stopAll(): Promise<number> {
    const agents = await this.list();
    await Promise.all(agents.map((agent) => this.stop(agent.agentId)));
    return agents.length;
  }

  async list(): Promise<AgentHandle[]> {
    const services = await this.services();
    if (services.length === 0) return [];
    const tasks = await serviceTasks(this.docker, services.map((s) => s.ID));
    return services.flatMap((service) => {
      const labels = service.Spec?.Labels ?? {};
      const role = labels[LABELS.role];
      const agentId = labels[LABELS.agentId];
      if (agentId === undefined || (role !== 'main' && role !== 'domain' && role !== 'planner')) return [];
      const state = newest(tasks.get(service.ID) ?? [])?.Status?.State;
      const running = state === undefined || LIVE_STATES.has(state);
      return [{ agentId, role, domain: labels[LABELS.domain] ?? '', runtime: 'swarm' as const, name: service.Spec?.Name ?? service.ID, ref: service.ID, running }];
    });
  }

  /**
   * Waits until the agent's task has exited, then hands over what it wrote on stdout, line by line, and its exit
   * code (service logs do not end when the task does, so they are read once it has); null for an unknown agent.
   */
  async output(agentId: string, onLine: (line: string) => void): Promise<number | null> {
    const [service] = await this.services(agentId);
    if (!service) return null;
    let task: TaskInfo | undefined;
    for (;;) {
      task = await latestTask(this.docker, service.ID);
      if (task?.Status?.State !== undefined && !LIVE_STATES.has(task.Status.State)) break;
      if ((await this.services(agentId)).length === 0) return null;
      await new Promise((resolve) => setTimeout(resolve, this.settings.pollMs));
    }
    const text = await this.readLogs(service.ID, agentId, { stdout: true, stderr: false });
    for (const line of text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined)) onLine(line);
    return task.Status?.ContainerStatus?.ExitCode ?? null;
  }

  async logs(agentId: string, options: { tail?: number } = {}): Promise<string> {
    const [service] = await this.services(agentId);
    if (!service) return '';
    return this.readLogs(service.ID, agentId, { stdout: true, stderr: true, tail: options.tail ?? this.settings.logTail });
  }

  private async readLogs(serviceId: string, agentId: string, options: { stdout: boolean; stderr: boolean; tail?: number }): Promise<string> {
    try {
      const data = (await this.docker.getService(serviceId).logs({ ...options, follow: false })) as unknown as Buffer | string;
      return demuxDockerLogs(Buffer.isBuffer(data) ? data : Buffer.from(String(data)));
    } catch (error) {
      if (dockerStatus(error) === 404) return '';
      throw translateDockerError(this.docker, error, `read the logs of agent ${agentId}`, { agentId });
    }
  }

  /** Nothing held between calls. Safe to call twice. */
  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private labelsOf(agentId: string): Record<string, string> {
    return { [LABELS.network]: this.settings.network, [LABELS.installation]: this.settings.installation, [LABELS.agentId]: agentId };
  }

  private labelFilters(agentId?: string): string[] {
    const labels = [`${LABELS.network}=${this.settings.network}`, `${LABELS.installation}=${this.settings.installation}`];
    return agentId === undefined ? labels : [...labels, `${LABELS.agentId}=${agentId}`];
  }

  /** This network's and installation's services (of one agent), their labels checked again on the spec. */
  private async services(agentId?: string): Promise<Docker.Service[]> {
    let found: Docker.Service[];
    try {
      found = await this.docker.listServices({ filters: { label: this.labelFilters(agentId) } });
    } catch (error) {
      throw translateDockerError(this.docker, error, 'list services', { agentId });
    }
    return found.filter((service) => {
      const labels = service.Spec?.Labels ?? {};
      return labels[LABELS.network] === this.settings.network && labels[LABELS.installation] === this.settings.installation && (agentId === undefined || labels[LABELS.agentId] === agentId);
    });
  }
}
