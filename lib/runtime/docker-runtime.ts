import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { DanConfig } from '../config.js';
import { silentLogger, type Logger } from '../log.js';
import { LABELS, type AgentHandle, type AgentSpec, type Runtime, type StopOptions } from './runtime.js';
import { createDockerClient, dockerStatus, pingDocker, translateDockerError } from './docker-client.js';
import { demuxDockerLogs } from './docker-logs.js';
import { ensureNetwork, removeNetwork, ensureWorkspace } from './docker-setup.js';
import { agentContainerOptions, containerName, type ContainerSettings } from './container-spec.js';
import { RuntimeError } from './runtime-errors.js';
import { secretsLine, splitSecrets } from '../secrets.js';

/** The parts of the configuration the docker runtime uses. */
export type DockerRuntimeConfig = Pick<
  DanConfig,
  'network' | 'agentRedisUrl' | 'workspaceVolume' | 'templatesVolume' | 'agentMemoryMb' | 'agentCpus' | 'images'
> &
  Partial<Pick<DanConfig, 'credentialFiles'>>;

export interface DockerRuntimeOptions {
  /**
   * This installation's id (`installationId` in lib/messaging): containers are labelled with it and only
   * containers carrying it are listed, stopped or removed. Required: without it two installations that use the
   * same network name on one host would remove each other's containers.
   */
  installation: string;
  /** A client to use. @default createDockerClient({ host: dockerHost }) */
  docker?: Docker;
  /** DOCKER_HOST value, when no client is given. @default dockerode's own reading of DOCKER_HOST, else the local socket */
  dockerHost?: string;
  /** Image of agent containers (and of the workspace helper). @default config.images.agent */
  image?: string;
  /** Replaces the image's CMD, e.g. `['sleep', '300']` in tests. @default the image's CMD */
  cmd?: string[];
  /** Processes one agent container may run. @default 512 */
  pidsLimit?: number;
  /** Lines `logs` returns when no tail is asked. @default 200 */
  logTail?: number;
  /** Prepare the workspace (volume ownership, bind writability) in `create`. @default true */
  prepareWorkspace?: boolean;
  /** Create the network's Docker network in `create` when it is missing (`dan down` only removes). @default true */
  ensureNetwork?: boolean;
  logger?: Logger;
}

/**
 * Agents as Docker containers (DESIGN.md, Runtimes). Every container it makes carries the labels
 * `dan.network`, `dan.installation`, `dan.role`, `dan.domain` and `dan.agent-id`; every lookup filters on
 * `dan.network=<network>` and `dan.installation=<id>`, and stop, remove and logs check both labels again on the
 * container itself, so a runtime never acts on a container of another network, of another installation that
 * chose the same network name, or one dan did not make.
 */
export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;

  constructor(
    private readonly docker: Docker,
    private readonly settings: ContainerSettings & { logTail: number },
    private readonly logger: Logger,
  ) {}

  /** Connects to the engine (DockerUnreachableError if it does not answer), ensures the network and the workspace. */
  static async create(config: DockerRuntimeConfig, options: DockerRuntimeOptions): Promise<DockerRuntime> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.installation)) {
      throw new RuntimeError(`invalid installation id "${options.installation}": letters, digits, ".", "_" or "-", at most 64`, {
        details: { installation: options.installation },
      });
    }
    const docker = options.docker ?? createDockerClient({ host: options.dockerHost });
    const logger = (options.logger ?? silentLogger()).child({ component: 'docker-runtime', network: config.network });
    const image = options.image ?? config.images.agent;
    await pingDocker(docker);
    if (options.ensureNetwork ?? true) await ensureNetwork(docker, config.network, logger);
    if (options.prepareWorkspace ?? true) {
      await ensureWorkspace(docker, { network: config.network, workspaceVolume: config.workspaceVolume, image, logger });
    }
    const settings = {
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
      logTail: options.logTail ?? 200,
    };
    return new DockerRuntime(docker, settings, logger);
  }

  async spawn(spec: AgentSpec): Promise<AgentHandle> {
    const { network } = this.settings;
    if ((await this.find(spec.agentId)).length > 0) {
      throw new RuntimeError(`agent ${spec.agentId} already has a container in network ${network}`, {
        details: { agentId: spec.agentId, network },
      });
    }
    let name = containerName(network, spec.domain, spec.agentId);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(agentContainerOptions(this.settings, spec, name));
    } catch (error) {
      if (dockerStatus(error) !== 409) throw this.spawnError(error, spec);
      name = containerName(network, spec.domain, spec.agentId, true);
      try {
        container = await this.docker.createContainer(agentContainerOptions(this.settings, spec, name));
      } catch (retryError) {
        throw this.spawnError(retryError, spec);
      }
    }
    try {
      const secrets = { REDIS_URL: this.settings.agentRedisUrl, ...splitSecrets(spec.env).secrets, ...spec.secrets };
      if (spec.role === 'planner') delete (secrets as Partial<typeof secrets>).REDIS_URL; // a planner run gets no Redis at all
      // A credential file's variable names the file where the container sees it (its Env): not the host's path.
      for (const file of this.settings.credentialFiles ?? []) delete (secrets as Record<string, string>)[file.env];
      await this.startWithSecrets(container, secrets);
    } catch (error) {
      await container.remove({ force: true }).catch(() => undefined);
      throw this.spawnError(error, spec);
    }
    this.logger.info({ agentId: spec.agentId, container: name, domain: spec.domain }, 'agent container started');
    return { agentId: spec.agentId, role: spec.role, domain: spec.domain, runtime: 'docker', name, ref: container.id, running: true };
  }

  /**
   * Attaches to the container's stdin, starts it, writes the secrets line and closes stdin (StdinOnce: the
   * container's stdin ends with it). The values pass through the engine's API only: no Env, no file.
   */
  private async startWithSecrets(container: Docker.Container, secrets: Record<string, string>): Promise<void> {
    const stream = (await container.attach({ stream: true, stdin: true, hijack: true })) as NodeJS.ReadWriteStream;
    stream.on('error', () => {}); // a container that exits at once: its logs and exit code say why
    try {
      await container.start();
      await new Promise<void>((resolve, reject) => stream.write(secretsLine(secrets), (error) => (error ? reject(error) : resolve())));
    } finally {
      stream.end();
    }
  }

  async stop(agentId: string, options: StopOptions = {}): Promise<void> {
    const seconds = Math.max(0, Math.ceil((options.timeoutMs ?? 10_000) / 1000));
    for (const container of await this.verified(agentId)) {
      try {
        await container.stop({ t: seconds });
      } catch (error) {
        // 304: already stopped; 404: already gone.
        const status = dockerStatus(error);
        if (status !== 304 && status !== 404) throw translateDockerError(this.docker, error, `stop agent ${agentId}`, { agentId });
      }
      await this.removeContainer(container, agentId);
      this.logger.info({ agentId, container: container.id }, 'agent container stopped and removed');
    }
  }

  async remove(agentId: string): Promise<void> {
    for (const container of await this.verified(agentId)) {
      await this.removeContainer(container, agentId);
      this.logger.info({ agentId, container: container.id }, 'agent container removed');
    }
  }

  /** Stops and removes every agent of this network (`dan down`). Returns how many there were. */
  async stopAll(options: StopOptions = {}): Promise<number> {
    const agents = await this.list();
    await Promise.all(agents.map((agent) => this.stop(agent.agentId, options)));
    return agents.length;
  }

  async list(): Promise<AgentHandle[]> {
    const containers = await this.listContainers(this.ownLabels());
    return containers.flatMap((info) => {
      const labels = info.Labels ?? {};
      const role = labels[LABELS.role];
      const agentId = labels[LABELS.agentId];
      if (agentId === undefined || (role !== 'main' && role !== 'domain' && role !== 'planner')) return [];
      return [
        {
          agentId,
          role,
          domain: labels[LABELS.domain] ?? '',
          runtime: 'docker' as const,
          name: (info.Names[0] ?? info.Id).replace(/^\//, ''),
          ref: info.Id,
          running: info.State === 'running',
        },
      ];
    });
  }

  /**
   * Follows the container's stdout from its start until it stops (Docker keeps what was written before the
   * call), then resolves with its exit code; null at once for an unknown agent.
   */
  async output(agentId: string, onLine: (line: string) => void): Promise<number | null> {
    const [container] = await this.verified(agentId);
    if (!container) return null;
    try {
      const stream = (await container.logs({ stdout: true, stderr: false, follow: true })) as NodeJS.ReadableStream;
      const stdout = new PassThrough();
      this.docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
      const ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
      const reading = (async () => {
        for await (const line of createInterface({ input: stdout, crlfDelay: Infinity })) onLine(line);
      })();
      await ended;
      stdout.end();
      await reading;
      const { StatusCode } = (await container.wait()) as { StatusCode?: number };
      return StatusCode ?? null;
    } catch (error) {
      if (dockerStatus(error) === 404) return null;
      throw translateDockerError(this.docker, error, `follow the output of agent ${agentId}`, { agentId });
    }
  }

  /** The last lines of an agent's stdout and stderr, in the order written; '' for an unknown agent. */
  async logs(agentId: string, options: { tail?: number } = {}): Promise<string> {
    const [container] = await this.verified(agentId);
    if (!container) return '';
    try {
      const buffer = (await container.logs({ stdout: true, stderr: true, follow: false, tail: options.tail ?? this.settings.logTail })) as Buffer;
      return demuxDockerLogs(buffer);
    } catch (error) {
      if (dockerStatus(error) === 404) return '';
      throw translateDockerError(this.docker, error, `read the logs of agent ${agentId}`, { agentId });
    }
  }

  /**
   * Removes the network's Docker network if dan created it (it carries the `dan.network` label: compose's own
   * network does not, and stays) and no container uses it any more (`dan down`). Says what it did.
   */
  async removeNetwork(): Promise<'removed' | 'kept' | 'absent'> {
    return removeNetwork(this.docker, this.settings.network, this.logger);
  }

  /** The client holds no connection between calls, so there is nothing to release. Safe to call twice. */
  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async find(agentId: string): Promise<Docker.ContainerInfo[]> {
    return this.listContainers([...this.ownLabels(), `${LABELS.agentId}=${agentId}`]);
  }

  /** The label filters of this runtime's containers: its network and its installation. */
  private ownLabels(): string[] {
    return [`${LABELS.network}=${this.settings.network}`, `${LABELS.installation}=${this.settings.installation}`];
  }

  /** The containers of an agent, each re-inspected to prove it carries this network's and installation's labels. */
  private async verified(agentId: string): Promise<Docker.Container[]> {
    const found: Docker.Container[] = [];
    for (const info of await this.find(agentId)) {
      const container = this.docker.getContainer(info.Id);
      let labels: Record<string, string>;
      try {
        labels = (await container.inspect()).Config.Labels ?? {};
      } catch (error) {
        if (dockerStatus(error) === 404) continue;
        throw translateDockerError(this.docker, error, `inspect agent ${agentId}`, { agentId });
      }
      if (labels[LABELS.network] !== this.settings.network || labels[LABELS.installation] !== this.settings.installation || labels[LABELS.agentId] !== agentId) {
        this.logger.warn({ agentId, container: info.Id }, 'container lost its dan labels; not touching it');
        continue;
      }
      found.push(container);
    }
    return found;
  }

  private async listContainers(labels: string[]): Promise<Docker.ContainerInfo[]> {
    try {
      return await this.docker.listContainers({ all: true, filters: { label: labels } });
    } catch (error) {
      throw translateDockerError(this.docker, error, 'list containers', { labels });
    }
  }

  private async removeContainer(container: Docker.Container, agentId: string): Promise<void> {
    try {
      await container.remove({ force: true });
    } catch (error) {
      // 404: gone; 409: removal already in progress (two reapers, or stop racing remove).
      const status = dockerStatus(error);
      if (status !== 404 && status !== 409) throw translateDockerError(this.docker, error, `remove agent ${agentId}`, { agentId });
    }
  }

  private spawnError(error: unknown, spec: AgentSpec): Error {
    const translated = translateDockerError(this.docker, error, `start agent ${spec.agentId} from image ${this.settings.image}`, {
      agentId: spec.agentId,
      domain: spec.domain,
      image: this.settings.image,
    });
    if (dockerStatus(error) === 404 && /image/i.test(translated.message)) {
      return new RuntimeError(`${translated.message} (build it with scripts/build-image.sh, or set DAN_AGENT_IMAGE)`, {
        cause: error,
        details: translated.details,
      });
    }
    return translated;
  }
}
