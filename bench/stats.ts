/** Percentiles and the one shape every benchmark reports its figures in. */

/** The p-th percentile (0-100) of the values, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/** One line of the results table. */
export interface Figure {
  /** The benchmark it belongs to: dispatch, throughput … */
  bench: string;
  /** What was measured. */
  metric: string;
  value: number;
  unit: string;
  /** The same thing without dan, measured in the same run. */
  baseline?: { label: string; value: number; unit?: string };
  /** How dan compares with its baseline, in words (`+2.1 ms`, `84%`). */
  comparison?: string;
  /** The target, in words, and whether this run met it (undefined: no target). */
  target?: string;
  met?: boolean;
  /** What explains the figure, especially a missed target. */
  note?: string;
}

/** A benchmark that could not run here, and why (no Docker, for one). */
export interface Skipped {
  bench: string;
  reason: string;
}

export const fmt = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return '-';
  if (unit === 'ms' && Number.isInteger(value)) return `${value} ms`;
  if (unit === 'ms') return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value)} ms`;
  if (unit === '/s') return `${Math.round(value).toLocaleString('en-US')}/s`;
  if (unit === 'MB') return `${value.toFixed(1)} MB`;
  return `${value} ${unit}`;
};
