import { describe, expect, it } from 'vitest';
import { loadConfig, PASSTHROUGH_ENV } from '../../lib/config.js';
import { agentEnv, plannerEnv } from '../../lib/orchestrator/agent-env.js';
import { parsePlannerLine } from '../../lib/orchestrator/planner-protocol.js';
import { agentContainerOptions } from '../../lib/runtime/container-spec.js';
import { danArgs } from '../../lib/runtime/index.js';

const config = loadConfig({
  REDIS_URL: 'redis://127.0.0.1:6399',
  DAN_AGENT_REDIS_URL: 'redis://host.docker.internal:6399',
  DAN_NETWORK: 'dan-env',
  DAN_WORKSPACE: '/srv/dan/ws',
  DAN_TEMPLATES: '/srv/dan/agents',
  DAN_CLAUDE_BIN: '/opt/claude/bin/claude',
  DAN_HEARTBEAT_MS: '250',
  DAN_HEARTBEAT_TTL_MS: '1250',
  DAN_REAPER_MS: '300',
  DAN_IDLE_TIMEOUT_MS: '4000',
  DAN_SHUTDOWN_GRACE_MS: '700',
  DAN_AGENT_CONCURRENCY: '2',
  DAN_TASK_ATTEMPTS: '4',
  DAN_LOG_MAXLEN: '500',
  DAN_LOG_LEVEL: 'debug',
  DAN_WORKSPACE_MODE: 'shared',
  DAN_MERGE_ATTEMPTS: '0',
  DAN_REVIEW_ROUNDS: '3',
});

const parentEnv = {
  ANTHROPIC_API_KEY: 'sk-ant-api03-secret',
  ANTHROPIC_BASE_URL: 'http://127.0.0.1:4010',
  ANTHROPIC_MODEL: '',
  HTTPS_PROXY: 'http://proxy.internal:3128',
  OPENAI_API_KEY: 'not-for-agents',
  GITHUB_TOKEN: 'not-for-agents-either',
  PATH: '/usr/bin',
  HOME: '/root',
  REDIS_URL: 'redis://parent-only:6379',
  DAN_WORKSPACE: '/parent/workspace',
};

const spec = (runtime: 'process' | 'docker') => ({ agentId: 'backend-1a2b3c4d', domain: 'backend', role: 'domain' as const, runtime });

describe('agentEnv: the environment a spawned agent starts with', () => {
  it('says who the agent is and which network it is on', () => {
    const env = agentEnv(config, spec('process'), {});
    expect(env).toMatchObject({ AGENT_ID: 'backend-1a2b3c4d', AGENT_ROLE: 'domain', DOMAIN_TYPE: 'backend', DAN_NETWORK: 'dan-env', DAN_RUNTIME: 'process' });
    expect(agentEnv(config, { ...spec('docker'), role: 'main', domain: 'main', agentId: 'orchestrator-2' }, {})).toMatchObject({
      AGENT_ID: 'orchestrator-2',
      AGENT_ROLE: 'main',
      DOMAIN_TYPE: 'main',
      DAN_RUNTIME: 'docker',
    });
  });

  it('gives agents the bus as they reach it (DAN_AGENT_REDIS_URL), not as the orchestrator does', () => {
    expect(agentEnv(config, spec('docker'), parentEnv).REDIS_URL).toBe('redis://host.docker.internal:6399');
    expect(agentEnv(config, spec('process'), parentEnv).REDIS_URL).toBe(config.agentRedisUrl);
    const plain = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6399' });
    expect(agentEnv(plain, spec('process'), {}).REDIS_URL).toBe('redis://127.0.0.1:6399');
  });

  it("carries the network's timings and limits, so an agent lives by the orchestrator's clock", () => {
    expect(agentEnv(config, spec('docker'), {})).toMatchObject({
      DAN_HEARTBEAT_MS: '250',
      DAN_HEARTBEAT_TTL_MS: '1250',
      DAN_REAPER_MS: '300',
      DAN_IDLE_TIMEOUT_MS: '4000',
      DAN_SHUTDOWN_GRACE_MS: '700',
      DAN_AGENT_CONCURRENCY: '2',
      DAN_TASK_ATTEMPTS: '4',
      DAN_LOG_MAXLEN: '500',
      DAN_LOG_LEVEL: 'debug',
    });
  });

  it("carries how tasks are worked (workspace mode, conflict resolutions, review rounds): an agent in another mode would merge behind the orchestrator's back", () => {
    expect(agentEnv(config, spec('docker'), {})).toMatchObject({ DAN_WORKSPACE_MODE: 'shared', DAN_MERGE_ATTEMPTS: '0', DAN_REVIEW_ROUNDS: '3' });
  });

  it('passes the model and permission mode only when they are set', () => {
    expect(agentEnv(config, spec('process'), {})).not.toHaveProperty('DAN_MODEL');
    expect(agentEnv(config, spec('process'), {})).not.toHaveProperty('DAN_PERMISSION_MODE');
    const withModel = loadConfig({ DAN_MODEL: 'claude-sonnet-4-5', DAN_PERMISSION_MODE: 'acceptEdits' });
    expect(agentEnv(withModel, spec('process'), {})).toMatchObject({ DAN_MODEL: 'claude-sonnet-4-5', DAN_PERMISSION_MODE: 'acceptEdits' });
  });

  it('passes through only the ANTHROPIC_* and other pass-through variables that are set and not empty', () => {
    const env = agentEnv(config, spec('process'), parentEnv);
    expect(env).toMatchObject({
      ANTHROPIC_API_KEY: 'sk-ant-api03-secret',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:4010',
      HTTPS_PROXY: 'http://proxy.internal:3128',
    });
    expect(env).not.toHaveProperty('ANTHROPIC_MODEL'); // empty counts as unset
    for (const name of ['OPENAI_API_KEY', 'GITHUB_TOKEN', 'PATH', 'HOME']) expect(env).not.toHaveProperty(name);
    const extra = Object.keys(env).filter((k) => !k.startsWith('DAN_') && !['REDIS_URL', 'AGENT_ID', 'AGENT_ROLE', 'DOMAIN_TYPE'].includes(k));
    expect(extra.every((k) => (PASSTHROUGH_ENV as readonly string[]).includes(k))).toBe(true);
  });

  it('passes through every access method the CLI documents: subscription tokens, Bedrock, Vertex', () => {
    const access = {
      CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-one',
      CLAUDE_CODE_USE_BEDROCK: '1',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'aws-secret',
      AWS_SESSION_TOKEN: 'aws-session',
      AWS_PROFILE: 'work',
      AWS_BEARER_TOKEN_BEDROCK: 'bedrock-bearer',
      ANTHROPIC_BEDROCK_BASE_URL: 'https://bedrock.example',
      CLAUDE_CODE_USE_VERTEX: '1',
      ANTHROPIC_VERTEX_PROJECT_ID: 'proj',
      CLOUD_ML_REGION: 'us-east5',
      GOOGLE_APPLICATION_CREDENTIALS: '/home/me/key.json',
    };
    expect(agentEnv(config, spec('docker'), access)).toMatchObject(access);
  });

  it("never lets the parent's own dan settings override the agent's", () => {
    const env = agentEnv(config, spec('process'), parentEnv);
    expect(env.REDIS_URL).toBe(config.agentRedisUrl);
    expect(env.DAN_WORKSPACE).toBe('/srv/dan/ws');
  });

  it("gives a child process this machine's workspace, templates and claude binary", () => {
    expect(agentEnv(config, spec('process'), {})).toMatchObject({
      DAN_WORKSPACE: '/srv/dan/ws',
      DAN_TEMPLATES: '/srv/dan/agents',
      DAN_CLAUDE_BIN: '/opt/claude/bin/claude',
    });
  });

  it("gives a container /workspace and leaves templates and claude to the image's own", () => {
    const env = agentEnv(config, spec('docker'), {});
    expect(env.DAN_WORKSPACE).toBe('/workspace');
    expect(env).not.toHaveProperty('DAN_TEMPLATES');
    expect(env).not.toHaveProperty('DAN_CLAUDE_BIN');
  });

  it('is pure: the same inputs give the same environment, and the parent env is not changed', () => {
    const before = { ...parentEnv };
    expect(agentEnv(config, spec('docker'), parentEnv)).toEqual(agentEnv(config, spec('docker'), parentEnv));
    expect(parentEnv).toEqual(before);
  });
});

describe('plannerEnv: the environment of a planner run (issue 16, item 1)', () => {
  it('has the prompt, the paths and the model variables, and no Redis URL nor anything else of the parent', () => {
    for (const runtime of ['process', 'docker'] as const) {
      const env = plannerEnv(config, { agentId: 'planner-1', runtime }, parentEnv, { prompt: 'Goal: x', timeoutMs: 90_000 });
      expect(env).toMatchObject({ AGENT_ID: 'planner-1', AGENT_ROLE: 'planner', DOMAIN_TYPE: 'planner', DAN_PLANNER_PROMPT: 'Goal: x', DAN_PLANNER_TIMEOUT_MS: '90000' });
      expect(env.ANTHROPIC_API_KEY).toBe('sk-ant-api03-secret');
      expect(Object.keys(env).filter((k) => k.startsWith('REDIS') || k.includes('HEARTBEAT'))).toEqual([]);
      expect(JSON.stringify(env)).not.toMatch(/not-for-agents|parent-only|6399/);
    }
  });
});

describe('planner run specs in the runtimes', () => {
  const settings = { network: 'n', installation: 'i1', image: 'img', agentRedisUrl: 'redis://:pw@redis:6379', workspaceVolume: 'n-workspace', memoryMb: 512, cpus: 0.5, pidsLimit: 256 };

  it('a planner container gets no REDIS_URL, even when its spec names one, and the workspace read-only; an agent takes its URL on stdin and writes the workspace', () => {
    const planner = agentContainerOptions(settings, { agentId: 'planner-1', role: 'planner', domain: 'planner', env: { REDIS_URL: 'redis://:pw@x:1' } }, 'n-planner-1');
    expect(planner.Env!.some((e) => e.startsWith('REDIS_URL='))).toBe(false);
    expect(planner.HostConfig!.Mounts).toEqual([{ Type: 'volume', Source: 'n-workspace', Target: '/workspace', ReadOnly: true }]);
    expect(planner.HostConfig).toMatchObject({ ReadonlyRootfs: true, CapDrop: ['ALL'], Privileged: false });
    expect(planner.Labels).toMatchObject({ 'dan.role': 'planner', 'dan.installation': 'i1' });
    const agent = agentContainerOptions(settings, { agentId: 'backend-1', role: 'domain', domain: 'backend', env: {} }, 'n-backend-1');
    // The agent's Redis URL is a secret: on its stdin (DockerRuntime.spawn), never in its Env.
    expect(agent.Env!.some((e) => e.startsWith('REDIS_URL='))).toBe(false);
    expect(agent.Env).toContain('DAN_SECRETS=stdin');
    expect(agent.HostConfig!.Mounts).toEqual([{ Type: 'volume', Source: 'n-workspace', Target: '/workspace' }]);
  });

  it('the process runtime starts `dan planner` for a planner spec', () => {
    expect(danArgs({ agentId: 'planner-1', role: 'planner', domain: 'planner', env: {} })).toEqual(['planner']);
  });
});

describe('planner protocol lines', () => {
  it('takes entries and one result, and ignores anything else', () => {
    expect(parsePlannerLine('{"danPlanner":"entry","entry":{"type":"info","text":"hi"}}')).toEqual({ danPlanner: 'entry', entry: { type: 'info', text: 'hi' } });
    expect(parsePlannerLine('{"danPlanner":"result","status":"completed","result":"ok","costUsd":0.1,"turns":2}')).toMatchObject({ status: 'completed', turns: 2 });
    for (const line of ['', 'plain text', '{"danPlanner":"result","status":"done"}', '{"danPlanner":"entry","entry":{"type":"nope","text":""}}', '{"level":30}', '{bad json']) {
      expect(parsePlannerLine(line), line).toBeUndefined();
    }
  });
});
