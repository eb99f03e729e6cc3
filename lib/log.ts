import { pino, type Logger, type LoggerOptions } from 'pino';
import { REDACTED_ENV } from './config.js';

export type { Logger } from 'pino';

/** Names of secrets that must never reach a log line. */
const REDACT = [
  'ANTHROPIC_API_KEY',
  'apiKey',
  'password',
  'apiToken',
  '*.apiToken',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'env.ANTHROPIC_API_KEY',
  'env.ANTHROPIC_AUTH_TOKEN',
  '*.ANTHROPIC_API_KEY',
  '*.ANTHROPIC_AUTH_TOKEN',
  ...REDACTED_ENV.flatMap((name) => [name, `env.${name}`, `*.${name}`]),
];

export interface LogOptions {
  level?: string;
  name?: string;
  /** Where the lines go; default standard error, so standard output stays for command output. */
  destination?: NodeJS.WritableStream;
}

/** The one pino logger of a process. Components take `logger.child({ component, ... })`. */
export function createLogger(options: LogOptions = {}): Logger {
  const pinoOptions: LoggerOptions = {
    level: options.level ?? 'info',
    name: options.name ?? 'dan',
    redact: { paths: [...new Set(REDACT)], censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return pino(pinoOptions, (options.destination ?? pino.destination(2)) as pino.DestinationStream);
}

/** A logger that writes nothing, for tests and for the CLI's quiet paths. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
