import type { StreamEvent } from './stream-events.js';
import { toolResultText } from './tool-summary.js';

/** Tools that change files: a run with none of them succeeding changed nothing (as far as the CLI can tell). */
const EDIT_TOOLS = new Set(['Write', 'Edit', 'MultiEdit', 'NotebookEdit']);
/** What the CLI answers a tool call it refused for lack of permission (2.1.x). */
const REFUSAL = /requested permissions? to|haven't granted it|permission to use .* (?:has been|was) denied/i;

/** What went wrong in a run that still ended `completed`: the figures behind its warnings. */
export interface RunFindings {
  /** Tool calls refused for lack of permission, in the session and its subagents (by tool name). */
  refused: Record<string, number>;
  /** Tool calls that ran and failed (not refusals). */
  toolErrors: number;
  /** Successful calls of tools that change files (Write, Edit, MultiEdit, NotebookEdit). */
  edits: number;
  /** Successful Bash calls: they may have changed files too, so a run with one is not called "no changes". */
  commands: number;
}

/**
 * Watches a run's stream for what a `completed` status alone hides (#17): permission denials anywhere in the
 * session, subagents included (a subagent's refusal appears only as its tool result, never in the final
 * `result` event's `permission_denials`), tool calls that failed, and whether anything was changed. Fed every
 * parsed event in order; pure, no I/O.
 */
export class RunAudit {
  private readonly tools = new Map<string, string>();
  private readonly refusedIds = new Set<string>();
  readonly findings: RunFindings = { refused: {}, toolErrors: 0, edits: 0, commands: 0 };

  see(event: StreamEvent): void {
    if (event.kind === 'assistant') {
      for (const block of event.event.message.content) {
        if (block.type === 'tool_use' && typeof block.id === 'string' && typeof block.name === 'string') this.tools.set(block.id, block.name);
      }
    } else if (event.kind === 'user' && Array.isArray(event.event.message.content)) {
      for (const block of event.event.message.content) {
        if (block.type !== 'tool_result' || typeof block.tool_use_id !== 'string') continue;
        const tool = this.tools.get(block.tool_use_id) ?? 'tool';
        if (block.is_error === true) {
          if (REFUSAL.test(toolResultText(block.content))) this.refuse(block.tool_use_id, tool);
          else this.findings.toolErrors += 1;
        } else if (EDIT_TOOLS.has(tool)) {
          this.findings.edits += 1;
        } else if (tool === 'Bash') {
          this.findings.commands += 1;
        }
      }
    } else if (event.kind === 'result') {
      // The top-level session's denials, also listed here; counted once with those seen as tool results.
      for (const denial of event.event.permission_denials ?? []) this.refuse(denial.tool_use_id, denial.tool_name);
    }
  }

  private refuse(id: string | undefined, tool: string): void {
    if (id !== undefined) {
      if (this.refusedIds.has(id)) return;
      this.refusedIds.add(id);
    }
    this.findings.refused[tool] = (this.findings.refused[tool] ?? 0) + 1;
  }

  /** The warnings of the run, short enough for a status line: `no changes`, `2 refused writes`, `1 tool error`. */
  warnings(): string[] {
    return runWarnings(this.findings);
  }
}

/** The warnings `findings` call for; none for a clean run. */
export function runWarnings(f: RunFindings): string[] {
  const out: string[] = [];
  const refusedWrites = [...EDIT_TOOLS].reduce((n, tool) => n + (f.refused[tool] ?? 0), 0);
  const refusedOther = Object.entries(f.refused).reduce((n, [tool, count]) => n + (EDIT_TOOLS.has(tool) ? 0 : count), 0);
  const problems = refusedWrites + refusedOther + f.toolErrors;
  if (problems > 0 && f.edits === 0 && f.commands === 0) out.push('no changes');
  if (refusedWrites > 0) out.push(`${refusedWrites} refused write${refusedWrites === 1 ? '' : 's'}`);
  if (refusedOther > 0) out.push(`${refusedOther} refused tool call${refusedOther === 1 ? '' : 's'}`);
  if (f.toolErrors > 0) out.push(`${f.toolErrors} tool error${f.toolErrors === 1 ? '' : 's'}`);
  return out;
}
