import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { agentContainerOptions, type ContainerSettings } from '../../lib/runtime/container-spec.js';
import { agentServiceSpec, AGENT_SECRETS_FILE } from '../../lib/runtime/swarm-spec.js';
import { agentEnvironment, secretsLine } from '../../lib/secrets.js';

// The swarm runtime's service spec (issue 14) comes from the same run as the docker runtime's container: the same
// user, limits, capabilities, read-only root and labels; secrets as a Swarm secret file, never in its Env.

const settings: ContainerSettings & { stopGraceMs: number } = {
  network: 'swarmspec',
  installation: 'inst-1',
  image: 'dan-agent:test',
  agentRedisUrl: 'redis://:pw@redis:6379',
  workspaceVolume: 'swarmspec-workspace',
  memoryMb: 768,
  cpus: 0.75,
  pidsLimit: 256,
  stopGraceMs: 5000,
};
const spec = { agentId: 'backend-01abc', role: 'domain' as const, domain: 'backend', env: { REDIS_URL: 'redis://:leak@x:1', ANTHROPIC_API_KEY: 'sk-leak', DAN_MODEL: 'm' } };

describe('an agent service spec', () => {
  const service = agentServiceSpec(settings, spec, 'swarmspec-backend-01abc', { id: 'sid', name: 'sname' }, ['node.labels.dan.domain == backend']);
  const container = agentContainerOptions(settings, spec, 'swarmspec-backend-01abc');
  const task = service.TaskTemplate as { ContainerSpec: Record<string, unknown>; Resources: { Limits: Record<string, number> }; RestartPolicy: unknown; Placement: unknown; Networks: unknown };

  it('is one replica that never restarts by itself, placed by the domain constraint, on the network', () => {
    expect(service.Mode).toEqual({ Replicated: { Replicas: 1 } });
    expect(task.RestartPolicy).toMatchObject({ Condition: 'none' });
    expect(task.Placement).toEqual({ Constraints: ['node.labels.dan.domain == backend'] });
    expect(task.Networks).toEqual([{ Target: 'swarmspec' }]);
  });

  it("has the container's user, labels, environment, limits, capabilities and read-only root", () => {
    const c = task.ContainerSpec;
    expect(c.User).toBe(container.User);
    expect(c.Labels).toEqual(container.Labels);
    expect(service.Labels).toEqual(container.Labels);
    const withoutSource = (env: string[]) => env.filter((kv) => !kv.startsWith('DAN_SECRETS='));
    expect(withoutSource(c.Env as string[])).toEqual(withoutSource(container.Env!));
    expect(c.Env).toContain(`DAN_SECRETS=file:/run/secrets/${AGENT_SECRETS_FILE}`);
    expect(c.ReadOnly).toBe(true);
    expect(c.CapabilityDrop).toEqual(['ALL']);
    expect(c.CapabilityAdd).toEqual(container.HostConfig!.CapAdd);
    expect(task.Resources.Limits).toEqual({ MemoryBytes: container.HostConfig!.Memory, NanoCPUs: container.HostConfig!.NanoCpus, Pids: 256 });
    expect(c.StopGracePeriod).toBe(5e9);
  });

  it('holds no credential in its Env, and mounts the secret for the agent uid alone', () => {
    const text = JSON.stringify(service);
    for (const leak of ['leak', 'sk-leak', 'pw@']) expect(text).not.toContain(leak);
    expect((task.ContainerSpec.Secrets as unknown[])[0]).toEqual({ SecretID: 'sid', SecretName: 'sname', File: { Name: AGENT_SECRETS_FILE, UID: '1000', GID: '1000', Mode: 0o400 } });
  });
});

describe('DAN_SECRETS=file:', () => {
  it('reads the secrets line from the file, and not into the environment variable it came from', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dan-secrets-file-'));
    try {
      const file = path.join(dir, 'secrets');
      await writeFile(file, secretsLine({ REDIS_URL: 'redis://:pw@r:6379' }));
      await chmod(file, 0o400);
      const env = await agentEnvironment({ DAN_SECRETS: `file:${file}`, AGENT_ID: 'a' }, new PassThrough());
      expect(env).toEqual({ AGENT_ID: 'a', REDIS_URL: 'redis://:pw@r:6379' });
      await expect(agentEnvironment({ DAN_SECRETS: `file:${dir}/missing` }, new PassThrough())).rejects.toThrow(/cannot read the secrets file .*missing.*ENOENT/);
      await expect(agentEnvironment({ DAN_SECRETS: 'file:relative' }, new PassThrough())).rejects.toThrow(/absolute path/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
