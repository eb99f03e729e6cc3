import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { agentEnv } from '../../lib/orchestrator/agent-env.js';

// DAN_AGENT_CLAUDE_BIN: the CLI as spawned agents see it. The chaos tests use it to point agent containers at
// a stand-in CLI in the workspace; a user can use it for a wrapper or another build of the CLI.

const base = { REDIS_URL: 'redis://127.0.0.1:6399', DAN_NETWORK: 'dan-bin', DAN_CLAUDE_BIN: '/opt/claude/bin/claude' };
const spec = (runtime: 'process' | 'docker') => ({ agentId: 'backend-1', domain: 'backend', role: 'domain' as const, runtime });

describe('DAN_AGENT_CLAUDE_BIN', () => {
  it('is unset by default: containers run the image\'s own CLI, processes this one', () => {
    const config = loadConfig(base);
    expect(config.agentClaudeBin).toBeUndefined();
    expect(agentEnv(config, spec('docker'), {})).not.toHaveProperty('DAN_CLAUDE_BIN');
    expect(agentEnv(config, spec('process'), {}).DAN_CLAUDE_BIN).toBe('/opt/claude/bin/claude');
  });

  it('reaches agents of both runtimes as their DAN_CLAUDE_BIN; this process keeps its own', () => {
    const config = loadConfig({ ...base, DAN_AGENT_CLAUDE_BIN: '/workspace/.standin/claude' });
    expect(config.claudeBin).toBe('/opt/claude/bin/claude');
    expect(agentEnv(config, spec('docker'), {}).DAN_CLAUDE_BIN).toBe('/workspace/.standin/claude');
    expect(agentEnv(config, spec('process'), {}).DAN_CLAUDE_BIN).toBe('/workspace/.standin/claude');
  });
});
