import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, chown } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS, DockerRuntime, createDockerClient, type AgentSpec, type Docker } from '../../lib/runtime/index.js';
import { repoRoot } from '../helpers/cli.js';
import { containerExists, ensureTestAgentImage, removeContainers, removeDanNetwork } from '../helpers/docker.js';
import { testConfig, uniqueNetwork } from '../helpers/network.js';

// The docker runtime against the real engine. Agents run the base image with `sleep` instead of dan: what is
// under test is the container the runtime makes, not the agent inside it.
const image = process.env.DAN_TEST_IMAGE ?? process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm';
const network = uniqueNetwork('t');
const otherNetwork = `${network}-other`;
const docker: Docker = createDockerClient();
const config = testConfig(network, { DAN_RUNTIME: 'docker', DAN_AGENT_MEMORY_MB: '256', DAN_AGENT_CPUS: '0.25' });
const tempDirs: string[] = [];
/** This file's installation id (an orchestrator reads it from Redis: installationId). */
const installation = `inst-${network}`;
let runtime: DockerRuntime;
let agentImage: string;

const spec = (agentId: string, domain = 'backend', env: Record<string, string> = {}): AgentSpec => ({
  agentId,
  role: 'domain',
  domain,
  env: { REDIS_URL: 'redis://host.docker.internal:6379', ...env },
});

async function imageExists(name: string): Promise<boolean> {
  return docker
    .getImage(name)
    .inspect()
    .then(() => true)
    .catch(() => false);
}

/** A container dan did not make for this network: it must survive everything this network's runtime does. */
async function startForeign(name: string, labels: Record<string, string>): Promise<string> {
  const container = await docker.createContainer({
    name,
    Image: image,
    Cmd: ['sleep', '300'],
    Labels: labels,
    HostConfig: { Init: true, NetworkMode: 'bridge' },
  });
  await container.start();
  return container.id;
}

async function isRunning(id: string): Promise<boolean> {
  const info = await docker.getContainer(id).inspect();
  return info.State.Running;
}

async function waitExited(rt: DockerRuntime, agentId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const agent = (await rt.list()).find((a) => a.agentId === agentId);
    if (agent && !agent.running) return;
    await sleep(100);
  }
  throw new Error(`agent ${agentId} did not exit`);
}

const foreign: Record<string, string> = {};

beforeAll(async () => {
  if (!(await imageExists(image))) {
    execFileSync(path.join(repoRoot(), 'scripts/airgap-images.sh'), ['--base-only'], {
      env: { ...process.env, DAN_BASE_IMAGE: image },
      stdio: 'inherit',
    });
  }
  foreign.plain = await startForeign(`${network}-foreign-plain`, {});
  // Same agent id as one of ours, but another network: only the network label tells them apart.
  foreign.other = await startForeign(`${network}-foreign-other`, {
    [LABELS.network]: otherNetwork,
    [LABELS.role]: 'domain',
    [LABELS.domain]: 'backend',
    [LABELS.agentId]: 'agent-shared',
  });
  // Our agent id and role, but no network label at all.
  foreign.unlabelled = await startForeign(`${network}-foreign-unlabelled`, {
    [LABELS.role]: 'domain',
    [LABELS.agentId]: 'agent-shared',
  });
  runtime = await DockerRuntime.create(config, { installation, image, cmd: ['sleep', '300'] });
  // What runs as which uid is the agent image's entrypoint's doing: those tests use the real image.
  agentImage = await ensureTestAgentImage(docker, process.env.DAN_BASE_IMAGE ?? 'dan-airgap/node:bookworm');
}, 900_000);

afterAll(async () => {
  await runtime?.close();
  await removeContainers(docker, `${LABELS.network}=${otherNetwork}`);
  await Promise.all(Object.values(foreign).map((id) => docker.getContainer(id).remove({ force: true }).catch(() => undefined)));
  await removeDanNetwork(docker, network);
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('DockerRuntime', () => {
  it('spawns a labelled, locked-down container with only the workspace mounted, on the network', async () => {
    const agentId = '01JABCDEFGHJKMNPQRSTVWXYZ0';
    const handle = await runtime.spawn(spec(agentId, 'backend', { AGENT_ID: 'spoofed', CUSTOM: 'yes' }));

    expect(handle).toMatchObject({ agentId, role: 'domain', domain: 'backend', runtime: 'docker', running: true });
    expect(handle.name).toBe(`${network}-backend-01jabcde`);
    const info = await docker.getContainer(handle.ref).inspect();
    expect(info.Name).toBe(`/${network}-backend-01jabcde`);
    expect(info.Config.Labels).toMatchObject({
      [LABELS.network]: network,
      [LABELS.role]: 'domain',
      [LABELS.domain]: 'backend',
      [LABELS.agentId]: agentId,
    });
    // Root with SETUID/SETGID/KILL only: the image's entrypoint drops to uid 1000 (see the next test).
    expect(info.Config.User).toBe('0:0');
    expect(info.Config.Env).toEqual(
      expect.arrayContaining([`AGENT_ID=${agentId}`, 'AGENT_ROLE=domain', 'DOMAIN_TYPE=backend', 'CUSTOM=yes', 'DAN_WORKSPACE=/workspace', 'DAN_SECRETS=stdin', 'DAN_CLI_USER=1001:1000']),
    );
    // The Redis URL went on stdin, not into the container's config.
    expect((info.Config.Env ?? []).filter((kv) => kv.startsWith('REDIS_URL='))).toEqual([]);
    expect(JSON.stringify(info)).not.toContain('host.docker.internal:6379');
    const host = info.HostConfig;
    expect(host.Memory).toBe(256 * 1024 * 1024);
    expect(host.NanoCpus).toBe(250_000_000);
    expect(host.PidsLimit).toBe(512);
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).toEqual(['SETUID', 'SETGID', 'KILL']);
    expect(host.SecurityOpt).toEqual(['no-new-privileges']);
    expect(host.Privileged).toBe(false);
    expect(host.Init).toBe(true);
    expect(host.ExtraHosts).toEqual(['host.docker.internal:host-gateway']);
    expect(host.RestartPolicy?.Name).toBe('no');
    expect(host.AutoRemove).toBe(false);
    expect(host.Binds ?? []).toEqual([]);
    expect(info.Mounts).toHaveLength(1);
    expect(info.Mounts[0]).toMatchObject({ Type: 'volume', Name: config.workspaceVolume, Destination: '/workspace' });
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([network]);
    const net = await docker.getNetwork(network).inspect();
    expect(net.Labels).toMatchObject({ [LABELS.network]: network });
  });

  it('runs agents as uid 1000 (the image drops root) that can write to the shared workspace, with their secrets on stdin, and returns their logs', async () => {
    const script =
      'id -u; echo to-stderr >&2; read -r secrets; case "$secrets" in *REDIS_URL*host.docker.internal*) echo secrets-on-stdin;; esac; ' +
      '[ -z "${REDIS_URL:-}" ] && echo no-redis-url-in-env; echo "from $AGENT_ID" > /workspace/probe-$AGENT_ID && cat /workspace/probe-$AGENT_ID';
    const writer = await DockerRuntime.create(config, { installation, image: agentImage, cmd: ['sh', '-c', script] });
    await writer.spawn(spec('writer-1', 'frontend'));
    await waitExited(writer, 'writer-1');

    const logs = await writer.logs('writer-1');
    expect(logs.split('\n')).toEqual(expect.arrayContaining(['1000', 'to-stderr', 'secrets-on-stdin', 'no-redis-url-in-env', 'from writer-1']));
    const lines = logs.trimEnd().split('\n');
    expect(await writer.logs('writer-1', { tail: 1 })).toBe(`${lines.at(-1)}\n`);

    // Another agent sees the file: it is one workspace, not one per container.
    const reader = await DockerRuntime.create(config, { installation, image, cmd: ['cat', '/workspace/probe-writer-1'] });
    await reader.spawn(spec('reader-1', 'frontend'));
    await waitExited(reader, 'reader-1');
    expect(await reader.logs('reader-1')).toBe('from writer-1\n');
    await writer.remove('writer-1');
    await reader.remove('reader-1');
  });

  it('gives a root-owned workspace volume to uid 1000 before agents use it', async () => {
    const volume = `${network}-rooted`;
    await docker.createVolume({ Name: volume, Labels: { [LABELS.network]: network } });
    const root = await docker.createContainer({
      Image: image,
      // Not empty, or Docker would copy the image's /workspace (and its owner) into it at the next mount.
      Cmd: ['sh', '-c', 'touch /workspace/made-by-root && chown 0:0 /workspace'],
      User: '0:0',
      HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/workspace', VolumeOptions: { NoCopy: true } as never }] },
    });
    await root.start();
    await root.wait();
    await root.remove();
    const rooted = await DockerRuntime.create({ ...config, workspaceVolume: volume }, { installation, image: agentImage, cmd: ['sh', '-c', 'touch /workspace/x && stat -c %u /workspace'] });
    await rooted.spawn(spec('rooted-1'));
    await waitExited(rooted, 'rooted-1');
    expect(await rooted.logs('rooted-1')).toBe('1000\n');
    await rooted.remove('rooted-1');
  });

  it('gives an agent whose short name is taken the full id as its name', async () => {
    const first = await runtime.spawn(spec('01JSAMEPREFIXAAAAAAAAAAAAA'));
    const second = await runtime.spawn(spec('01JSAMEPREFIXBBBBBBBBBBBBB'));
    expect(first.name).toBe(`${network}-backend-01jsamep`);
    expect(second.name).toBe(`${network}-backend-01jsameprefixbbbbbbbbbbbbb`);
    await expect(runtime.spawn(spec('01JSAMEPREFIXAAAAAAAAAAAAA'))).rejects.toMatchObject({ code: 'DAN_RUNTIME' });
    await runtime.remove(first.agentId);
    await runtime.remove(second.agentId);
  });

  it('lists only the agents of its own network', async () => {
    await runtime.spawn(spec('agent-shared', 'devops'));
    const agents = await runtime.list();
    const refs = agents.map((a) => a.ref);
    expect(agents.map((a) => a.agentId).sort()).toEqual(['01JABCDEFGHJKMNPQRSTVWXYZ0', 'agent-shared']);
    for (const id of Object.values(foreign)) expect(refs).not.toContain(id);
    expect(agents.every((a) => a.runtime === 'docker' && a.running)).toBe(true);
  });

  it('stop and remove act on its own agent and leave a foreign one with the same agent id running', async () => {
    const ours = (await runtime.list()).find((a) => a.agentId === 'agent-shared')!;
    const started = Date.now();
    await runtime.stop('agent-shared', { timeoutMs: 5000 });
    // sleep dies on SIGTERM under the init: no need to wait for the SIGKILL.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await containerExists(docker, ours.ref)).toBe(false);
    await runtime.remove('agent-shared');
    await runtime.stop('agent-shared');
    for (const id of Object.values(foreign)) expect(await isRunning(id)).toBe(true);
  });

  it('remove kills a running agent at once; unknown ids are a no-op', async () => {
    const handle = await runtime.spawn(spec('to-remove'));
    await runtime.remove('to-remove');
    expect(await containerExists(docker, handle.ref)).toBe(false);
    await expect(runtime.stop('never-spawned')).resolves.toBeUndefined();
    await expect(runtime.remove('never-spawned')).resolves.toBeUndefined();
    expect(await runtime.logs('never-spawned')).toBe('');
  });

  it('stopAll empties its network and nothing else', async () => {
    await runtime.spawn(spec('extra-1', 'frontend'));
    expect((await runtime.list()).length).toBeGreaterThanOrEqual(2);
    const count = await runtime.stopAll({ timeoutMs: 2000 });
    expect(count).toBeGreaterThanOrEqual(2);
    expect(await runtime.list()).toEqual([]);
    for (const id of Object.values(foreign)) expect(await isRunning(id)).toBe(true);
  });

  it('mounts an absolute path as a bind, and refuses one uid 1000 cannot write to', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-ws-'));
    tempDirs.push(dir);
    await chown(dir, 0, 0);
    const bindConfig = { ...config, workspaceVolume: dir };
    const script = 'echo bound > /workspace/bound.txt && echo ok';
    const failure = await DockerRuntime.create(bindConfig, { installation, image: agentImage, cmd: ['sh', '-c', script] }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'DAN_RUNTIME' });
    expect((failure as Error).message).toContain(`chown -R 1000:1000 ${dir}`);

    await chown(dir, 1000, 1000);
    const bound = await DockerRuntime.create(bindConfig, { installation, image: agentImage, cmd: ['sh', '-c', script] });
    const handle = await bound.spawn(spec('bind-1'));
    await waitExited(bound, 'bind-1');
    const info = await docker.getContainer(handle.ref).inspect();
    expect(info.Mounts).toHaveLength(1);
    expect(info.Mounts[0]).toMatchObject({ Type: 'bind', Source: dir, Destination: '/workspace' });
    expect(await readFile(path.join(dir, 'bound.txt'), 'utf8')).toBe('bound\n');
    expect((await stat(path.join(dir, 'bound.txt'))).uid).toBe(1000);
    await bound.remove('bind-1');
  });

  it('reports an engine it cannot reach as DAN_DOCKER_UNREACHABLE', async () => {
    const unreachable = createDockerClient({ host: 'unix:///nonexistent/docker.sock' });
    await expect(DockerRuntime.create(config, { docker: unreachable, installation, image })).rejects.toMatchObject({
      code: 'DAN_DOCKER_UNREACHABLE',
      retryable: true,
    });
  });
});
