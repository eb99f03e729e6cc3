import type { LogEntryInput } from '../task.js';
import {
  matchStreamEvent,
  type AssistantEvent,
  type InitEvent,
  type ResultEvent,
  type StreamEvent,
  type SystemEvent,
  type UserEvent,
} from './stream-events.js';
import { summarizeToolUse, toolResultText } from './tool-summary.js';
import { clip, firstLine, truncateDeep } from './truncate.js';

/** What one stdout line became: the event when it was understood, and the log entries it yields (at least one). */
export interface ParsedLine {
  event?: StreamEvent;
  entries: LogEntryInput[];
}

const TEXT_LIMIT = 4000;
const RESULT_SUMMARY_LIMIT = 1000;
const RAW_LIMIT = 2000;
/** Tool names remembered to label tool results; a long session must not grow this without bound. */
const MAX_REMEMBERED_TOOLS = 1000;

/**
 * Turns stdout lines of `claude -p --output-format stream-json --verbose` into log entries. Never throws: a
 * line that is not JSON or matches no schema becomes a `raw` entry. Keeps one piece of state, the tool name
 * of each tool call, so that a `tool_result` entry can say which tool it answers.
 */
export class StreamParser {
  private readonly toolNames = new Map<string, string>();

  /** Parses one line (without its newline). */
  parse(line: string): ParsedLine {
    const trimmed = line.trim();
    if (trimmed.length === 0) return { entries: [] };
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      return { entries: [raw(trimmed, 'not JSON')] };
    }
    const event = matchStreamEvent(value);
    if (!event) {
      const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
      return { entries: [raw(trimmed, typeof type === 'string' ? `unknown event type "${type}"` : 'unknown event')] };
    }
    return { event, entries: this.entriesOf(event) };
  }

  private entriesOf(e: StreamEvent): LogEntryInput[] {
    switch (e.kind) {
      case 'init':
        return [initEntry(e.event)];
      case 'system':
        return [systemEntry(e.event)];
      case 'assistant':
        return this.assistantEntries(e.event);
      case 'user':
        return this.userEntries(e.event);
      case 'result':
        return [resultEntry(e.event)];
    }
  }

  private assistantEntries(e: AssistantEvent): LogEntryInput[] {
    const link = linkage(e.parent_tool_use_id);
    const base = { message_id: e.message.id, model: e.message.model, ...link, ...(e.error ? { error: e.error } : {}) };
    return e.message.content.map((block): LogEntryInput => {
      if (block.type === 'text' && typeof block.text === 'string') {
        return { type: 'assistant', text: clip(block.text, TEXT_LIMIT), data: base };
      }
      if (block.type === 'thinking' && typeof block.thinking === 'string') {
        return { type: 'thinking', text: clip(block.thinking, TEXT_LIMIT), data: base };
      }
      if (block.type === 'tool_use' && typeof block.name === 'string' && typeof block.id === 'string') {
        this.remember(block.id, block.name);
        return {
          type: 'tool_use',
          text: summarizeToolUse(block.name, block.input),
          data: { tool: block.name, tool_use_id: block.id, input: truncateDeep(block.input), ...link },
        };
      }
      return { type: 'raw', text: `assistant block of type "${block.type}"`, data: { block: truncateDeep(block), ...link } };
    });
  }

  private userEntries(e: UserEvent): LogEntryInput[] {
    const link = linkage(e.parent_tool_use_id);
    const content = typeof e.message.content === 'string' ? [{ type: 'text', text: e.message.content }] : e.message.content;
    return content.map((block): LogEntryInput => {
      if (block.type === 'tool_result' && typeof block.tool_use_id === 'string') {
        const text = toolResultText(block.content);
        const tool = this.toolNames.get(block.tool_use_id);
        return {
          type: 'tool_result',
          text: clip(text, RESULT_SUMMARY_LIMIT),
          data: { tool_use_id: block.tool_use_id, is_error: block.is_error === true, ...(tool ? { tool } : {}), ...link },
        };
      }
      if (block.type === 'text' && typeof block.text === 'string') {
        // The CLI echoes the prompt a subagent was given as a user message of that subagent.
        const who = e.parent_tool_use_id ? 'prompt to subagent' : 'user message';
        return { type: 'system', text: `${who}: ${clip(block.text, TEXT_LIMIT)}`, data: { subtype: 'user_message', ...link } };
      }
      return { type: 'raw', text: `user block of type "${block.type}"`, data: { block: truncateDeep(block), ...link } };
    });
  }

  private remember(id: string, name: string): void {
    if (this.toolNames.size >= MAX_REMEMBERED_TOOLS) {
      const oldest = this.toolNames.keys().next().value;
      if (oldest !== undefined) this.toolNames.delete(oldest);
    }
    this.toolNames.set(id, name);
  }
}

/** Parses one line without memory of earlier lines (tool results are then not labelled with their tool). */
export function parseStreamLine(line: string): ParsedLine {
  return new StreamParser().parse(line);
}

const linkage = (parent: string | null | undefined): Record<string, string> =>
  parent ? { parent_tool_use_id: parent } : {};

function raw(line: string, reason: string): LogEntryInput {
  return { type: 'raw', text: clip(line, RAW_LIMIT), data: { reason } };
}

function initEntry(e: InitEvent): LogEntryInput {
  const parts = [
    e.model && `model ${e.model}`,
    e.tools && `${e.tools.length} tools`,
    e.agents && `agents ${e.agents.join(', ')}`,
    e.permissionMode && `permission mode ${e.permissionMode}`,
    e.cwd && `cwd ${e.cwd}`,
  ].filter(Boolean);
  return {
    type: 'init',
    text: `claude${e.claude_code_version ? ` ${e.claude_code_version}` : ''} session ${e.session_id}: ${parts.join(', ')}`,
    data: {
      session_id: e.session_id,
      model: e.model,
      cwd: e.cwd,
      tools: e.tools,
      agents: e.agents,
      permissionMode: e.permissionMode,
      version: e.claude_code_version,
      mcp_servers: truncateDeep(e.mcp_servers),
    },
  };
}

const num = (v: unknown): string => (typeof v === 'number' ? String(Math.round(v)) : '?');
const s = (v: unknown): string => (typeof v === 'string' ? v : '');

function systemText(e: SystemEvent): string {
  switch (e.subtype) {
    case 'api_retry':
      return `API retry ${num(e.attempt)}/${num(e.max_retries)} in ${num(e.retry_delay_ms)} ms (${num(e.error_status)} ${s(e.error)})`;
    case 'task_started':
      return `subagent ${s(e.subagent_type) || '?'} started: ${firstLine(s(e.description))}`;
    case 'task_progress':
      return `subagent ${s(e.subagent_type) || '?'}: ${firstLine(s(e.description))}`;
    case 'task_notification':
      return `subagent ${s(e.status) || 'finished'}: ${firstLine(s(e.summary))}`;
    case 'compact_boundary':
      return 'conversation compacted';
    default:
      return e.subtype;
  }
}

function systemEntry(e: SystemEvent): LogEntryInput {
  const { type: _type, uuid: _uuid, session_id: _session, ...rest } = e;
  return { type: 'system', text: systemText(e), data: truncateDeep(rest) as Record<string, unknown> };
}

function resultEntry(e: ResultEvent): LogEntryInput {
  const message = e.result ?? (e.errors && e.errors.length > 0 ? e.errors.join('; ') : e.subtype);
  return {
    type: 'result',
    text: clip(message, TEXT_LIMIT),
    data: truncateDeep({
      subtype: e.subtype,
      is_error: e.is_error,
      num_turns: e.num_turns,
      total_cost_usd: e.total_cost_usd,
      duration_ms: e.duration_ms,
      session_id: e.session_id,
      usage: e.usage,
      permission_denials: e.permission_denials,
      api_error_status: e.api_error_status,
      terminal_reason: e.terminal_reason,
      errors: e.errors,
    }) as Record<string, unknown>,
  };
}
