import { redactUrl } from './errors.js';

/** The ways agents reach a model, as the Claude Code CLI reads them from its environment. */
export type AccessMethod = 'api key' | 'auth token' | 'subscription' | 'bedrock' | 'vertex' | 'base url';

/** Which method is in use, said without a secret; `problem` when it is configured but incomplete. */
export interface Access {
  method: AccessMethod;
  /** One line for `dan doctor`: the variable(s) in use, never their values. */
  detail: string;
  /** What is missing for the method to work, with how to fix it. */
  problem?: { found: string; fix: string };
  /** Something worth knowing (a key that overrides a subscription token). */
  note?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (env: Env, name: string): boolean => (env[name] ?? '') !== '';
const enabled = (env: Env, name: string): boolean => set(env, name) && !['0', 'false'].includes(env[name]!.toLowerCase());

/**
 * The access method the CLI will use with this environment, in the CLI's own order: a cloud provider when
 * enabled, else an API key (which, in `-p` mode, wins over a subscription token), an auth token, a subscription
 * token, or a base URL alone (a local or proxied endpoint). Undefined when none is configured. Pure.
 */
export function accessMethod(env: Env): Access | undefined {
  const base = set(env, 'ANTHROPIC_BASE_URL') ? `, ANTHROPIC_BASE_URL ${redactUrl(env.ANTHROPIC_BASE_URL!)}` : '';
  if (enabled(env, 'CLAUDE_CODE_USE_BEDROCK')) {
    const how = set(env, 'AWS_BEARER_TOKEN_BEDROCK')
      ? 'AWS_BEARER_TOKEN_BEDROCK'
      : set(env, 'AWS_ACCESS_KEY_ID')
        ? 'AWS_ACCESS_KEY_ID'
        : set(env, 'AWS_PROFILE')
          ? `AWS_PROFILE ${env.AWS_PROFILE}`
          : set(env, 'CLAUDE_CODE_SKIP_BEDROCK_AUTH') ? 'CLAUDE_CODE_SKIP_BEDROCK_AUTH (a gateway signs)' : 'the default AWS credentials';
    const access: Access = { method: 'bedrock', detail: `Amazon Bedrock (CLAUDE_CODE_USE_BEDROCK) in ${env.AWS_REGION ?? '?'} with ${how}` };
    if (!set(env, 'AWS_REGION')) access.problem = { found: 'CLAUDE_CODE_USE_BEDROCK is set but AWS_REGION is not: the CLI does not read the region from ~/.aws/config', fix: 'export AWS_REGION=us-east-1 (your Bedrock region)' };
    else if (set(env, 'AWS_ACCESS_KEY_ID') !== set(env, 'AWS_SECRET_ACCESS_KEY')) access.problem = { found: 'only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set', fix: 'set both, or neither (and AWS_PROFILE)' };
    return access;
  }
  if (enabled(env, 'CLAUDE_CODE_USE_VERTEX')) {
    const file = set(env, 'GOOGLE_APPLICATION_CREDENTIALS') ? 'GOOGLE_APPLICATION_CREDENTIALS' : 'the default Google credentials';
    const access: Access = { method: 'vertex', detail: `Google Vertex AI (CLAUDE_CODE_USE_VERTEX), project ${env.ANTHROPIC_VERTEX_PROJECT_ID ?? '?'} in ${env.CLOUD_ML_REGION ?? '?'} with ${file}` };
    const missing = ['ANTHROPIC_VERTEX_PROJECT_ID', 'CLOUD_ML_REGION'].filter((name) => !set(env, name));
    if (missing.length > 0) access.problem = { found: `CLAUDE_CODE_USE_VERTEX is set but ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not`, fix: `export ${missing.map((name) => `${name}=…`).join(' ')}` };
    return access;
  }
  const tokens = set(env, 'CLAUDE_CODE_OAUTH_TOKEN') ? env.CLAUDE_CODE_OAUTH_TOKEN!.split(',').length : 0;
  if (set(env, 'ANTHROPIC_API_KEY')) {
    const access: Access = { method: 'api key', detail: `ANTHROPIC_API_KEY is set${base}` };
    if (tokens > 0) access.note = 'ANTHROPIC_API_KEY wins over CLAUDE_CODE_OAUTH_TOKEN: the subscription is not used';
    return access;
  }
  if (set(env, 'ANTHROPIC_AUTH_TOKEN')) return { method: 'auth token', detail: `ANTHROPIC_AUTH_TOKEN is set${base}` };
  if (tokens > 0) {
    const per = env.DAN_AGENTS_PER_TOKEN || '2';
    return { method: 'subscription', detail: `subscription: CLAUDE_CODE_OAUTH_TOKEN holds ${tokens} token${tokens === 1 ? '' : 's'}, at most ${per} agents each${base}` };
  }
  if (set(env, 'ANTHROPIC_BASE_URL')) return { method: 'base url', detail: `no key, but ANTHROPIC_BASE_URL ${redactUrl(env.ANTHROPIC_BASE_URL!)} (a local or proxied endpoint)` };
  return undefined;
}

/** The one line that says no method is configured, and the fix. */
export const NO_ACCESS = {
  found: 'no way to reach a model: none of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL, CLAUDE_CODE_USE_BEDROCK or CLAUDE_CODE_USE_VERTEX is set',
  fix: 'export ANTHROPIC_API_KEY=<your key>, or CLAUDE_CODE_OAUTH_TOKEN=<claude setup-token> for a subscription (README: Authentication, limits and budgets)',
} as const;
