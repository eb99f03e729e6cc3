/** Where agents run: the Runtime interface, its docker, swarm and process adapters, and the factory choosing one. */
import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import { DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
import { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.js';
import { SwarmRuntime } from './swarm-runtime.js';
import { RuntimeError } from './runtime-errors.js';

export { LABELS, type AgentHandle, type AgentRole, type AgentSpec, type Runtime, type RuntimeKind, type StopOptions } from './runtime.js';
export { DockerRuntime, type DockerRuntimeConfig, type DockerRuntimeOptions } from './docker-runtime.js';
export { SwarmRuntime, type SwarmRuntimeConfig, type SwarmRuntimeOptions } from './swarm-runtime.js';
export { DOMAIN_NODE_LABEL } from './swarm-setup.js';
export { ProcessRuntime, danArgs, type ProcessRuntimeConfig, type ProcessRuntimeOptions } from './process-runtime.js';
export { createDockerClient, pingDocker, type Docker, type DockerClientOptions } from './docker-client.js';
export { AGENT_USER, WORKSPACE_PATH, containerName } from './container-spec.js';
export { DockerUnreachableError, RuntimeError } from './runtime-errors.js';

export interface CreateRuntimeOptions {
  /** Options of the docker or swarm runtime, when `config.runtime` is one of them (`installation` is required then). */
  docker?: Omit<DockerRuntimeOptions, 'logger'>;
  /** Options of the process runtime, when `config.runtime` is `process`. */
  process?: Omit<ProcessRuntimeOptions, 'logger'>;
  logger?: Logger;
}

/**
 * The runtime `config.runtime` names, created and ready (docker, swarm: engine reached, network and workspace
 * ensured). Every adapter also has `stopAll()`, for `dan down`.
 */
export async function createRuntime(config: DanConfig, options: CreateRuntimeOptions = {}): Promise<DockerRuntime | SwarmRuntime | ProcessRuntime> {
  if (config.runtime === 'docker' || config.runtime === 'swarm') {
    if (!options.docker) throw new RuntimeError(`the ${config.runtime} runtime needs the installation id (installationId in lib/messaging)`);
    const options_ = { ...options.docker, logger: options.logger };
    return config.runtime === 'docker' ? DockerRuntime.create(config, options_) : SwarmRuntime.create(config, options_);
  }
  return ProcessRuntime.create(config, { ...options.process, logger: options.logger });
}
