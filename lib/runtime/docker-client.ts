import Docker from 'dockerode';
import { DanError } from '../errors.js';
import { DockerUnreachableError, RuntimeError } from './runtime-errors.js';

export type { default as Docker } from 'dockerode';

export interface DockerClientOptions {
  /**
   * The engine, as a DOCKER_HOST value: `unix:///path/docker.sock` or `tcp://host:port` (plain HTTP).
   * @default DOCKER_HOST as dockerode reads it (TLS settings included), else the local socket
   */
  host?: string;
}

/** The one place that constructs a Dockerode client. Nothing is contacted until the first call. */
export function createDockerClient(options: DockerClientOptions = {}): Docker {
  const host = options.host;
  if (host === undefined || host === '') return new Docker();
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('tcp://') || host.startsWith('http://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    return new Docker({ host: url.hostname, port: url.port === '' ? 2375 : Number(url.port), protocol: 'http' });
  }
  throw new RuntimeError(`unsupported Docker host "${host}": use unix:///path/to/docker.sock or tcp://host:port`, {
    details: { host },
  });
}

/** Where a client talks to, for messages: the socket path or host:port. */
export function dockerEndpoint(docker: Docker): string {
  const modem = docker.modem as { socketPath?: unknown; host?: unknown; port?: unknown };
  if (typeof modem.socketPath === 'string') return `unix://${modem.socketPath}`;
  if (typeof modem.host === 'string') return `tcp://${modem.host}:${String(modem.port ?? '')}`;
  return 'the default Docker socket';
}

/** Proves the engine answers. Throws DockerUnreachableError naming the endpoint when it does not. */
export async function pingDocker(docker: Docker): Promise<void> {
  try {
    await docker.ping();
  } catch (error) {
    throw translateDockerError(docker, error, 'ping the Docker engine');
  }
}

/** The HTTP status of a dockerode error (404 no such object, 409 conflict, 304 not modified), if it has one. */
export function dockerStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EPERM', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/**
 * Translates a dockerode error where it enters dan: failures to connect become DockerUnreachableError,
 * everything else a RuntimeError saying what was being done, with the engine's own message.
 */
export function translateDockerError(
  docker: Docker,
  error: unknown,
  action: string,
  details: Record<string, unknown> = {},
): DanError {
  if (error instanceof DanError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (dockerStatus(error) === undefined && typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new DockerUnreachableError(dockerEndpoint(docker), { cause: error, details });
  }
  const status = dockerStatus(error);
  const reason = engineMessage(error);
  return new RuntimeError(`cannot ${action}: ${reason}`, {
    cause: error,
    retryable: status !== undefined && status >= 500,
    details: { ...details, ...(status === undefined ? {} : { status }) },
  });
}

function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}
