import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { LABELS } from './runtime.js';
import { dockerStatus, translateDockerError } from './docker-client.js';
import { RuntimeError } from './runtime-errors.js';

/** The node label that pins a domain's agents to nodes: `docker node update --label-add dan.domain=backend NODE`. */
export const DOMAIN_NODE_LABEL = 'dan.domain';

/** Proves the engine is a Swarm manager: only a manager creates services. */
export async function ensureSwarmManager(docker: Docker): Promise<void> {
  let info: { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
  try {
    info = (await docker.info()) as typeof info;
  } catch (error) {
    throw translateDockerError(docker, error, 'read the Docker engine info');
  }
  if (info.Swarm?.LocalNodeState !== 'active' || info.Swarm.ControlAvailable !== true) {
    throw new RuntimeError('DAN_RUNTIME=swarm needs a Swarm manager: run `docker swarm init` on this engine, or point DOCKER_HOST at a manager', {
      details: { state: info.Swarm?.LocalNodeState ?? 'unknown' },
    });
  }
}

/** Creates the network's overlay network (attachable, labelled) unless it exists; a non-overlay one of that name is an error. */
export async function ensureOverlayNetwork(docker: Docker, network: string, logger: Logger): Promise<void> {
  try {
    const info = (await docker.getNetwork(network).inspect()) as Docker.NetworkInspectInfo;
    if (info.Driver !== 'overlay' || info.Scope !== 'swarm') {
      throw new RuntimeError(`Docker network ${network} is a ${info.Driver} network: the swarm runtime needs an overlay one (remove it, or choose another DAN_NETWORK)`, {
        details: { network, driver: info.Driver },
      });
    }
    return;
  } catch (error) {
    if (dockerStatus(error) !== 404) throw translateDockerError(docker, error, `inspect Docker network ${network}`, { network });
  }
  try {
    await docker.createNetwork({ Name: network, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: { [LABELS.network]: network } });
    logger.info({ network }, 'created overlay network');
  } catch (error) {
    if (dockerStatus(error) !== 409) throw translateDockerError(docker, error, `create overlay network ${network}`, { network });
  }
}

/**
 * Where a domain's agents may run: on the nodes labelled `dan.domain=<domain>` when at least one node carries
 * that label and value, else anywhere. A hard constraint, not a preference: a domain pinned to nodes (its
 * tools, its data, its secrets) must not spill onto others; when all its nodes are gone, its agents wait
 * pending (spawn fails after its timeout) rather than run elsewhere.
 */
export async function domainConstraints(docker: Docker, domain: string): Promise<string[]> {
  let nodes: Array<{ Spec?: { Labels?: Record<string, string> } }>;
  try {
    nodes = (await docker.listNodes()) as typeof nodes;
  } catch (error) {
    throw translateDockerError(docker, error, 'list the Swarm nodes');
  }
  const labelled = nodes.some((node) => node.Spec?.Labels?.[DOMAIN_NODE_LABEL] === domain);
  return labelled ? [`node.labels.${DOMAIN_NODE_LABEL} == ${domain}`] : [];
}
