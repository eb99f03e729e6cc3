/** The CLI's formatting (bin/output.ts), for the browser. */

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

export const ago = (ms: number, now = Date.now()): string => `${duration(now - ms)} ago`;

export const time = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

export const cost = (usd: number | undefined): string => (usd === undefined ? '-' : `$${usd.toFixed(4)}`);

export const shortId = (id: string): string => id.slice(-6);

export function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** How long a task ran, or has been running. */
export function taskDuration(r: { startedAt?: number; finishedAt?: number; createdAt: number }, now = Date.now()): string {
  if (r.startedAt === undefined) return '-';
  return duration((r.finishedAt ?? now) - r.startedAt);
}
