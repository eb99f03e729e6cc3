import path from 'node:path';
import type Docker from 'dockerode';
import type { CredentialFile } from '../config.js';
import { LABELS, type AgentSpec } from './runtime.js';
import { RuntimeError } from './runtime-errors.js';
import { splitSecrets, SECRETS_FROM_STDIN, SECRETS_VARIABLE } from '../secrets.js';

/** Where and how agent containers of one network run: the settings the docker runtime was created with. */
export interface ContainerSettings {
  network: string;
  /** This installation's id (lib/messaging/installation.ts): every container is labelled with it. */
  installation: string;
  image: string;
  /** Replaces the image's CMD (its ENTRYPOINT still runs), e.g. `['sleep', '300']` in tests. */
  cmd?: string[];
  /** REDIS_URL given to agents (on stdin) unless their spec's secrets set one. */
  agentRedisUrl: string;
  /** A Docker volume name, or an absolute host path bind-mounted. */
  workspaceVolume: string;
  /** An absolute host path mounted read-only at TEMPLATES_PATH (DAN_TEMPLATES there), when set. */
  templatesVolume?: string;
  /** The cloud provider's credential files, each mounted read-only under CREDENTIALS_PATH. @default none */
  credentialFiles?: readonly CredentialFile[];
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
}

/** The uid:gid agents run as; the images create user `agent` with it. */
export const AGENT_USER = '1000:1000';
/** The uid:gid the agent runs the CLI as: another uid (it cannot read the agent's memory), the agent's group. */
export const CLI_USER = '1001:1000';
/**
 * What an agent container may do beyond nothing: switch uids (the entrypoint to the agent's, the agent to the
 * CLI's) and signal the CLI's processes, which run as another uid. The CLI gets none of them.
 */
export const AGENT_CAPABILITIES = ['SETUID', 'SETGID', 'KILL'] as const;
/** Where the workspace is mounted in agent containers. */
export const WORKSPACE_PATH = '/workspace';
/** Where DAN_TEMPLATES_VOLUME is mounted, read-only, in agent containers. */
export const TEMPLATES_PATH = '/templates';

/** Where credential files (DanConfig.credentialFiles) are mounted, read-only, in agent containers. */
export const CREDENTIALS_PATH = '/run/dan-credentials';

/** The mount target of a credential file: one name per variable, whatever the host file is called. */
export const credentialTarget = (file: CredentialFile): string =>
  `${CREDENTIALS_PATH}/${file.env.toLowerCase().replace(/_/g, '-')}`;

const AGENT_ID = /^[A-Za-z0-9_.-]{1,100}$/;

/**
 * `<network>-<domain>-<first 8 chars of the agent id, lowercased>`; with `full`, the whole id (used when
 * the short name is taken: ULIDs made in the same quarter second share their first 8 characters). For the
 * short name, an id that starts with its domain (`backend-1a2b3c4d`, as the orchestrator makes them) loses
 * that prefix first, or every agent of a domain would share the short name `<network>-backend-backend-`.
 */
export function containerName(network: string, domain: string, agentId: string, full = false): string {
  const safeDomain = domain.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-') || 'agent';
  const lower = agentId.toLowerCase();
  const bare = lower.startsWith(`${safeDomain}-`) && lower.length > safeDomain.length + 1 ? lower.slice(safeDomain.length + 1) : lower;
  return `${network}-${safeDomain}-${full ? lower : bare.slice(0, 8)}`;
}

/** The workspace as a Docker mount: a name is a named volume, an absolute path a bind mount. */
export function workspaceMount(workspaceVolume: string): Docker.MountSettings {
  if (path.isAbsolute(workspaceVolume)) return { Type: 'bind', Source: workspaceVolume, Target: WORKSPACE_PATH };
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]+$/.test(workspaceVolume)) {
    throw new RuntimeError(
      `DAN_WORKSPACE_VOLUME="${workspaceVolume}" is neither a volume name nor an absolute path`,
      { details: { workspaceVolume } },
    );
  }
  return { Type: 'volume', Source: workspaceVolume, Target: WORKSPACE_PATH };
}

/** The labels that make a container this installation's agent. */
export function agentLabels(network: string, installation: string, spec: AgentSpec): Record<string, string> {
  return {
    [LABELS.network]: network,
    [LABELS.installation]: installation,
    [LABELS.role]: spec.role,
    [LABELS.domain]: spec.domain,
    [LABELS.agentId]: spec.agentId,
  };
}

/** A scratch filesystem of an agent: writable, in memory, gone with the agent. */
export interface ScratchMount {
  target: string;
  sizeBytes: number;
  mode: number;
  /** Owner uid:gid, where the engine can set it (plain containers; a Swarm tmpfs mount has no owner option). */
  owner?: string;
}

/**
 * What an agent's container is, whichever engine API starts it (a plain container, a Swarm service's task): one
 * source for both runtimes (docker-runtime.ts, swarm-runtime.ts), so that a hardening lands in both or neither.
 */
export interface AgentRun {
  image: string;
  cmd?: string[];
  /** Root with no capability but AGENT_CAPABILITIES: the entrypoint switches to AGENT_USER at once. */
  user: string;
  workingDir: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** The workspace (read-only for a planner run), the templates and credential files (read-only). */
  mounts: Docker.MountSettings[];
  scratch: ScratchMount[];
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  capAdd: string[];
}

/**
 * An agent's run: non-root, no capabilities but AGENT_CAPABILITIES, limited memory, CPU and PIDs, a read-only
 * root filesystem with scratch tmpfs for /tmp and the agent's home, the workspace and nothing else writable
 * mounted (the templates folder read-only, when set). A planner run is the same, but without REDIS_URL and with
 * the workspace read-only. `secretsSource` is DAN_SECRETS: how the secrets reach it (lib/secrets.ts).
 */
export function agentRun(settings: ContainerSettings, spec: AgentSpec, secretsSource: string): AgentRun {
  if (!AGENT_ID.test(spec.agentId)) {
    throw new RuntimeError(`invalid agent id "${spec.agentId}": letters, digits, ".", "_" or "-", at most 100`, {
      details: { agentId: spec.agentId },
    });
  }
  const planner = spec.role === 'planner';
  // Secrets (the Redis URL, the model's keys) never go into the container's config: the runtime hands them over
  // on stdin or as a Swarm secret file (secretsSource), whoever put them in spec.env. A planner run gets no Redis
  // at all (issue 16, item 1): its answer goes back on stdout.
  const visible = splitSecrets(spec.env).env;
  const env: Record<string, string> = {
    DAN_NETWORK: settings.network,
    ...visible,
    [SECRETS_VARIABLE]: secretsSource,
    DAN_CLI_USER: CLI_USER,
    // Identity and place come from the spec and the mount, never from a caller's env that disagrees.
    AGENT_ID: spec.agentId,
    AGENT_ROLE: spec.role,
    DOMAIN_TYPE: spec.domain,
    DAN_WORKSPACE: WORKSPACE_PATH,
    DAN_IN_CONTAINER: '1',
    ...(settings.templatesVolume ? { DAN_TEMPLATES: TEMPLATES_PATH } : {}),
    // A credential file's variable names it where the container sees it, not where the host keeps it.
    ...Object.fromEntries((settings.credentialFiles ?? []).map((file) => [file.env, credentialTarget(file)])),
  };
  if (planner) delete env.REDIS_URL; // not even when a caller's env names one
  return {
    image: settings.image,
    ...(settings.cmd ? { cmd: settings.cmd } : {}),
    user: '0:0',
    workingDir: WORKSPACE_PATH,
    env,
    labels: agentLabels(settings.network, settings.installation, spec),
    mounts: [
      // A planner run only reads the workspace.
      { ...workspaceMount(settings.workspaceVolume), ...(planner ? { ReadOnly: true } : {}) },
      // The templates (instructions and permissions, no secrets) read-only: a domain added on the host reaches
      // agents without an image rebuild. The workspace stays the only writable mount.
      ...(settings.templatesVolume ? [{ Type: 'bind' as const, Source: settings.templatesVolume, Target: TEMPLATES_PATH, ReadOnly: true }] : []),
      // The cloud provider's credential files, read-only: the CLI reads them, nothing can change them.
      ...(settings.credentialFiles ?? []).map((file) => ({ Type: 'bind' as const, Source: file.source, Target: credentialTarget(file), ReadOnly: true })),
    ],
    scratch: [
      { target: '/tmp', sizeBytes: 512 * MIB, mode: 0o1777 },
      { target: '/home/agent', sizeBytes: 256 * MIB, mode: 0o770, owner: AGENT_USER },
    ],
    memoryBytes: Math.round(settings.memoryMb * MIB),
    nanoCpus: Math.round(settings.cpus * 1e9),
    pidsLimit: settings.pidsLimit,
    capAdd: [...AGENT_CAPABILITIES],
  };
}

const MIB = 1024 * 1024;

/** A scratch mount as a container's HostConfig.Tmpfs option string. */
function tmpfsOptions(mount: ScratchMount): string {
  const [uid, gid] = mount.owner?.split(':') ?? [];
  const owner = uid === undefined ? '' : `,uid=${uid},gid=${gid}`;
  return `rw,nosuid,nodev,size=${Math.round(mount.sizeBytes / MIB)}m${owner},mode=${mount.mode.toString(8).padStart(4, '0')}`;
}

/** The create options of an agent container (agentRun), on the network's Docker network, secrets on stdin. */
export function agentContainerOptions(settings: ContainerSettings, spec: AgentSpec, name: string): Docker.ContainerCreateOptions {
  const run = agentRun(settings, spec, SECRETS_FROM_STDIN);
  return {
    name,
    Image: run.image,
    ...(run.cmd ? { Cmd: run.cmd } : {}),
    // Root with no capability but SETUID, SETGID and KILL: the entrypoint switches to the agent's uid at once,
    // keeping those three for the agent alone, which runs the CLI under CLI_USER with none (scripts/entrypoint.sh).
    User: run.user,
    WorkingDir: run.workingDir,
    // The secrets line arrives on stdin (attached before the start, closed after the line).
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    Env: Object.entries(run.env).map(([key, value]) => `${key}=${value}`),
    Labels: run.labels,
    HostConfig: {
      Memory: run.memoryBytes,
      // Swap equal to memory: no swap at all, so the memory limit is the limit.
      MemorySwap: run.memoryBytes,
      // The image cannot be changed from inside: only the workspace and these scratch dirs are writable.
      ReadonlyRootfs: true,
      Tmpfs: Object.fromEntries(run.scratch.map((mount) => [mount.target, tmpfsOptions(mount)])),
      NanoCpus: run.nanoCpus,
      PidsLimit: run.pidsLimit,
      CapDrop: ['ALL'],
      CapAdd: run.capAdd,
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      Init: true,
      ExtraHosts: ['host.docker.internal:host-gateway'],
      Mounts: run.mounts,
      NetworkMode: settings.network,
      RestartPolicy: { Name: 'no' },
      // The reaper reads a dead agent's logs before it removes the container.
      AutoRemove: false,
    },
  };
}
