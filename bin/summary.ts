import type { StoredLogEntry } from '../lib/messaging/index.js';
import type { TaskRecord } from '../lib/task.js';

/** How much `send-task --wait` prints: a readable summary (default), everything, or only the id and outcome. */
export type FollowView = 'summary' | 'verbose' | 'quiet';

const SUBAGENT_NOISE = /^(prompt to subagent|user message):/;
const KEPT_SYSTEM = /^(API retry|subagent \S+ started|conversation compacted)/;

/**
 * The summary view of one log entry (#17, item 9): one line per step, or nothing. Kept: lifecycle (status),
 * dan's own notes (info, warning, error), each tool call in its one-line summary (a subagent's indented), the
 * session's own text (its first line), a failed tool result, API retries and subagents starting. Dropped: the
 * CLI's init, thinking, successful tool results (file contents, `<usage>` blocks, agent ids), prompts handed to
 * subagents, the final `result` (printed once at the end instead), raw and stderr lines. `--verbose` shows all.
 * Returns the entry to print (its text shortened to one line), or undefined to skip it.
 */
export function summarizeEntry(stored: StoredLogEntry): StoredLogEntry | undefined {
  const { entry } = stored;
  const inSubagent = typeof entry.data?.parent_tool_use_id === 'string';
  const oneLine = (text: string, max = 160): string => {
    const first = text.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
    return first.length > max ? `${first.slice(0, max - 1)}…` : first;
  };
  const keep = (text: string): StoredLogEntry => ({ ...stored, entry: { ...entry, text } });
  switch (entry.type) {
    case 'status':
    case 'warning':
    case 'error':
      return keep(oneLine(entry.text, 300));
    case 'info':
      return keep(oneLine(entry.text, 200));
    case 'tool_use':
      return keep(`${inSubagent ? '  ↳ ' : ''}${oneLine(entry.text)}`);
    case 'tool_result':
      return entry.data?.is_error === true ? keep(`${inSubagent ? '  ↳ ' : ''}failed: ${oneLine(entry.text)}`) : undefined;
    case 'assistant':
      // A planner's plan (JSON, fenced or not) is summed up by the `plan accepted` info line already.
      return inSubagent || /^\s*(?:[{[]|```)/.test(entry.text) ? undefined : keep(oneLine(entry.text));
    case 'system':
      return KEPT_SYSTEM.test(entry.text) && !SUBAGENT_NOISE.test(entry.text) ? keep(oneLine(entry.text)) : undefined;
    default:
      return undefined;
  }
}

/** What `--wait` prints when the task has ended: its result text, or for a goal the summary of its subtasks. */
export function finalResult(record: TaskRecord): string | undefined {
  const text = record.result?.trim();
  return text && text.length > 0 ? text : undefined;
}
