/**
 * The executor (DESIGN.md, Executor): runs the Claude Code CLI headless for one task, parses its
 * stream-json output into log entries, and prepares the per-agent config dir and environment it runs with.
 */
export {
  buildClaudeArgs,
  openToAgentGroup,
  runClaude,
  type ExecutorResult,
  type ExecutorStatus,
  type PermissionDenial,
  type PermissionMode,
  type RunClaudeOptions,
} from './claude-executor.js';
export { AGENT_TAG, buildClaudeEnv, parseFrontmatter, prepareConfigDir, removeConfigDir, type PreparedConfigDir, type WorkerInfo } from './config-dir.js';
export type { EntryHandler } from './entry-queue.js';
export { killTagged, taggedProcesses } from './process-tree.js';
export { Redactor } from './redactor.js';
export {
  matchStreamEvent,
  type AssistantEvent,
  type InitEvent,
  type ResultEvent,
  type StreamEvent,
  type SystemEvent,
  type UserEvent,
} from './stream-events.js';
export { parseStreamLine, StreamParser, type ParsedLine } from './stream-parser.js';
export { summarizeToolUse } from './tool-summary.js';
export * from './limits.js';
