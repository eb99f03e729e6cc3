import { rename, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { questionSchema, type Question } from '../task.js';

/**
 * dan's own MCP server (`dan mcp`), given to every run as the server `dan`: one tool, `ask_user`, through which
 * the model asks the user a question. The question is written to DAN_QUESTION_FILE (the agent reads it when the
 * run ends, and the task goes to `needs_input`); the tool's answer tells the model to end its turn.
 *
 * Hand-written, not @modelcontextprotocol/sdk: the stdio transport is newline-delimited JSON-RPC 2.0 and this
 * server needs four methods (initialize, ping, tools/list, tools/call); the SDK would bring an HTTP stack and a
 * second zod major for them.
 */

export const ASK_USER_TOOL = 'ask_user';
/** The name the CLI gives the tool (`mcp__<server>__<tool>`), for --allowedTools. */
export const ASK_USER_TOOL_ID = `mcp__dan__${ASK_USER_TOOL}`;

export const DELIVERED =
  'Your question was delivered to the user. End your turn now: do not continue the task and do not guess the answer. ' +
  "The user's answer will arrive as the next message of this conversation.";

const askArgsSchema = z.object({ question: z.string().trim().min(1, 'must not be empty').max(64 * 1024), options: z.array(z.string().max(1000)).max(20).optional() }).strict();

const TOOL = {
  name: ASK_USER_TOOL,
  description:
    'Ask the user a question and stop until they answer. Use it only when a wrong guess would be costly (an irreversible ' +
    'or expensive choice, a requirement you cannot infer); otherwise decide, and say what you decided. After calling it, end your turn.',
  inputSchema: {
    type: 'object',
    properties: {
      question: { type: 'string', description: 'the question, complete enough to answer without context' },
      options: { type: 'array', items: { type: 'string' }, description: 'the answers you suggest, if any' },
    },
    required: ['question'],
    additionalProperties: false,
  },
};

interface Request {
  jsonrpc?: string;
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
}

type Reply = { result: unknown } | { error: { code: number; message: string } } | undefined;

/** Answers one JSON-RPC message (undefined for a notification). `ask` records a question. */
export async function handleMessage(message: Request, ask: (q: Question) => Promise<void>, version: string): Promise<Reply> {
  switch (message.method) {
    case 'initialize':
      return {
        result: {
          protocolVersion: typeof message.params?.protocolVersion === 'string' ? message.params.protocolVersion : '2025-06-18',
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'dan', version },
        },
      };
    case 'ping':
      return { result: {} };
    case 'tools/list':
      return { result: { tools: [TOOL] } };
    case 'tools/call': {
      if (message.params?.name !== ASK_USER_TOOL) return { error: { code: -32602, message: `unknown tool ${String(message.params?.name)}: this server has ${ASK_USER_TOOL}` } };
      const args = askArgsSchema.safeParse(message.params.arguments ?? {});
      if (!args.success) {
        const issue = args.error.issues[0];
        return { result: { isError: true, content: [{ type: 'text', text: `ask_user: ${issue?.path.join('.') || 'arguments'} ${issue?.message ?? 'are invalid'}` }] } };
      }
      await ask(questionSchema.parse({ question: args.data.question, options: args.data.options, askedAt: Date.now() }));
      return { result: { content: [{ type: 'text', text: DELIVERED }] } };
    }
    default:
      if (message.method?.startsWith('notifications/') || message.id === undefined) return undefined;
      return { error: { code: -32601, message: `method not found: ${message.method}` } };
  }
}

/** Serves MCP on stdin/stdout until stdin closes. */
export async function serveDanMcp(questionFile: string | undefined, version: string): Promise<void> {
  const ask = async (q: Question): Promise<void> => {
    if (!questionFile) throw new Error('DAN_QUESTION_FILE is not set: dan mcp runs under a dan agent');
    const tmp = `${questionFile}.tmp`;
    // Group-readable: under DAN_CLI_USER this runs as the CLI's uid, in the group of the agent that reads it.
    await writeFile(tmp, JSON.stringify(q), { mode: 0o640 });
    await rename(tmp, questionFile);
  };
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim().length === 0) continue;
    let message: Request;
    try {
      message = JSON.parse(line) as Request;
    } catch {
      process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } })}\n`);
      continue;
    }
    let reply: Reply;
    try {
      reply = await handleMessage(message, ask, version);
    } catch (error) {
      reply = { error: { code: -32603, message: (error as Error).message } };
    }
    if (reply && message.id !== undefined) process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id: message.id, ...reply })}\n`);
  }
}
