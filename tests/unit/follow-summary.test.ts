import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarizeEntry } from '../../bin/summary.js';
import { StreamParser } from '../../lib/executor/index.js';
import type { StoredLogEntry } from '../../lib/messaging/index.js';
import type { LogEntryInput } from '../../lib/task.js';

const stored = (entry: LogEntryInput): StoredLogEntry => ({ id: '1-0', taskId: 'T', entry: { ...entry, ts: 0 } });

/** A recorded run of the real CLI (tests/fixtures/stream-json) as its log entries, through the summary view. */
function summary(fixture: string): string[] {
  const parser = new StreamParser();
  const lines = readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'stream-json', fixture), 'utf8').split('\n');
  return lines
    .flatMap((line) => parser.parse(line).entries)
    .map((entry) => summarizeEntry(stored(entry)))
    .filter((e) => e !== undefined)
    .map((e) => `${e.entry.type} ${e.entry.text}`);
}

describe('the summary view of --wait', () => {
  it('a delegation: one line per step, the worker indented; no init, results, prompts or usage blocks', () => {
    const shown = summary('delegate.jsonl');
    expect(shown.some((l) => /^tool_use Agent → /.test(l))).toBe(true);
    expect(shown.some((l) => /^tool_use {3}↳ Write /.test(l))).toBe(true);
    expect(shown.filter((l) => /^(init|tool_result|result|raw|stderr) /.test(l))).toEqual([]);
    expect(shown.join('\n')).not.toMatch(/<usage>|agentId|prompt to subagent/);
    expect(shown.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('keeps what explains a failure: a refused tool result, warnings, errors, status changes', () => {
    expect(summary('permission-denied.jsonl')).toContainEqual(expect.stringMatching(/^tool_result failed: Claude requested permissions to write/));
    expect(summarizeEntry(stored({ type: 'warning', text: 'no changes, 1 refused write' }))?.entry.text).toBe('no changes, 1 refused write');
    expect(summarizeEntry(stored({ type: 'status', status: 'failed', text: 'failed: boom\nstack' }))?.entry.text).toBe('failed: boom');
    expect(summarizeEntry(stored({ type: 'assistant', text: '{"subtasks":[]}' }))).toBeUndefined();
    expect(summarizeEntry(stored({ type: 'system', text: 'prompt to subagent: do it', data: { parent_tool_use_id: 'x' } }))).toBeUndefined();
  });
});
