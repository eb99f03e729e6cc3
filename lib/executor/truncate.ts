/** Limits for values copied from the CLI's output into log entries. */
export interface TruncateLimits {
  /** @default 2000 */
  maxString?: number;
  /** @default 50 */
  maxItems?: number;
  /** @default 6 */
  maxDepth?: number;
}

/** Shortens a string to `max` characters, saying how much was cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… [${text.length - max} more chars]`;
}

/** The first non-empty line of a text, clipped. */
export function firstLine(text: string, max = 200): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? '';
  return clip(line.trim(), max);
}

/**
 * A copy of a JSON-like value small enough for a log entry: long strings clipped, long arrays and objects cut
 * with a note, deep nesting replaced by a placeholder.
 */
export function truncateDeep(value: unknown, limits: TruncateLimits = {}, depth = 0): unknown {
  const maxString = limits.maxString ?? 2000;
  const maxItems = limits.maxItems ?? 50;
  const maxDepth = limits.maxDepth ?? 6;
  if (typeof value === 'string') return clip(value, maxString);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= maxDepth) return Array.isArray(value) ? `[array of ${value.length}]` : '[object]';
  if (Array.isArray(value)) {
    const items = value.slice(0, maxItems).map((v) => truncateDeep(v, limits, depth + 1));
    if (value.length > maxItems) items.push(`[${value.length - maxItems} more items]`);
    return items;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [key, v] of entries.slice(0, maxItems)) out[key] = truncateDeep(v, limits, depth + 1);
  if (entries.length > maxItems) out['…'] = `${entries.length - maxItems} more keys`;
  return out;
}
