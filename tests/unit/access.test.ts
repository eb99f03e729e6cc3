import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { accessMethod } from '../../lib/access.js';
import { loadConfig } from '../../lib/config.js';
import { ConfigError } from '../../lib/errors.js';
import { Redactor } from '../../lib/executor/redactor.js';
import { agentContainerOptions, CREDENTIALS_PATH } from '../../lib/runtime/container-spec.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dan-access-'));
const keyFile = path.join(dir, 'key.json');
const awsFile = path.join(dir, 'aws-credentials');
writeFileSync(keyFile, '{}');
writeFileSync(awsFile, '[work]\n');

describe('accessMethod: which one way to a model is in use', () => {
  it('names each method without a secret', () => {
    expect(accessMethod({})).toBeUndefined();
    expect(accessMethod({ ANTHROPIC_API_KEY: 'sk-ant-secret-1' })).toMatchObject({ method: 'api key', detail: 'ANTHROPIC_API_KEY is set' });
    expect(accessMethod({ CLAUDE_CODE_OAUTH_TOKEN: 'tok-aaaaaa,tok-bbbbbb,tok-cccccc' })).toMatchObject({
      method: 'subscription',
      detail: 'subscription: CLAUDE_CODE_OAUTH_TOKEN holds 3 tokens, at most 2 agents each',
    });
    expect(accessMethod({ CLAUDE_CODE_USE_BEDROCK: '1', AWS_REGION: 'us-east-1', AWS_PROFILE: 'work' })).toMatchObject({ method: 'bedrock' });
    expect(accessMethod({ CLAUDE_CODE_USE_VERTEX: '1', ANTHROPIC_VERTEX_PROJECT_ID: 'p', CLOUD_ML_REGION: 'r' })).toMatchObject({ method: 'vertex' });
    expect(accessMethod({ CLAUDE_CODE_USE_BEDROCK: '0', ANTHROPIC_BASE_URL: 'http://127.0.0.1:4010' })).toMatchObject({ method: 'base url' });
    for (const env of [{ CLAUDE_CODE_OAUTH_TOKEN: 'tok-secret-value' }, { AWS_SECRET_ACCESS_KEY: 'tok-secret-value', CLAUDE_CODE_USE_BEDROCK: '1' }]) {
      expect(JSON.stringify(accessMethod(env))).not.toContain('tok-secret-value');
    }
  });

  it('says what an incomplete cloud configuration lacks, and that an API key hides a subscription', () => {
    expect(accessMethod({ CLAUDE_CODE_USE_BEDROCK: 'true' })?.problem?.found).toMatch(/AWS_REGION is not/);
    expect(accessMethod({ CLAUDE_CODE_USE_VERTEX: '1', CLOUD_ML_REGION: 'r' })?.problem?.found).toMatch(/ANTHROPIC_VERTEX_PROJECT_ID is not/);
    expect(accessMethod({ ANTHROPIC_API_KEY: 'k', CLAUDE_CODE_OAUTH_TOKEN: 't' })?.note).toMatch(/wins over CLAUDE_CODE_OAUTH_TOKEN/);
  });
});

describe('the redactor knows every credential variable', () => {
  it('redacts AWS keys, subscription tokens token by token, and the Bedrock bearer token', () => {
    const redactor = Redactor.fromEnv({
      CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-first,sk-ant-oat01-second',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE123',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
      AWS_SESSION_TOKEN: 'aws-session-value',
      AWS_BEARER_TOKEN_BEDROCK: 'bedrock-bearer-value',
      AWS_REGION: 'eu-west-1',
    });
    const printed = 'sk-ant-oat01-second AKIAEXAMPLE123 aws-secret-value aws-session-value bedrock-bearer-value eu-west-1';
    expect(redactor.text(printed)).toBe('[redacted] [redacted] [redacted] [redacted] [redacted] eu-west-1');
  });
});

describe('configuration of access', () => {
  it('counts subscription tokens and refuses a malformed list without showing it', () => {
    expect(loadConfig({ CLAUDE_CODE_OAUTH_TOKEN: 'a-token,b-token' })).toMatchObject({ oauthTokenCount: 2, agentsPerToken: 2 });
    expect(loadConfig({ DAN_AGENTS_PER_TOKEN: '5' }).agentsPerToken).toBe(5);
    for (const bad of ['a-token,,b-token', 'a-token, b-token', ',a-token', 'a-token,']) {
      const error = (() => {
        try {
          loadConfig({ CLAUDE_CODE_OAUTH_TOKEN: bad });
        } catch (e) {
          return e as ConfigError;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.message).toMatch(/^CLAUDE_CODE_OAUTH_TOKEN=\(hidden\) is invalid: must be one token/);
      expect(error!.message).not.toContain('a-token');
    }
    expect(() => loadConfig({ DAN_AGENTS_PER_TOKEN: '0' })).toThrow(/DAN_AGENTS_PER_TOKEN/);
  });

  it('reads DAN_MAX_RUNNING and DAN_DAILY_BUDGET_USD, and refuses a cap of nothing or nonsense', () => {
    expect(loadConfig({})).toMatchObject({ maxRunning: undefined, dailyBudgetUsd: undefined });
    expect(loadConfig({ DAN_MAX_RUNNING: '3', DAN_DAILY_BUDGET_USD: '12.5' })).toMatchObject({ maxRunning: 3, dailyBudgetUsd: 12.5 });
    for (const bad of ['0', '-1', '1.5', 'two', '10001']) expect(() => loadConfig({ DAN_MAX_RUNNING: bad })).toThrow(new RegExp(`^DAN_MAX_RUNNING="${bad}" is invalid`));
    for (const bad of ['0', '-5', 'lots', '1000001']) expect(() => loadConfig({ DAN_DAILY_BUDGET_USD: bad })).toThrow(new RegExp(`^DAN_DAILY_BUDGET_USD="${bad}" is invalid`));
  });

  it('finds the credential files of the provider in use, and refuses one that does not exist', () => {
    expect(loadConfig({ CLAUDE_CODE_USE_VERTEX: '1', GOOGLE_APPLICATION_CREDENTIALS: keyFile }).credentialFiles).toEqual([{ env: 'GOOGLE_APPLICATION_CREDENTIALS', source: keyFile }]);
    // Without Vertex in use, the variable is not dan's business.
    expect(loadConfig({ GOOGLE_APPLICATION_CREDENTIALS: '/no/such/key.json' }).credentialFiles).toEqual([]);
    expect(() => loadConfig({ CLAUDE_CODE_USE_VERTEX: '1', GOOGLE_APPLICATION_CREDENTIALS: '/no/such/key.json' })).toThrow(
      'GOOGLE_APPLICATION_CREDENTIALS="/no/such/key.json" does not exist',
    );
    expect(loadConfig({ CLAUDE_CODE_USE_BEDROCK: '1', AWS_PROFILE: 'work', AWS_SHARED_CREDENTIALS_FILE: awsFile, AWS_CONFIG_FILE: keyFile }).credentialFiles).toEqual([
      { env: 'AWS_SHARED_CREDENTIALS_FILE', source: awsFile },
      { env: 'AWS_CONFIG_FILE', source: keyFile },
    ]);
    expect(() => loadConfig({ CLAUDE_CODE_USE_BEDROCK: '1', AWS_SHARED_CREDENTIALS_FILE: '/no/such/credentials' })).toThrow(/AWS_SHARED_CREDENTIALS_FILE=.* does not exist/);
  });
});

describe('credential files in agent containers', () => {
  it('are mounted read-only, and their variables name them where the container sees them', () => {
    const options = agentContainerOptions(
      {
        network: 'n',
        installation: 'inst-n',
        image: 'img',
        agentRedisUrl: 'redis://redis:6379',
        workspaceVolume: 'n-workspace',
        credentialFiles: [{ env: 'GOOGLE_APPLICATION_CREDENTIALS', source: keyFile }],
        memoryMb: 512,
        cpus: 0.5,
        pidsLimit: 256,
      },
      { agentId: 'backend-1', role: 'domain', domain: 'backend', env: { GOOGLE_APPLICATION_CREDENTIALS: keyFile, CLAUDE_CODE_USE_VERTEX: '1' } },
      'n-backend-1',
    );
    const target = `${CREDENTIALS_PATH}/google-application-credentials`;
    expect(options.HostConfig!.Mounts).toContainEqual({ Type: 'bind', Source: keyFile, Target: target, ReadOnly: true });
    expect(options.Env).toContain(`GOOGLE_APPLICATION_CREDENTIALS=${target}`);
    expect(options.Env).not.toContain(`GOOGLE_APPLICATION_CREDENTIALS=${keyFile}`);
    // The workspace stays the only writable mount.
    expect(options.HostConfig!.Mounts!.filter((m) => !m.ReadOnly).map((m) => m.Target)).toEqual(['/workspace']);
  });
});
