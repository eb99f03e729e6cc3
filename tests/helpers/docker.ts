import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { LABELS, type Docker } from '../../lib/runtime/index.js';
import { repoRoot } from './cli.js';

/**
 * The agent image the tests run: a tag of their own (DAN_TEST_AGENT_IMAGE, default dan-agent:test), never a
 * user's DAN_AGENT_IMAGE or dan-agent:latest, which a test rebuild would otherwise overwrite.
 */
export const TEST_AGENT_IMAGE = process.env.DAN_TEST_AGENT_IMAGE ?? 'dan-agent:test';

/** Builds the tests' agent image from this tree (scripts/build-image.sh) when it is missing or older than its sources. */
export async function ensureTestAgentImage(docker: Docker, baseImage: string | undefined): Promise<string> {
  const built = await docker
    .getImage(TEST_AGENT_IMAGE)
    .inspect()
    .then((info) => Date.parse(info.Created))
    .catch(() => 0);
  const newest = Number(
    execFileSync('sh', ['-c', 'find bin lib agents scripts package.json -type f -printf "%T@\\n" | sort -n | tail -n 1'], { cwd: repoRoot(), encoding: 'utf8' }).trim(),
  );
  if (built > newest * 1000) return TEST_AGENT_IMAGE;
  execFileSync(path.join(repoRoot(), 'scripts', 'build-image.sh'), ['--skip-smoke'], {
    cwd: repoRoot(),
    env: { ...process.env, DAN_AGENT_IMAGE: TEST_AGENT_IMAGE, ...(baseImage ? { DAN_BASE_IMAGE: baseImage } : {}) },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
  return TEST_AGENT_IMAGE;
}

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
