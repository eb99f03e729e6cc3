import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DanError } from '../errors.js';
import { mcpSecretName } from '../secrets.js';

/** A domain's MCP servers (its `.mcp.json`, the CLI's format) and the environment variables they reference. */
export interface DomainMcp {
  servers: Record<string, Record<string, unknown>>;
  /** `${NAME}` references in it: passed from the agent's environment to the CLI's, which expands them. */
  variables: string[];
}

const mcpFileSchema = z.object({ mcpServers: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a name of letters, digits, "_" or "-"'), z.record(z.string(), z.unknown())) });

/**
 * Reads `<domain>/.mcp.json` (none: no servers). Its values are passed to the CLI as written: secrets belong in
 * `${VAR}` references, which the CLI expands from its environment; the file's content is never logged or stored.
 * The name `dan` is dan's own server.
 */
export async function readDomainMcp(domainDir: string): Promise<DomainMcp> {
  const file = path.join(domainDir, '.mcp.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { servers: {}, variables: [] };
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DanError('DAN_BAD_CONFIG', `${file} is not valid JSON: ${(error as Error).message}`, { details: { file } });
  }
  const checked = mcpFileSchema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new DanError('DAN_BAD_CONFIG', `${file}: ${issue?.path.join('.') || 'the file'} ${issue?.message ?? 'is invalid'} (the format is {"mcpServers": {"<name>": {"command": …}}})`, { details: { file } });
  }
  if ('dan' in checked.data.mcpServers) throw new DanError('DAN_BAD_CONFIG', `${file}: the server name "dan" is dan's own; rename yours`, { details: { file } });
  const variables = [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)].map((m) => m[1]!))].sort();
  return { servers: checked.data.mcpServers, variables };
}

/**
 * The values of the variables a domain's `.mcp.json` references, from `env` (the orchestrator's), named for the
 * secrets line of the domain's agents (lib/secrets.ts): a runtime's agent gets them on its stdin, never in its
 * environment, a container's config, Redis or a log.
 */
export async function domainMcpSecrets(domainDir: string, env: Readonly<Record<string, string | undefined>>): Promise<Record<string, string>> {
  const secrets: Record<string, string> = {};
  for (const name of (await readDomainMcp(domainDir)).variables) {
    const value = env[name];
    if (value !== undefined) secrets[mcpSecretName(name)] = value;
  }
  return secrets;
}

/** The `--mcp-config` of a run: dan's own server (`dan mcp`, asking into `questionFile`) and the domain's. */
export function buildMcpConfig(danCommand: readonly string[], questionFile: string, domain: DomainMcp | undefined): string {
  const [command, ...args] = danCommand;
  return JSON.stringify({
    mcpServers: {
      ...(domain?.servers ?? {}),
      dan: { type: 'stdio', command, args: [...args, 'mcp'], env: { DAN_QUESTION_FILE: questionFile } },
    },
  });
}
