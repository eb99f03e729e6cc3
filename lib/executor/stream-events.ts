import { z } from 'zod';

/**
 * zod schemas for the stdout lines of `claude -p --output-format stream-json --verbose` (checked against
 * 2.1.197). They are lenient on purpose: unknown fields pass through and most fields are optional, so a new
 * CLI version degrades to less detail rather than to `raw` lines.
 */

const textBlockSchema = z.object({ type: z.literal('text'), text: z.string() }).passthrough();
const thinkingBlockSchema = z.object({ type: z.literal('thinking'), thinking: z.string() }).passthrough();
const toolUseBlockSchema = z
  .object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.unknown() })
  .passthrough();
const toolResultBlockSchema = z
  .object({
    type: z.literal('tool_result'),
    tool_use_id: z.string(),
    content: z.unknown().optional(),
    is_error: z.boolean().optional(),
  })
  .passthrough();
const otherBlockSchema = z.object({ type: z.string() }).passthrough();

export const assistantBlockSchema = z.union([textBlockSchema, thinkingBlockSchema, toolUseBlockSchema, otherBlockSchema]);
export const userBlockSchema = z.union([textBlockSchema, toolResultBlockSchema, otherBlockSchema]);
export type AssistantBlock = z.infer<typeof assistantBlockSchema>;
export type UserBlock = z.infer<typeof userBlockSchema>;

/** Set on the messages of a subagent: the id of the `Agent` tool call that started it. */
const parentToolUseId = z.string().nullable().optional();

/** `{"type":"system","subtype":"init",…}`: the session's setup. */
export const initEventSchema = z
  .object({
    type: z.literal('system'),
    subtype: z.literal('init'),
    session_id: z.string(),
    cwd: z.string().optional(),
    model: z.string().optional(),
    tools: z.array(z.string()).optional(),
    agents: z.array(z.string()).optional(),
    permissionMode: z.string().optional(),
    claude_code_version: z.string().optional(),
    mcp_servers: z.array(z.unknown()).optional(),
  })
  .passthrough();

/** Any other system event: api_retry, task_started / task_progress / task_notification (subagents) … */
export const systemEventSchema = z
  .object({ type: z.literal('system'), subtype: z.string(), session_id: z.string().optional() })
  .passthrough();

export const assistantEventSchema = z
  .object({
    type: z.literal('assistant'),
    message: z
      .object({
        id: z.string().optional(),
        model: z.string().optional(),
        content: z.array(assistantBlockSchema),
        usage: z.record(z.string(), z.unknown()).nullable().optional(),
      })
      .passthrough(),
    parent_tool_use_id: parentToolUseId,
    session_id: z.string().optional(),
    /** Set when the message is the CLI's own report of an API error. */
    error: z.string().optional(),
  })
  .passthrough();

export const userEventSchema = z
  .object({
    type: z.literal('user'),
    message: z
      .object({ role: z.string().optional(), content: z.union([z.string(), z.array(userBlockSchema)]) })
      .passthrough(),
    parent_tool_use_id: parentToolUseId,
    session_id: z.string().optional(),
  })
  .passthrough();

export const permissionDenialSchema = z
  .object({ tool_name: z.string(), tool_use_id: z.string().optional(), tool_input: z.unknown().optional() })
  .passthrough();

/** The last line: `success` (check `is_error`: an API error is a success subtype with is_error true) or `error_*`. */
export const resultEventSchema = z
  .object({
    type: z.literal('result'),
    subtype: z.string(),
    is_error: z.boolean(),
    result: z.string().optional(),
    /** What went wrong, on `error_*` subtypes (which have no `result`). */
    errors: z.array(z.string()).optional(),
    num_turns: z.number().optional(),
    total_cost_usd: z.number().optional(),
    duration_ms: z.number().optional(),
    usage: z.record(z.string(), z.unknown()).optional(),
    session_id: z.string().optional(),
    permission_denials: z.array(permissionDenialSchema).optional(),
    api_error_status: z.number().nullable().optional(),
    stop_reason: z.string().nullable().optional(),
    terminal_reason: z.string().optional(),
  })
  .passthrough();

export type InitEvent = z.infer<typeof initEventSchema>;
export type SystemEvent = z.infer<typeof systemEventSchema>;
export type AssistantEvent = z.infer<typeof assistantEventSchema>;
export type UserEvent = z.infer<typeof userEventSchema>;
export type ResultEvent = z.infer<typeof resultEventSchema>;
export type PermissionDenialEvent = z.infer<typeof permissionDenialSchema>;

/** One understood stdout line. */
export type StreamEvent =
  | { kind: 'init'; event: InitEvent }
  | { kind: 'system'; event: SystemEvent }
  | { kind: 'assistant'; event: AssistantEvent }
  | { kind: 'user'; event: UserEvent }
  | { kind: 'result'; event: ResultEvent };

/** Matches a parsed JSON value against the schemas; undefined when none fits. */
export function matchStreamEvent(value: unknown): StreamEvent | undefined {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  switch (type) {
    case 'system': {
      const init = initEventSchema.safeParse(value);
      if (init.success) return { kind: 'init', event: init.data };
      const system = systemEventSchema.safeParse(value);
      return system.success ? { kind: 'system', event: system.data } : undefined;
    }
    case 'assistant': {
      const parsed = assistantEventSchema.safeParse(value);
      return parsed.success ? { kind: 'assistant', event: parsed.data } : undefined;
    }
    case 'user': {
      const parsed = userEventSchema.safeParse(value);
      return parsed.success ? { kind: 'user', event: parsed.data } : undefined;
    }
    case 'result': {
      const parsed = resultEventSchema.safeParse(value);
      return parsed.success ? { kind: 'result', event: parsed.data } : undefined;
    }
    default:
      return undefined;
  }
}
