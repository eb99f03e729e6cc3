import type Docker from 'dockerode';
import { agentRun, type ContainerSettings } from './container-spec.js';
import type { AgentSpec } from './runtime.js';
import { secretsFromFile } from '../secrets.js';

/** Where a Swarm secret is mounted in a task's container. */
export const SWARM_SECRETS_DIR = '/run/secrets';
/** The agent's secrets file in its container: one per container, so one name for all. */
export const AGENT_SECRETS_FILE = 'dan-agent-secrets';

/** The settings of agent services: a container's, plus how long an agent has to stop. */
export interface ServiceSettings extends ContainerSettings {
  /** Between SIGTERM and SIGKILL when the service is removed. */
  stopGraceMs: number;
}

/** A created Swarm secret, as a service references it. */
export interface SecretRef {
  id: string;
  name: string;
}

/**
 * The spec of an agent's Swarm service: the same run as a plain container (container-spec.ts, agentRun), as one
 * replica that never restarts by itself (dan's reaper and scaler decide), on the network's overlay network, its
 * secrets in a Swarm secret mounted read-only for the agent's uid alone (mode 0400), never in its Env.
 *
 * What Swarm cannot express on Docker 20.10 (API 1.41): no-new-privileges (sent, applied by engines of API 1.46
 * and later; the CLI runs under `setpriv --no-new-privs` in any case), an owner for a tmpfs mount (the agent's
 * home is mode 1777 instead of 0770 owned by the agent), swap (Swarm sets none beyond the engine's default).
 */
export function agentServiceSpec(settings: ServiceSettings, spec: AgentSpec, name: string, secret: SecretRef, constraints: string[]): Docker.CreateServiceOptions {
  const run = agentRun(settings, spec, secretsFromFile(`${SWARM_SECRETS_DIR}/${AGENT_SECRETS_FILE}`));
  const scratch = run.scratch.map((mount) => ({
    Type: 'tmpfs' as const,
    Target: mount.target,
    // Without an owner option, a home only its owner may enter would be root's: sticky and open instead.
    TmpfsOptions: { SizeBytes: mount.sizeBytes, Mode: mount.owner ? 0o1777 : mount.mode },
  }));
  const containerSpec = {
    Image: run.image,
    // Swarm's Command replaces the ENTRYPOINT; Args replaces the CMD, as a container's Cmd does.
    ...(run.cmd ? { Args: run.cmd } : {}),
    Labels: run.labels,
    Env: Object.entries(run.env).map(([key, value]) => `${key}=${value}`),
    User: run.user,
    Dir: run.workingDir,
    Init: true,
    ReadOnly: true,
    Mounts: [...run.mounts, ...scratch] as Docker.MountSettings[],
    CapabilityDrop: ['ALL'],
    CapabilityAdd: run.capAdd,
    Privileges: { NoNewPrivileges: true },
    StopGracePeriod: Math.round(settings.stopGraceMs * 1e6),
    Secrets: [{ SecretID: secret.id, SecretName: secret.name, File: { Name: AGENT_SECRETS_FILE, UID: '1000', GID: '1000', Mode: 0o400 } }],
  };
  return {
    Name: name,
    Labels: run.labels,
    TaskTemplate: {
      ContainerSpec: containerSpec as Docker.ContainerSpec,
      Resources: { Limits: { MemoryBytes: run.memoryBytes, NanoCPUs: run.nanoCpus, Pids: run.pidsLimit } as Docker.ResourceLimits },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      Placement: { Constraints: constraints },
      Networks: [{ Target: settings.network }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    // Nobody connects to an agent: no virtual IP (one fewer address of the overlay subnet per agent, no IPVS).
    EndpointSpec: { Mode: 'dnsrr' },
  };
}
