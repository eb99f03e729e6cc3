import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { LABELS } from './runtime.js';
import { dockerStatus, translateDockerError } from './docker-client.js';
import { demuxDockerLogs } from './docker-logs.js';
import { AGENT_USER, WORKSPACE_PATH, workspaceMount } from './container-spec.js';
import { RuntimeError } from './runtime-errors.js';

/** Creates the network's Docker network (a bridge named after it, labelled) unless it exists. */
export async function ensureNetwork(docker: Docker, network: string, logger: Logger): Promise<void> {
  try {
    await docker.getNetwork(network).inspect();
    return;
  } catch (error) {
    if (dockerStatus(error) !== 404) throw translateDockerError(docker, error, `inspect Docker network ${network}`, { network });
  }
  try {
    await docker.createNetwork({ Name: network, Driver: 'bridge', CheckDuplicate: true, Labels: { [LABELS.network]: network } });
    logger.info({ network }, 'created Docker network');
  } catch (error) {
    // Another orchestrator created it between our inspect and create.
    if (dockerStatus(error) !== 409) throw translateDockerError(docker, error, `create Docker network ${network}`, { network });
  }
}

/** Removes the network's Docker network when dan created it (labelled) and nothing is attached to it. */
export async function removeNetwork(docker: Docker, network: string, logger: Logger): Promise<'removed' | 'kept' | 'absent'> {
  let info: Docker.NetworkInspectInfo;
  try {
    info = (await docker.getNetwork(network).inspect()) as Docker.NetworkInspectInfo;
  } catch (error) {
    if (dockerStatus(error) === 404) return 'absent';
    throw translateDockerError(docker, error, `inspect Docker network ${network}`, { network });
  }
  if (info.Labels?.[LABELS.network] !== network || Object.keys(info.Containers ?? {}).length > 0) return 'kept';
  try {
    await docker.getNetwork(network).remove();
    logger.info({ network }, 'removed Docker network');
    return 'removed';
  } catch (error) {
    const status = dockerStatus(error);
    if (status === 404) return 'absent';
    if (status === 403 || status === 409) return 'kept'; // a container joined it meanwhile
    throw translateDockerError(docker, error, `remove Docker network ${network}`, { network });
  }
}

/**
 * Makes the workspace writable by the agents' uid 1000, once, when the runtime is created.
 *
 * - A named volume is created root-owned by Docker (and copies the image's `/workspace` ownership only if the
 *   first container to mount it happens to be from an image that has one). So dan creates the volume itself,
 *   labelled with the network, and a short-lived helper container from the agent image, running as root with
 *   only CAP_CHOWN, no network and only that volume mounted, chowns the volume's root to 1000:1000 when it is
 *   not already. Only the root directory: files inside keep whatever owner their writer gave them.
 * - A bind-mounted host directory keeps its host ownership, and dan does not chown a user's directory behind
 *   their back: a helper running as uid 1000 checks that it can write there, and if not, create fails with
 *   the command that fixes it (`chown 1000:1000 <dir>`), which is what `dan up`/setup should run.
 */
export async function ensureWorkspace(docker: Docker, options: WorkspaceOptions): Promise<void> {
  const mount = workspaceMount(options.workspaceVolume);
  if (mount.Type === 'volume') {
    await ensureVolume(docker, options.workspaceVolume, options.network, options.logger);
    const script = `[ "$(stat -c %u:%g ${WORKSPACE_PATH})" = ${AGENT_USER} ] || chown ${AGENT_USER} ${WORKSPACE_PATH}`;
    const result = await runHelper(docker, options, mount, { user: '0:0', capAdd: ['CHOWN'], script });
    if (result.exitCode !== 0) {
      throw new RuntimeError(`cannot give volume ${options.workspaceVolume} to uid 1000: ${result.output.trim()}`, {
        details: { workspaceVolume: options.workspaceVolume, exitCode: result.exitCode },
      });
    }
    return;
  }
  const result = await runHelper(docker, options, mount, { user: AGENT_USER, capAdd: [], script: `test -w ${WORKSPACE_PATH}` });
  if (result.exitCode !== 0) {
    throw new RuntimeError(
      `the workspace ${options.workspaceVolume} is not writable by uid 1000, the user agents run as: run \`chown -R 1000:1000 ${options.workspaceVolume}\``,
      { details: { workspaceVolume: options.workspaceVolume, exitCode: result.exitCode } },
    );
  }
}

export interface WorkspaceOptions {
  network: string;
  workspaceVolume: string;
  /** The image the helper container runs: the agent image, which has `sh`, `stat` and `chown`. */
  image: string;
  logger: Logger;
}

async function ensureVolume(docker: Docker, name: string, network: string, logger: Logger): Promise<void> {
  try {
    await docker.getVolume(name).inspect();
    return;
  } catch (error) {
    if (dockerStatus(error) !== 404) throw translateDockerError(docker, error, `inspect volume ${name}`, { volume: name });
  }
  try {
    await docker.createVolume({ Name: name, Labels: { [LABELS.network]: network } });
    logger.info({ volume: name }, 'created workspace volume');
  } catch (error) {
    throw translateDockerError(docker, error, `create volume ${name}`, { volume: name });
  }
}

interface HelperRun {
  user: string;
  capAdd: string[];
  script: string;
}

/** Runs a shell line in a throwaway container with only the workspace mounted; always removes it. */
async function runHelper(
  docker: Docker,
  options: WorkspaceOptions,
  mount: Docker.MountSettings,
  run: HelperRun,
): Promise<{ exitCode: number; output: string }> {
  let container: Docker.Container | undefined;
  try {
    container = await docker.createContainer({
      Image: options.image,
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: [run.script],
      User: run.user,
      Labels: { [LABELS.network]: options.network, [LABELS.role]: 'setup' },
      HostConfig: {
        Mounts: [mount],
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        CapAdd: run.capAdd,
        SecurityOpt: ['no-new-privileges'],
        AutoRemove: false,
      },
    });
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const output = StatusCode === 0 ? '' : demuxDockerLogs((await container.logs({ stdout: true, stderr: true })) as Buffer);
    return { exitCode: StatusCode, output };
  } catch (error) {
    const details = { workspaceVolume: options.workspaceVolume, image: options.image };
    const translated = translateDockerError(docker, error, `prepare the workspace ${options.workspaceVolume} with image ${options.image}`, details);
    if (dockerStatus(error) !== 404 || !/image/i.test(translated.message)) throw translated;
    throw new RuntimeError(`${translated.message} (build it with scripts/build-image.sh, or set DAN_AGENT_IMAGE)`, { cause: error, details });
  } finally {
    await container?.remove({ force: true }).catch((error: unknown) => {
      options.logger.warn({ err: error }, 'could not remove the workspace helper container');
    });
  }
}
