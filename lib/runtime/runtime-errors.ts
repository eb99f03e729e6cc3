import { DanError, type DanErrorOptions } from '../errors.js';

/** The Docker engine cannot be reached (socket missing, refused, or not allowed). Retrying can help once it runs. */
export class DockerUnreachableError extends DanError {
  constructor(
    readonly endpoint: string,
    options: DanErrorOptions = {},
  ) {
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    const denied = code === 'EACCES' || code === 'EPERM';
    super(
      'DAN_DOCKER_UNREACHABLE',
      denied
        ? `permission denied on Docker at ${endpoint}: this user may not use the socket (compose: set DOCKER_GID in .env to \`stat -c %g /var/run/docker.sock\`; elsewhere add the user to the docker group)`
        : `cannot reach Docker at ${endpoint}: start the Docker engine or set DOCKER_HOST`,
      {
      retryable: true,
      ...options,
      details: { endpoint, ...options.details },
      },
    );
    this.name = 'DockerUnreachableError';
  }
}

/** A runtime could not do what it was asked: create, start, stop or inspect an agent, prepare its workspace. */
export class RuntimeError extends DanError {
  constructor(message: string, options: DanErrorOptions = {}) {
    super('DAN_RUNTIME', message, options);
    this.name = 'RuntimeError';
  }
}
