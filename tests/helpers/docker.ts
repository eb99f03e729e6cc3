import { LABELS, type Docker } from '../../lib/runtime/index.js';

/** Whether a container exists, running or not; an answer other than 404 is thrown. */
export async function containerExists(docker: Docker, id: string): Promise<boolean> {
  return docker
    .getContainer(id)
    .inspect()
    .then(() => true)
    .catch((error: { statusCode?: number }) => {
      if (error.statusCode === 404) return false;
      throw error;
    });
}

/** Removes every container labelled `label` (`key=value`), running or not. */
export async function removeContainers(docker: Docker, label: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

/**
 * Removes what a dan network left on Docker: its agent containers, its Docker network and its volumes (remove
 * any other container on that Docker network first).
 */
export async function removeDanNetwork(docker: Docker, network: string): Promise<void> {
  await removeContainers(docker, `${LABELS.network}=${network}`);
  await docker
    .getNetwork(network)
    .remove()
    .catch(() => undefined);
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABELS.network}=${network}`] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove().catch(() => undefined)));
}
