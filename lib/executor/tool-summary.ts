import { clip, firstLine } from './truncate.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * One line saying what a tool call does, for the `text` of a `tool_use` entry:
 * `Write /workspace/api.ts (120 chars)`, `Bash: npm test`, `Agent → api-worker: Build the API`.
 */
export function summarizeToolUse(name: string, input: unknown): string {
  const i = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const path = str(i.file_path) ?? str(i.notebook_path) ?? str(i.path);
  switch (name) {
    case 'Write':
      return `Write ${path ?? '?'}${typeof i.content === 'string' ? ` (${i.content.length} chars)` : ''}`;
    case 'Edit':
    case 'MultiEdit':
    case 'NotebookEdit':
    case 'Read':
      return `${name} ${path ?? '?'}`;
    case 'Bash':
      return `Bash: ${firstLine(str(i.command) ?? '', 200)}`;
    case 'Glob':
    case 'Grep':
      return `${name} ${clip(str(i.pattern) ?? '', 120)}${path ? ` in ${path}` : ''}`;
    case 'Agent':
    case 'Task':
      return `${name} → ${str(i.subagent_type) ?? 'subagent'}: ${firstLine(str(i.description) ?? str(i.prompt) ?? '', 150)}`;
    case 'WebFetch':
      return `WebFetch ${str(i.url) ?? '?'}`;
    case 'WebSearch':
      return `WebSearch ${clip(str(i.query) ?? '', 150)}`;
    case 'TodoWrite':
      return `TodoWrite (${Array.isArray(i.todos) ? i.todos.length : 0} items)`;
    default: {
      const first = Object.values(i).find((v) => typeof v === 'string' && v.length > 0) as string | undefined;
      return first ? `${name}: ${firstLine(first, 150)}` : name;
    }
  }
}

/** The text of a tool result's content (a string or content blocks), images noted rather than copied. */
export function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content === undefined || content === null ? '' : JSON.stringify(content);
  return content
    .map((block: unknown) => {
      const b = (typeof block === 'object' && block !== null ? block : {}) as Record<string, unknown>;
      if (typeof b.text === 'string') return b.text;
      return typeof b.type === 'string' ? `[${b.type}]` : '';
    })
    .filter((t) => t.length > 0)
    .join('\n');
}
