import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseStreamLine, StreamParser, summarizeToolUse } from '../../lib/executor/index.js';
import type { LogEntryInput } from '../../lib/task.js';

// Lines captured from claude 2.1.197 (`-p --output-format stream-json --verbose`) against the scripted model server.
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'stream-json');

function parseFixture(name: string): LogEntryInput[] {
  const parser = new StreamParser();
  return readFileSync(path.join(FIXTURES, `${name}.jsonl`), 'utf8')
    .split('\n')
    .flatMap((line) => parser.parse(line).entries);
}

describe('StreamParser on real CLI output', () => {
  it('turns a Write run into init, assistant, tool_use, tool_result, assistant, result', () => {
    const entries = parseFixture('write-file');
    expect(entries.map((e) => e.type)).toEqual(['init', 'assistant', 'tool_use', 'tool_result', 'assistant', 'result']);
    const [init, , toolUse, toolResult, , result] = entries;
    expect(init!.text).toContain('claude 2.1.197 session');
    expect(init!.data).toMatchObject({ cwd: expect.any(String), tools: expect.arrayContaining(['Write']) });
    expect(toolUse!.text).toMatch(/^Write \/.*\/hello\.txt \(\d+ chars\)$/);
    expect(toolUse!.data).toMatchObject({ tool: 'Write', input: { file_path: expect.stringContaining('hello.txt') } });
    expect(toolResult!.text).toContain('File created successfully');
    expect(toolResult!.data).toMatchObject({ tool: 'Write', is_error: false, tool_use_id: toolUse!.data!.tool_use_id });
    expect(result!.data).toMatchObject({ subtype: 'success', is_error: false, num_turns: 2 });
    expect(result!.text).toContain('Done: wrote hello.txt');
  });

  it('keeps the link from a subagent’s entries to the Agent call that started it', () => {
    const entries = parseFixture('delegate');
    const agentCall = entries.find((e) => e.type === 'tool_use' && e.data?.tool === 'Agent');
    expect(agentCall?.text).toMatch(/^Agent → api-worker: /);
    const callId = agentCall!.data!.tool_use_id;

    const write = entries.find((e) => e.type === 'tool_use' && e.data?.tool === 'Write');
    expect(write?.data?.parent_tool_use_id).toBe(callId);
    const written = entries.find((e) => e.type === 'tool_result' && e.data?.tool === 'Write');
    expect(written?.data?.parent_tool_use_id).toBe(callId);
    // The main conversation's own entries carry no parent.
    expect(agentCall!.data!.parent_tool_use_id).toBeUndefined();

    const system = entries.filter((e) => e.type === 'system').map((e) => e.text);
    expect(system).toContain('subagent api-worker started: Do: Create file api.md describing the API');
    expect(system.some((t) => t.startsWith('prompt to subagent: '))).toBe(true);
    expect(entries.at(-1)!.type).toBe('result');
    expect(entries.some((e) => e.type === 'raw')).toBe(false);
  });

  it('reads thinking blocks and Bash calls', () => {
    const entries = parseFixture('bash-thinking');
    expect(entries.find((e) => e.type === 'thinking')?.text).toBe('let me think about it');
    expect(entries.find((e) => e.type === 'tool_use')?.text).toBe('Bash: echo hi && ls -la');
    expect(entries.find((e) => e.type === 'tool_result')?.data).toMatchObject({ tool: 'Bash', is_error: false });
  });

  it('reports an API error as an error result with the CLI’s message', () => {
    const entries = parseFixture('api-error-400');
    const result = entries.at(-1)!;
    expect(result.type).toBe('result');
    expect(result.text).toBe('API Error: 400 scripted bad request');
    expect(result.data).toMatchObject({ is_error: true, api_error_status: 400 });
    expect(entries.find((e) => e.type === 'assistant')?.data?.error).toBe('unknown');
  });

  it('describes API retries', () => {
    const retries = parseFixture('api-retry').filter((e) => e.type === 'system');
    expect(retries).toHaveLength(5);
    expect(retries[0]!.text).toMatch(/^API retry 1\/10 in \d+ ms \(500 server_error\)$/);
    expect(retries[0]!.data).toMatchObject({ subtype: 'api_retry', attempt: 1, error_status: 500 });
  });

  it('takes the message of an error result from its errors list', () => {
    const result = parseFixture('max-turns').at(-1)!;
    expect(result.text).toBe('Reached maximum number of turns (1)');
    expect(result.data).toMatchObject({ subtype: 'error_max_turns', is_error: true });
  });

  it('keeps permission denials in the result entry', () => {
    const entries = parseFixture('permission-denied');
    expect(entries.find((e) => e.type === 'tool_result')?.data).toMatchObject({ is_error: true, tool: 'Write' });
    expect(entries.at(-1)!.data!.permission_denials).toEqual([
      expect.objectContaining({ tool_name: 'Write', tool_input: expect.objectContaining({ content: 'x' }) }),
    ]);
  });

  it('returns the understood event with the entries', () => {
    const line = readFileSync(path.join(FIXTURES, 'write-file.jsonl'), 'utf8').trim().split('\n').at(-1)!;
    const parsed = parseStreamLine(line);
    expect(parsed.event?.kind).toBe('result');
  });
});

describe('StreamParser on anything else', () => {
  const garbage = [
    'not json at all',
    '{"broken": ',
    '[1,2,3]',
    'null',
    '42',
    '{"type":"weird_new_event","x":1}',
    '{"type":"assistant"}',
    '{"type":"result","subtype":"success"}',
    '{"no_type":true}',
    '\u0000\u0001binary',
  ];

  it.each(garbage)('makes %j a raw entry and never throws', (line) => {
    const { event, entries } = parseStreamLine(line);
    expect(event).toBeUndefined();
    expect(entries).toEqual([{ type: 'raw', text: line.trim(), data: { reason: expect.any(String) } }]);
  });

  it('ignores blank lines', () => {
    expect(parseStreamLine('   ').entries).toEqual([]);
  });

  it('clips huge lines and huge tool inputs', () => {
    const huge = 'x'.repeat(100_000);
    expect(parseStreamLine(huge).entries[0]!.text.length).toBeLessThan(3000);
    const line = JSON.stringify({
      type: 'assistant',
      message: { content: [{ type: 'tool_use', id: 't1', name: 'Write', input: { file_path: '/w/a.txt', content: huge } }] },
      parent_tool_use_id: null,
    });
    const [entry] = parseStreamLine(line).entries;
    expect(entry!.text).toBe('Write /w/a.txt (100000 chars)');
    expect(JSON.stringify(entry!.data).length).toBeLessThan(3000);
  });

  it('accepts a user message whose content is a plain string', () => {
    const line = JSON.stringify({ type: 'user', message: { role: 'user', content: 'hello' }, parent_tool_use_id: null });
    expect(parseStreamLine(line).entries).toEqual([
      { type: 'system', text: 'user message: hello', data: { subtype: 'user_message' } },
    ]);
  });

  it('notes unknown content blocks as raw entries', () => {
    const line = JSON.stringify({ type: 'assistant', message: { content: [{ type: 'redacted_thinking', data: 'zz' }] } });
    const { event, entries } = parseStreamLine(line);
    expect(event?.kind).toBe('assistant');
    expect(entries[0]).toMatchObject({ type: 'raw', text: 'assistant block of type "redacted_thinking"' });
  });
});

describe('summarizeToolUse', () => {
  it.each([
    ['Edit', { file_path: '/w/a.ts', old_string: 'a', new_string: 'b' }, 'Edit /w/a.ts'],
    ['Read', { file_path: '/w/a.ts' }, 'Read /w/a.ts'],
    ['Bash', { command: 'npm test\nnpm run lint' }, 'Bash: npm test'],
    ['Grep', { pattern: 'TODO', path: '/w' }, 'Grep TODO in /w'],
    ['Agent', { subagent_type: 'react-worker', description: 'Build the form', prompt: '...' }, 'Agent → react-worker: Build the form'],
    ['TodoWrite', { todos: [{}, {}] }, 'TodoWrite (2 items)'],
    ['mcp__x__y', { query: 'find me' }, 'mcp__x__y: find me'],
    ['Nothing', null, 'Nothing'],
  ])('%s', (name, input, expected) => {
    expect(summarizeToolUse(name, input)).toBe(expected);
  });
});
