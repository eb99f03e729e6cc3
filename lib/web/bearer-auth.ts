import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError, DanError } from '../errors.js';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Checks `Authorization: Bearer <token>` against the server's token in constant time: both sides are hashed to
 * the same length first, so neither the comparison nor a length check tells how much of a guess was right.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const offered = match?.[1] ?? '';
  return timingSafeEqual(digest(offered), digest(token)) && offered.length > 0;
}

export const unauthorized = (): DanError =>
  new DanError('DAN_UNAUTHORIZED', 'this server needs `Authorization: Bearer <token>` (the DAN_API_TOKEN it was started with)');

/** Whether an address to bind is this machine's loopback only. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

/** `dan serve` refuses to listen beyond loopback without a token, unless told the port is published only locally. */
export function assertSafeBind(web: { host: string; apiToken: string | undefined; allowUnauthenticated: boolean }): void {
  if (isLoopback(web.host) || web.apiToken !== undefined || web.allowUnauthenticated) return;
  throw new ConfigError(
    'DAN_WEB_HOST',
    `dan serve will not listen on ${web.host} without a token: set DAN_API_TOKEN (16+ characters), or bind 127.0.0.1` +
      ' (DAN_WEB_ALLOW_UNAUTHENTICATED=1 only where the port is published on loopback alone, as in docker-compose.yml)',
  );
}
