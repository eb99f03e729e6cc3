import { ReplyError } from 'ioredis';

/**
 * Whether an error from ioredis means the connection failed (Redis away, restarting, unreachable) rather than
 * that Redis answered with an error. Only the first is worth retrying as it is: Redis will take the same command
 * once it is back. An error reply (WRONGTYPE, NOPERM, OOM, READONLY …) comes back the same way every time until
 * something else changes; retrying it blindly wedges the caller.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // A dataset still loading after a restart is Redis coming back, not a refusal.
  if (error instanceof ReplyError) return /^LOADING\b/.test(error.message);
  return true;
}
