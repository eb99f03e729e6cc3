import { loadConfig, type ConfigOverrides, type DanConfig } from '../lib/config.js';
import { BadInputError, DanError, describeZodError } from '../lib/errors.js';
import { Bus } from '../lib/messaging/index.js';
import type { z } from 'zod';

/** Flags every command that talks to Redis accepts. */
export interface ConnectionFlags {
  redisUrl?: string;
  network?: string;
}

/** Reads the configuration once, flags over environment. */
export function configFrom(flags: ConnectionFlags, extra: ConfigOverrides = {}): DanConfig {
  return loadConfig(process.env, { REDIS_URL: flags.redisUrl, DAN_NETWORK: flags.network, ...extra });
}

/** Connects the CLI's bus: one attempt, fails fast with RedisUnreachableError (exit 3). */
export function connectCli(config: DanConfig): Promise<Bus> {
  return Bus.connect(config, { mode: 'cli', name: 'dan-cli' });
}

/** Parses a CLI value with zod; a failure is a BadInputError naming the flag. */
export function parseFlag<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const shown = typeof value === 'string' ? ` "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"` : '';
    throw new BadInputError(`${what}${what.startsWith('-') || what.startsWith('the ') ? '' : shown} ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}

/** Exit codes of the CLI (README, CLI reference). */
export const EXIT = { ok: 0, taskNotCompleted: 1, badInput: 2, redisUnreachable: 3, failure: 4 } as const;

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
