import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as util from 'node:util';
import { loadConfig, type ConfigOverrides, type DanConfig } from '../lib/config.js';
import { ConfigError, DanError } from '../lib/errors.js';
import { Bus } from '../lib/messaging/index.js';
import { parseInput } from '../lib/task-request.js';

/** Flags every command that talks to Redis accepts. */
export interface ConnectionFlags {
  redisUrl?: string;
  network?: string;
}

/** Reads the configuration once: flags over the environment over `.env` ({@link loadDotEnv}). */
export function configFrom(flags: ConnectionFlags, extra: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): DanConfig {
  loadDotEnv(env);
  return loadConfig(env, { REDIS_URL: flags.redisUrl, DAN_NETWORK: flags.network, ...extra });
}

/**
 * Fills in, from `.env` in the current directory (or the file DAN_ENV_FILE names; empty: none), the variables the
 * environment does not set: the `dan` CLI on the host finds the compose network's Redis (REDIS_URL) and the model
 * settings there, like `docker compose` does. A process a runtime started (AGENT_ROLE set) reads none: its cwd is
 * the user's workspace, whose `.env` belongs to the user's project. A missing file is not an error.
 */
export function loadDotEnv(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): void {
  const named = env.DAN_ENV_FILE;
  if (named === '' || (named === undefined && env.AGENT_ROLE)) return;
  const file = path.resolve(cwd, named ?? '.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && named === undefined) return;
    throw new ConfigError('DAN_ENV_FILE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  for (const [name, value] of Object.entries(parseEnvText(text))) {
    if (env[name] === undefined && value !== undefined) env[name] = value;
  }
}

/** Node's own `.env` parser (20.12+); before that, `NAME=value` lines, quotes stripped, `#` lines skipped. */
function parseEnvText(text: string): NodeJS.Dict<string> {
  if (typeof util.parseEnv === 'function') return util.parseEnv(text);
  const out: NodeJS.Dict<string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) out[match[1]!] = match[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** Connects the CLI's bus: one attempt, fails fast with RedisUnreachableError (exit 3). */
export function connectCli(config: DanConfig): Promise<Bus> {
  return Bus.connect(config, { mode: 'cli', name: 'dan-cli' });
}

/** Parses a CLI value with zod; a failure is a BadInputError naming the flag (lib/task-request.ts, parseInput). */
export const parseFlag = parseInput;

/** Exit codes of the CLI (README, CLI reference). */
export const EXIT = { ok: 0, taskNotCompleted: 1, badInput: 2, redisUnreachable: 3, failure: 4, needsInput: 5 } as const;

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof DanError)) return EXIT.failure;
  switch (error.code) {
    case 'DAN_BAD_INPUT':
    case 'DAN_BAD_CONFIG':
    case 'DAN_UNKNOWN_DOMAIN':
    case 'DAN_UNKNOWN_TASK':
    case 'DAN_ILLEGAL_TRANSITION':
      return EXIT.badInput;
    case 'DAN_REDIS_UNREACHABLE':
      return EXIT.redisUnreachable;
    default:
      return EXIT.failure;
  }
}
