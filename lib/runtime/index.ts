/** Where agents run: the Runtime interface, its docker and process adapters, and the factory choosing one. */
import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import { DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
import { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.js';
import { RuntimeError } from './runtime-errors.js';

export { LABELS, type AgentHandle, type AgentRole, type AgentSpec, type Runtime, type RuntimeKind, type StopOptions } from './runtime.js';
export { DockerRuntime, type DockerRuntimeConfig, type DockerRuntimeOptions } from './docker-runtime.js';
export { ProcessRuntime, danArgs, type ProcessRuntimeConfig, type ProcessRuntimeOptions } from './process-runtime.js';
export { createDockerClient, pingDocker, type Docker, type DockerClientOptions } from './docker-client.js';
export { AGENT_USER, WORKSPACE_PATH, containerName } from './container-spec.js';
export { DockerUnreachableError, RuntimeError } from './runtime-errors.js';

export interface CreateRuntimeOptions {
  /** Options of the docker runtime, when `config.runtime` is `docker` (its `installation` is required then). */
  docker?: Omit<DockerRuntimeOptions, 'logger'>;
  /** Options of the process runtime, when `config.runtime` is `process`. */
  process?: Omit<ProcessRuntimeOptions, 'logger'>;
  logger?: Logger;
}

/**
 * The runtime `config.runtime` names, created and ready (docker: engine reached, network and workspace ensured).
 * Both adapters also have `stopAll()`, for `dan down`.
 */
export async function createRuntime(config: DanConfig, options: CreateRuntimeOptions = {}): Promise<DockerRuntime | ProcessRuntime> {
  if (config.runtime === 'docker') {
    if (!options.docker) throw new RuntimeError('the docker runtime needs the installation id (installationId in lib/messaging)');
    return DockerRuntime.create(config, { ...options.docker, logger: options.logger });
  }
  return ProcessRuntime.create(config, { ...options.process, logger: options.logger });
}
