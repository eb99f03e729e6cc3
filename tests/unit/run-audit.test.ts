import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchStreamEvent } from '../../lib/executor/index.js';
import { RunAudit, runWarnings } from '../../lib/executor/run-audit.js';
import { describeOutcome } from '../../lib/task.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'stream-json');

/** Feeds a recorded run of the real CLI (tests/fixtures/stream-json) through an audit. */
function audit(lines: string[]): RunAudit {
  const a = new RunAudit();
  for (const line of lines) {
    const event = matchStreamEvent(JSON.parse(line));
    if (event) a.see(event);
  }
  return a;
}
const recorded = (name: string): string[] => readFileSync(path.join(FIXTURES, name), 'utf8').split('\n').filter((l) => l.trim().length > 0);

describe("a run's warnings: what `completed` alone hides", () => {
  it('a run whose only write was refused: no changes, 1 refused write (counted once, though the result lists it too)', () => {
    const a = audit(recorded('permission-denied.jsonl'));
    expect(a.findings).toMatchObject({ refused: { Write: 1 }, toolErrors: 0, edits: 0 });
    expect(a.warnings()).toEqual(['no changes', '1 refused write']);
  });

  it('a clean run that wrote its file, directly or through a worker subagent, has none', () => {
    expect(audit(recorded('write-file.jsonl')).warnings()).toEqual([]);
    expect(audit(recorded('delegate.jsonl')).warnings()).toEqual([]);
  });

  it("counts a refusal inside a worker subagent, which the result's permission_denials never lists", () => {
    const lines = [
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', id: 'top', name: 'Agent', input: { subagent_type: 'etl-worker' } }] }, parent_tool_use_id: null }),
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', id: 'sub1', name: 'Write', input: { file_path: '/w/a.txt' } }] }, parent_tool_use_id: 'top' }),
      JSON.stringify({
        type: 'user',
        message: { content: [{ type: 'tool_result', tool_use_id: 'sub1', is_error: true, content: "Claude requested permissions to write to /w/a.txt, but you haven't granted it yet." }] },
        parent_tool_use_id: 'top',
      }),
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', id: 'sub2', name: 'Bash', input: { command: 'false' } }] }, parent_tool_use_id: 'top' }),
      JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 'sub2', is_error: true, content: 'Exit code 1' }] }, parent_tool_use_id: 'top' }),
      JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 'top', content: 'I could not write the file.' }] }, parent_tool_use_id: null }),
      JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'done', permission_denials: [] }),
    ];
    const a = audit(lines);
    expect(a.findings).toMatchObject({ refused: { Write: 1 }, toolErrors: 1, edits: 0 });
    expect(a.warnings()).toEqual(['no changes', '1 refused write', '1 tool error']);
  });

  it('says "no changes" only when something went wrong and nothing was changed', () => {
    expect(runWarnings({ refused: {}, toolErrors: 0, edits: 0, commands: 0 })).toEqual([]);
    expect(runWarnings({ refused: { Write: 2, Bash: 1 }, toolErrors: 0, edits: 1, commands: 0 })).toEqual(['2 refused writes', '1 refused tool call']);
    expect(runWarnings({ refused: {}, toolErrors: 3, edits: 0, commands: 1 })).toEqual(['3 tool errors']);
  });

  it('shows as the outcome a user reads', () => {
    expect(describeOutcome({ status: 'completed', warnings: ['no changes', '2 refused writes'] })).toBe('completed (no changes, 2 refused writes)');
    expect(describeOutcome({ status: 'completed', warnings: [] })).toBe('completed');
    expect(describeOutcome({ status: 'failed' })).toBe('failed');
  });
});
