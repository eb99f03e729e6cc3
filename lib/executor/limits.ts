import { z } from 'zod';

/**
 * Why a run ended without the model's work: a limit of the account or of the service. Built from what the CLI
 * 2.1.197 really prints (tests/fixtures/stream-json/*-429-*, overloaded-529, auth-401-*, recorded against the
 * scripted model server by tests/fixtures/record-limits.ts):
 *
 * - a subscription's usage window: a `rate_limit_event` line with `rate_limit_info.status: "rejected"`,
 *   `resetsAt` (epoch seconds) and `rateLimitType` (`five_hour` …), then a result with `api_error_status: 429`
 *   and text like "You've hit your session limit · resets Jan 1, 2030, 12am (UTC)";
 * - an API key's rate limit: `api_retry` lines (`error_status: 429`), then a result with `api_error_status: 429`
 *   ("API Error: Request rejected (429) · …"); the response's reset headers are not in the stream;
 * - overloaded after the CLI's own retries: `api_retry` lines with 529, a result with `api_error_status: 529`;
 * - a rejected credential: a result with `api_error_status: 401`.
 *
 * The status codes decide, never the wording (ENVIRONMENT.md).
 */
export type LimitKind = 'usage_limit' | 'rate_limit' | 'overloaded' | 'unauthorized';

export interface RunLimit {
  kind: LimitKind;
  /** When the limit lifts (ms since the epoch), when the CLI said so. */
  resetsAt?: number;
  /** The CLI's own words (its result text), for the record and the log. */
  message: string;
}

const rateLimitEventSchema = z.object({
  type: z.literal('rate_limit_event'),
  rate_limit_info: z
    .object({ status: z.string(), resetsAt: z.number().optional(), rateLimitType: z.string().optional() })
    .passthrough(),
});
const resultSchema = z.object({ type: z.literal('result'), is_error: z.boolean(), api_error_status: z.number().nullable().optional(), result: z.string().optional() }).passthrough();

/** Collects, line by line, what {@link recogniseLimit} needs: the rejected rate-limit event and the result. */
export class LimitWatch {
  private rejected: z.infer<typeof rateLimitEventSchema>['rate_limit_info'] | undefined;
  private result: z.infer<typeof resultSchema> | undefined;

  /** Looks at one parsed stdout line. */
  see(value: unknown): void {
    const event = rateLimitEventSchema.safeParse(value);
    if (event.success) {
      if (event.data.rate_limit_info.status === 'rejected') this.rejected = event.data.rate_limit_info;
      return;
    }
    const result = resultSchema.safeParse(value);
    if (result.success) this.result = result.data;
  }

  /** The limit the run ended on, if it ended on one. */
  limit(): RunLimit | undefined {
    if (!this.result?.is_error) return undefined;
    const message = this.result.result ?? `API error ${this.result.api_error_status ?? ''}`.trim();
    switch (this.result.api_error_status) {
      case 429: {
        const resetsAt = this.rejected?.resetsAt !== undefined ? this.rejected.resetsAt * 1000 : undefined;
        // A subscription's window says it is rejected and when it resets; an API key's rate limit does not.
        return this.rejected ? { kind: 'usage_limit', ...(resetsAt ? { resetsAt } : {}), message } : { kind: 'rate_limit', message };
      }
      case 529:
        return { kind: 'overloaded', message };
      case 401:
        return { kind: 'unauthorized', message };
      default:
        return undefined;
    }
  }
}

/** The limit a whole stream-json output ended on (one JSON value per line; other lines are skipped). Pure. */
export function recogniseLimit(lines: Iterable<string>): RunLimit | undefined {
  const watch = new LimitWatch();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      watch.see(JSON.parse(line));
    } catch {
      // not JSON: the CLI's stdout may carry other lines
    }
  }
  return watch.limit();
}

/** "paused until 14:05 (usage limit)" for `dan agents`, `dan status`, `dan doctor` (UTC, HH:MM). */
export function describePause(until: number, kind: string): string {
  const hhmm = new Date(until).toISOString().slice(11, 16);
  return `paused until ${hhmm} UTC (${kind.replace('_', ' ')})`;
}
