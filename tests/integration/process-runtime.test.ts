import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProcessRuntime, type AgentSpec } from '../../lib/runtime/index.js';
import { taskSpecSchema } from '../../lib/task.js';
import { repoRoot } from '../helpers/cli.js';
import { openNetwork, testConfig, uniqueNetwork, type TestNetwork } from '../helpers/network.js';
import { eventually } from '../helpers/eventually.js';
import { isAlive, killQuietly } from '../helpers/processes.js';

const fixture = path.join(repoRoot(), 'tests/fixtures/process-agent.mjs');
let dir: string;
let runtime: ProcessRuntime;

const spec = (agentId: string, env: Record<string, string> = {}): AgentSpec => ({
  agentId,
  role: 'domain',
  domain: 'backend',
  env: { PID_FILE: path.join(dir, `${agentId}.pid`), ...env },
});

async function grandchildOf(agentId: string): Promise<number> {
  const file = path.join(dir, `${agentId}.pid`);
  await eventually(() => existsSync(file) && readFileSync(file, 'utf8') !== '', { what: `${agentId}'s grandchild`, timeoutMs: 5000 });
  return Number(await readFile(file, 'utf8'));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dan-process-runtime-'));
  const config = testConfig(uniqueNetwork('t'), { DAN_WORKSPACE: path.join(dir, 'workspace') });
  runtime = await ProcessRuntime.create(config, {
    entry: (s) => [process.execPath, fixture, s.env.MODE ?? 'serve'],
    parentEnv: { PATH: process.env.PATH, HOME: process.env.HOME, PARENT_SECRET: 'leaked' },
    logDir: path.join(dir, 'logs'),
  });
});

afterEach(async () => {
  await runtime.stopAll({ timeoutMs: 500 });
});

afterAll(async () => {
  await runtime?.stopAll({ timeoutMs: 500 });
  await runtime?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ProcessRuntime', () => {
  it('starts an agent with the spec env, PATH and HOME from the parent, in the workspace', async () => {
    const handle = await runtime.spawn(spec('p-env', { CUSTOM: 'yes', AGENT_ID: 'spoofed' }));
    expect(handle).toMatchObject({ agentId: 'p-env', role: 'domain', domain: 'backend', runtime: 'process', running: true });
    expect(handle.name).toBe(`pid:${handle.ref}`);
    // stdout and stderr are two pipes: their lines arrive in either order.
    await eventually(
      async () => {
        const sofar = await runtime.logs('p-env');
        return sofar.includes('ready') && sofar.includes('to stderr');
      },
      { what: 'the agent to start', timeoutMs: 5000 },
    );

    const logs = await runtime.logs('p-env');
    expect(logs).toContain('agent=p-env role=domain domain=backend custom=yes secret=none path=set');
    expect(logs).toContain(`cwd=${path.join(dir, 'workspace')}`);
    const lines = logs.trimEnd().split('\n');
    expect(await runtime.logs('p-env', { tail: 1 })).toBe(`${lines.at(-1)}\n`);
    expect(await runtime.logs('p-env', { tail: 2 })).toBe(`${lines.slice(-2).join('\n')}\n`);
  });

  it('lists what it started, running or exited, until it is removed', async () => {
    await runtime.spawn(spec('p-run'));
    await runtime.spawn(spec('p-exit', { MODE: 'exit' }));
    await eventually(async () => (await runtime.list()).some((a) => a.agentId === 'p-exit' && !a.running), { what: 'p-exit to exit', timeoutMs: 5000 });

    const agents = await runtime.list();
    expect(agents.map((a) => [a.agentId, a.running]).sort()).toEqual([
      ['p-exit', false],
      ['p-run', true],
    ]);
    expect(await runtime.logs('p-exit')).toContain('agent=p-exit');
    // Its end is the end of what it started, as in a container.
    const orphan = await grandchildOf('p-exit');
    await eventually(() => !isAlive(orphan), { what: "the exited agent's grandchild to die", timeoutMs: 5000 });

    await runtime.remove('p-exit');
    expect((await runtime.list()).map((a) => a.agentId)).toEqual(['p-run']);
    expect(await runtime.logs('p-exit')).toBe('');
  });

  it('stop sends SIGTERM, lets the agent finish, and forgets it', async () => {
    const handle = await runtime.spawn(spec('p-stop'));
    await eventually(async () => (await runtime.logs('p-stop')).includes('ready'), { what: 'the agent to start', timeoutMs: 5000 });
    const grandchild = await grandchildOf('p-stop');

    await runtime.stop('p-stop', { timeoutMs: 5000 });
    expect(isAlive(Number(handle.ref))).toBe(false);
    // SIGKILL is delivered asynchronously: the group is signalled when stop returns, dead a moment later.
    await eventually(() => !isAlive(grandchild), { what: 'the grandchild to die', timeoutMs: 2000 });
    expect(await runtime.list()).toEqual([]);
    expect(await readFile(path.join(dir, 'logs', 'p-stop.log'), 'utf8')).toContain('got SIGTERM');
  });

  it('stop kills an agent that ignores SIGTERM after the timeout', async () => {
    const handle = await runtime.spawn(spec('p-stubborn', { MODE: 'stubborn' }));
    await eventually(async () => (await runtime.logs('p-stubborn')).includes('ready'), { what: 'the agent to start', timeoutMs: 5000 });

    const started = Date.now();
    await runtime.stop('p-stubborn', { timeoutMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(isAlive(Number(handle.ref))).toBe(false);
    expect(await readFile(path.join(dir, 'logs', 'p-stubborn.log'), 'utf8')).toContain('ignoring SIGTERM');
  });

  it('remove kills the whole process group, grandchildren included', async () => {
    const handle = await runtime.spawn(spec('p-remove', { MODE: 'stubborn' }));
    const grandchild = await grandchildOf('p-remove');
    expect(isAlive(grandchild)).toBe(true);

    await runtime.remove('p-remove');
    await eventually(() => !isAlive(grandchild) && !isAlive(Number(handle.ref)), { what: 'the group to die', timeoutMs: 2000 });
    expect(await runtime.list()).toEqual([]);
  });

  it('treats unknown agents as a no-op and refuses a second agent with the same id', async () => {
    await expect(runtime.stop('nobody')).resolves.toBeUndefined();
    await expect(runtime.remove('nobody')).resolves.toBeUndefined();
    expect(await runtime.logs('nobody')).toBe('');
    await runtime.spawn(spec('p-twice'));
    await expect(runtime.spawn(spec('p-twice'))).rejects.toMatchObject({ code: 'DAN_RUNTIME' });
  });

  it('reports an entry that cannot start as DAN_RUNTIME', async () => {
    const broken = await ProcessRuntime.create(testConfig(uniqueNetwork('t'), { DAN_WORKSPACE: path.join(dir, 'workspace') }), {
      entry: [path.join(dir, 'no-such-binary')],
    });
    await expect(broken.spawn(spec('p-broken'))).rejects.toMatchObject({ code: 'DAN_RUNTIME' });
    expect(await broken.list()).toEqual([]);
  });
});

describe('a real agent on the process runtime, killed with SIGKILL', () => {
  let net: TestNetwork;
  let workspace: string;
  let agents: ProcessRuntime;
  const leftovers: number[] = [];

  beforeAll(async () => {
    net = await openNetwork({}, 'proc-leftovers');
    workspace = path.join(dir, 'leftovers-workspace');
    await mkdir(workspace, { recursive: true });
    agents = await ProcessRuntime.create({ ...net.config, workspace }, {
      entry: (s) => [process.execPath, '--import', import.meta.resolve('tsx'), path.join(repoRoot(), 'bin', 'dan.ts'), 'agent', '--domain', s.domain],
      parentEnv: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
  });

  afterAll(async () => {
    for (const pid of leftovers) killQuietly(pid);
    await agents?.stopAll({ timeoutMs: 500 });
    await agents?.close();
    await net?.cleanup();
  });

  it('takes the CLI it ran with it, and the session a tool of the CLI started', async () => {
    // A CLI that runs a "tool" in a session of its own (as Claude Code's Bash tool does), then works for long.
    const cli = path.join(dir, 'busy-claude.sh');
    await writeFile(
      cli,
      [
        '#!/bin/sh',
        'setsid sleep 600 &',
        // An absolute path: the CLI runs in the task's worktree, not in the workspace itself.
        `echo "$$ $!" > ${path.join(dir, 'cli.pids')}`,
        'printf \'{"type":"system","subtype":"init","session_id":"s","tools":[],"model":"m","cwd":"%s"}\\n\' "$PWD"',
        'exec sleep 600',
      ].join('\n'),
      { mode: 0o755 },
    );
    const handle = await agents.spawn({
      agentId: 'p-killed',
      role: 'domain',
      domain: 'backend',
      env: { DAN_CLAUDE_BIN: cli, DAN_HEARTBEAT_MS: '200', DAN_HEARTBEAT_TTL_MS: '1000', DAN_LOG_LEVEL: 'warn' },
    });
    const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'work for a long time', timeoutS: 600, maxAttempts: 3 }));
    const pidsFile = path.join(dir, 'cli.pids');
    await eventually(() => existsSync(pidsFile) && readFileSync(pidsFile, 'utf8').includes(' '), { what: 'the CLI to start its tool', timeoutMs: 30_000 });
    const [cliPid, toolPid] = readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number) as [number, number];
    leftovers.push(cliPid, toolPid);
    expect(isAlive(cliPid) && isAlive(toolPid)).toBe(true);
    expect((await net.bus.tasks.get(id))?.status).toBe('active');

    process.kill(Number(handle.ref), 'SIGKILL');
    await eventually(() => !isAlive(Number(handle.ref)) && !isAlive(cliPid) && !isAlive(toolPid), { what: 'the agent, its CLI and the tool session to be gone', timeoutMs: 10_000 }).catch(
      (error: Error) => {
        throw new Error(`${error.message}: agent ${isAlive(Number(handle.ref))}, CLI ${isAlive(cliPid)}, tool ${isAlive(toolPid)}`);
      },
    );
  }, 60_000);
});
