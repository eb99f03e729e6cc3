import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { SECRET_ENV } from './config.js';
import { DanError } from './errors.js';

/**
 * How an agent receives its secrets (docs/SECURITY.md, *Credentials*): a runtime writes them as one JSON line on
 * the agent's stdin when it starts it, and sets `DAN_SECRETS=stdin` in its environment, so that no container
 * config (`docker inspect`, Docker's config on disk) and no `/proc/<pid>/environ` holds them. The agent reads
 * the line once, keeps the values in memory, and passes the model's to the CLI's environment only.
 */
export const SECRETS_VARIABLE = 'DAN_SECRETS';
export const SECRETS_FROM_STDIN = 'stdin';
/**
 * `DAN_SECRETS=file:<absolute path>`: the same line, in a file only the agent's uid can read. For runtimes that
 * cannot write on an agent's stdin: a Swarm service's task has none, so the swarm runtime mounts a Swarm secret.
 */
export const SECRETS_FILE_PREFIX = 'file:';
export const secretsFromFile = (file: string): string => `${SECRETS_FILE_PREFIX}${file}`;

/** How long an agent started with `DAN_SECRETS=stdin` waits for the line. */
export const SECRETS_TIMEOUT_MS = 30_000;
/** The line is small (a URL, a few keys): anything longer is not ours. */
const MAX_LINE = 64 * 1024;

/**
 * A variable that a domain's `.mcp.json` references (`${GITHUB_TOKEN}`), as the secrets line names it: under its
 * own prefix, so that it reaches the CLI's environment only and can never stand for one of the agent's settings.
 */
export const mcpSecretName = (variable: string): string => `mcp:${variable}`;
const MCP_SECRET = /^mcp:[A-Za-z_][A-Za-z0-9_]*$/;

const secretsSchema = z.record(z.string(), z.string()).refine((value) => Object.keys(value).every((name) => SECRET_ENV.includes(name) || MCP_SECRET.test(name)), {
  message: `only ${SECRET_ENV.join(', ')} and a domain's .mcp.json variables (mcp:NAME) may be sent as secrets`,
});

/** Splits an agent's environment into what may be seen (`env`) and what is sent on stdin (`secrets`). */
export function splitSecrets(all: Readonly<Record<string, string>>): { env: Record<string, string>; secrets: Record<string, string> } {
  const env: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) (SECRET_ENV.includes(name) ? secrets : env)[name] = value;
  return { env, secrets };
}

/** The line a runtime writes on the agent's stdin. */
export function secretsLine(secrets: Readonly<Record<string, string>>): string {
  return `${JSON.stringify(secretsSchema.parse(secrets))}\n`;
}

/**
 * Reads the secrets line from `input` (the agent's stdin), at most `timeoutMs`; then stops reading. Rejects
 * with a DanError naming what went wrong (never a value).
 */
export async function readSecrets(input: Readable, timeoutMs = SECRETS_TIMEOUT_MS): Promise<Record<string, string>> {
  const line = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const finish = (error: Error | undefined, value?: string): void => {
      clearTimeout(timer);
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if (error) reject(error);
      else resolve(value!);
    };
    const onData = (chunk: Buffer | string): void => {
      buffer += chunk.toString();
      const end = buffer.indexOf('\n');
      if (end >= 0) finish(undefined, buffer.slice(0, end));
      else if (buffer.length > MAX_LINE) finish(new DanError('DAN_BAD_CONFIG', 'the secrets line on stdin is too long'));
    };
    const onEnd = (): void => finish(new DanError('DAN_BAD_CONFIG', 'stdin ended before the secrets line (DAN_SECRETS=stdin): start agents through a runtime, or unset DAN_SECRETS'));
    const onError = (error: Error): void => finish(new DanError('DAN_BAD_CONFIG', `cannot read the secrets from stdin: ${error.message}`));
    const timer = setTimeout(
      () => finish(new DanError('DAN_BAD_CONFIG', `no secrets line on stdin within ${timeoutMs / 1000} s (DAN_SECRETS=stdin)`)),
      timeoutMs,
    );
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
  return parseSecretsLine(line, 'on stdin');
}

/** Parses the secrets line; `where` names its source in errors (never a value). */
function parseSecretsLine(line: string, where: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new DanError('DAN_BAD_CONFIG', `the secrets line ${where} is not JSON`);
  }
  const result = secretsSchema.safeParse(parsed);
  if (!result.success) throw new DanError('DAN_BAD_CONFIG', `the secrets line ${where} is invalid: ${result.error.issues[0]!.message}`);
  return result.data;
}

/** Reads the secrets line from a file (`DAN_SECRETS=file:<path>`). Rejects with a DanError naming the file, never a value. */
export async function readSecretsFile(file: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DanError('DAN_BAD_CONFIG', `cannot read the secrets file ${file} (DAN_SECRETS=file:…): ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (text.length > MAX_LINE) throw new DanError('DAN_BAD_CONFIG', `the secrets file ${file} is too long`);
  return parseSecretsLine(text.trim(), `in ${file}`);
}

/**
 * The environment an agent works with: its own, plus the secrets from stdin when `DAN_SECRETS=stdin`, or from the
 * file `DAN_SECRETS=file:<path>` names. The secrets never go into `process.env` (nor, through it, into anything a
 * child inherits by default).
 */
export async function agentEnvironment(env: NodeJS.ProcessEnv, input: Readable, timeoutMs = SECRETS_TIMEOUT_MS): Promise<Record<string, string | undefined>> {
  const source = env[SECRETS_VARIABLE];
  let secrets: Record<string, string>;
  if (source === SECRETS_FROM_STDIN) secrets = await readSecrets(input, timeoutMs);
  else if (source?.startsWith(SECRETS_FILE_PREFIX)) {
    const file = source.slice(SECRETS_FILE_PREFIX.length);
    if (!path.isAbsolute(file)) throw new DanError('DAN_BAD_CONFIG', `DAN_SECRETS=${source}: name the secrets file by an absolute path (file:/run/secrets/NAME)`);
    secrets = await readSecretsFile(file);
  } else return { ...env };
  const merged: Record<string, string | undefined> = { ...env, ...secrets };
  delete merged[SECRETS_VARIABLE];
  return merged;
}
