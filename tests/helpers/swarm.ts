import { execFileSync } from 'node:child_process';
import { LABELS, type Docker } from '../../lib/runtime/index.js';
import { eventually } from './eventually.js';

/**
 * Makes this engine a single-node Swarm manager when it is in no swarm. Returns whether it did the init: only
 * then may the test leave the swarm afterwards (leaveSwarm), so a swarm someone else made is never torn down.
 */
export function ensureSwarm(): boolean {
  const state = execFileSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { encoding: 'utf8' }).trim();
  if (state === 'active') return false;
  if (state !== 'inactive') throw new Error(`this engine's swarm state is "${state}": neither a manager nor free to become one`);
  execFileSync('docker', ['swarm', 'init', '--advertise-addr', '127.0.0.1'], { stdio: 'ignore', timeout: 60_000 });
  return true;
}

/** Leaves the swarm when this test made it (ensureSwarm's answer). */
export function leaveSwarm(didInit: boolean): void {
  if (didInit) execFileSync('docker', ['swarm', 'leave', '--force'], { stdio: 'ignore', timeout: 60_000 });
}

/** The address containers on an overlay network reach this host at: docker_gwbridge's gateway. */
export async function gatewayAddress(docker: Docker): Promise<string> {
  const info = (await docker.getNetwork('docker_gwbridge').inspect()) as { IPAM?: { Config?: Array<{ Gateway?: string }> } };
  const gateway = info.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (!gateway) throw new Error('docker_gwbridge has no gateway address');
  return gateway;
}

/** Removes every service and secret labelled with the network, then its overlay network. */
export async function removeSwarmNetwork(docker: Docker, network: string): Promise<void> {
  const label = [`${LABELS.network}=${network}`];
  for (const service of await docker.listServices({ filters: { label } })) await docker.getService(service.ID).remove().catch(() => undefined);
  for (const secret of await docker.listSecrets({ filters: { label } })) await docker.getSecret(secret.ID).remove().catch(() => undefined);
  // The tasks' containers leave the network a moment after their services go.
  await eventually(
    () =>
      docker
        .getNetwork(network)
        .remove()
        .then(() => true)
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode === 404) return true;
          throw error;
        }),
    { timeoutMs: 60_000, intervalMs: 500, what: `overlay network ${network} to be removable` },
  );
}
