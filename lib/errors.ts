/**
 * The dan error family. Every error that crosses a module boundary is a DanError with a stable `code`,
 * the fields that explain it, and the library error that caused it. Only `bin/` turns codes into a
 * coloured line and an exit code.
 */
export type DanErrorCode =
  | 'DAN_BAD_INPUT'
  | 'DAN_BAD_CONFIG'
  | 'DAN_UNKNOWN_DOMAIN'
  | 'DAN_UNKNOWN_TASK'
  | 'DAN_ILLEGAL_TRANSITION'
  | 'DAN_REDIS_UNREACHABLE'
  | 'DAN_ENQUEUE_FAILED'
  | 'DAN_CORRUPT_RECORD'
  | 'DAN_DOCKER_UNREACHABLE'
  | 'DAN_RUNTIME'
  | 'DAN_EXECUTOR'
  | 'DAN_PLAN_INVALID'
  | 'DAN_GIT'
  | 'DAN_WORKSPACE'
  | 'DAN_UNAUTHORIZED'
  | 'DAN_NOT_FOUND';

export interface DanErrorOptions {
  cause?: unknown;
  /** Whether trying the same thing again can help. */
  retryable?: boolean;
  /** Structured fields that explain the error (task id, domain, url …). */
  details?: Record<string, unknown>;
}

export class DanError extends Error {
  readonly code: DanErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: DanErrorCode, message: string, options: DanErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DanError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Bad input from a user or a caller: a CLI argument, an env variable, a task spec. */
export class BadInputError extends DanError {
  constructor(message: string, options: DanErrorOptions = {}) {
    super('DAN_BAD_INPUT', message, options);
    this.name = 'BadInputError';
  }
}

export class ConfigError extends DanError {
  constructor(
    readonly variable: string,
    message: string,
    options: DanErrorOptions = {},
  ) {
    super('DAN_BAD_CONFIG', message, { ...options, details: { variable, ...options.details } });
    this.name = 'ConfigError';
  }
}

export class UnknownDomainError extends DanError {
  constructor(
    readonly domain: string,
    readonly known: readonly string[],
    /** The known domains closest to the one asked for ("did you mean …"). */
    readonly suggestions: readonly string[] = [],
  ) {
    const hint = suggestions.length > 0 ? ` (did you mean ${suggestions.join(' or ')}?)` : '';
    super('DAN_UNKNOWN_DOMAIN', `unknown domain "${domain}"${hint}: known domains are ${known.join(', ')}`, {
      details: { domain, known, suggestions },
    });
    this.name = 'UnknownDomainError';
  }
}

export class UnknownTaskError extends DanError {
  constructor(readonly taskId: string) {
    super('DAN_UNKNOWN_TASK', `no task with id "${taskId}": list tasks with \`dan tasks\``, { details: { taskId } });
    this.name = 'UnknownTaskError';
  }
}

export class IllegalTransitionError extends DanError {
  constructor(
    readonly taskId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super('DAN_ILLEGAL_TRANSITION', `task ${taskId} cannot go from ${from} to ${to}`, { details: { taskId, from, to } });
    this.name = 'IllegalTransitionError';
  }
}

export class RedisUnreachableError extends DanError {
  /** The URL, password redacted. */
  readonly url: string;

  /** `fix`: what to do, when it is not "start it or set REDIS_URL" (Redis answered, but refused the credentials). */
  constructor(url: string, options: DanErrorOptions & { fix?: string } = {}) {
    // Redacted here, whoever builds the error: its message and details are printed and logged.
    super('DAN_REDIS_UNREACHABLE', `cannot reach Redis at ${redactUrl(url)}: ${options.fix ?? 'start it or set REDIS_URL'}`, {
      retryable: true,
      ...options,
      details: { url: redactUrl(url) },
    });
    this.url = redactUrl(url);
    this.name = 'RedisUnreachableError';
  }
}

export class CorruptRecordError extends DanError {
  constructor(
    readonly key: string,
    reason: string,
    options: DanErrorOptions = {},
  ) {
    super('DAN_CORRUPT_RECORD', `malformed data at ${key}: ${reason}`, { ...options, details: { key } });
    this.name = 'CorruptRecordError';
  }
}

/** A git command failed: the command, its exit code and the last of what it printed. */
export class GitError extends DanError {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    options: DanErrorOptions = {},
  ) {
    const said = stderr.trim().split('\n').slice(-3).join(' / ');
    super('DAN_GIT', `git ${args.slice(0, 3).join(' ')} failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}${said ? `: ${said}` : ''}`, {
      ...options,
      details: { args, exitCode, ...options.details },
    });
    this.name = 'GitError';
  }
}

/** The workspace cannot be used as dan's repository (not writable, detached HEAD, cannot become a repository). */
export class WorkspaceError extends DanError {
  constructor(
    readonly workspace: string,
    message: string,
    options: DanErrorOptions = {},
  ) {
    super('DAN_WORKSPACE', message, { ...options, details: { workspace, ...options.details } });
    this.name = 'WorkspaceError';
  }
}

/** One line describing a zod error: the first issue's path and message. */
export function describeZodError(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

/** Redacts a URL's password so it can be printed or logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
