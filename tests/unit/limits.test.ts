import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describePause, recogniseLimit } from '../../lib/executor/limits.js';

// What the real claude 2.1.197 printed against the scripted model server answering 429 / 529 / 401 with
// Anthropic's headers (tests/fixtures/record-limits.ts made these files).
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'stream-json');
const lines = (name: string): string[] => readFileSync(path.join(FIXTURES, `${name}.jsonl`), 'utf8').split('\n');

describe('recogniseLimit, on the real CLI output', () => {
  it("knows a subscription's usage window and when it resets", () => {
    expect(recogniseLimit(lines('rate-limit-429-subscription'))).toEqual({
      kind: 'usage_limit',
      resetsAt: Date.UTC(2030, 0, 1),
      message: "You've hit your session limit · resets Jan 1, 2030, 12am (UTC)",
    });
  });

  it("knows an API key's rate limit (no reset time in the stream)", () => {
    expect(recogniseLimit(lines('rate-limit-429-api-key'))).toMatchObject({ kind: 'rate_limit', message: expect.stringMatching(/^API Error: Request rejected \(429\)/) });
    expect(recogniseLimit(lines('rate-limit-429-api-key'))?.resetsAt).toBeUndefined();
  });

  it('knows overloaded after the CLI gave up retrying, and a rejected token', () => {
    expect(recogniseLimit(lines('overloaded-529'))).toMatchObject({ kind: 'overloaded', message: expect.stringMatching(/^API Error: 529 Overloaded/) });
    expect(recogniseLimit(lines('auth-401-subscription'))).toMatchObject({ kind: 'unauthorized', message: 'Failed to authenticate. API Error: 401 OAuth token has expired or been revoked' });
  });

  it('sees no limit in runs that ended otherwise', () => {
    for (const name of ['write-file', 'api-error-400', 'max-turns', 'api-retry', 'permission-denied']) expect(recogniseLimit(lines(name))).toBeUndefined();
    expect(recogniseLimit(['not json', '{"type":"result","is_error":true,"api_error_status":500,"result":"x"}'])).toBeUndefined();
  });
});

// The backoff (30 s doubling to 15 minutes) lives in the pause script: tests/integration/limits.test.ts.
describe('how a pause reads', () => {
  it('says until when and why', () => {
    expect(describePause(Date.UTC(2030, 0, 1, 14, 5), 'usage_limit')).toBe('paused until 14:05 UTC (usage limit)');
  });
});
