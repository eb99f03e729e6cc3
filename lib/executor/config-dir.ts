import { cp, mkdir, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PASSTHROUGH_ENV } from '../config.js';
import { DanError } from '../errors.js';

/** A worker subagent found in a domain's `.claude/agents/`. */
export interface WorkerInfo {
  /** The frontmatter `name`, else the file name without `.md`. */
  name: string;
  description?: string;
  /** The frontmatter `tools` line as written (`Write, Read`), when there is one. */
  tools?: string;
  /** The file inside the config dir. */
  file: string;
}

/** What {@link prepareConfigDir} built, for the caller to log. */
export interface PreparedConfigDir {
  /** The config dir: the CLI's `CLAUDE_CONFIG_DIR`. */
  dir: string;
  /** Whether the domain has a CLAUDE.md (copied to `DIR/CLAUDE.md`). */
  instructions: boolean;
  workers: WorkerInfo[];
  /** `permissions.allow` of the domain's `.claude/settings.json` ([] without one). */
  allow: string[];
  /** `permissions.deny` of the same file. */
  deny: string[];
  /** Whether the domain has a `.claude/settings.json` (copied to `DIR/settings.json`). */
  settings: boolean;
}

const exists = async (p: string): Promise<boolean> => stat(p).then(
  () => true,
  () => false,
);

/**
 * Builds the per-agent `CLAUDE_CONFIG_DIR` from a domain folder (DESIGN.md, What runs): `CLAUDE.md` →
 * `DIR/CLAUDE.md`, `.claude/agents/` → `DIR/agents/`, `.claude/settings.json` → `DIR/settings.json`. The
 * target is emptied first, so nothing of an earlier run or another domain remains; the workspace is never
 * written to.
 */
export async function prepareConfigDir(domainTemplateDir: string, targetDir: string): Promise<PreparedConfigDir> {
  const source = path.resolve(domainTemplateDir);
  const dir = path.resolve(targetDir);
  if (!(await stat(source).then((s) => s.isDirectory(), () => false))) {
    throw new DanError('DAN_EXECUTOR', `domain template folder ${source} does not exist or is not a folder`, {
      details: { templateDir: source },
    });
  }
  // Emptying the target must never touch the template or anything above it.
  if (dir === path.parse(dir).root || source === dir || source.startsWith(`${dir}${path.sep}`) || dir.startsWith(`${source}${path.sep}`)) {
    throw new DanError('DAN_EXECUTOR', `config dir ${dir} must be a folder of its own, outside the template ${source}`, {
      details: { templateDir: source, configDir: dir },
    });
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });

  const instructions = await exists(path.join(source, 'CLAUDE.md'));
  if (instructions) await cp(path.join(source, 'CLAUDE.md'), path.join(dir, 'CLAUDE.md'));

  const agentsDir = path.join(source, '.claude', 'agents');
  const workers: WorkerInfo[] = [];
  if (await exists(agentsDir)) {
    await cp(agentsDir, path.join(dir, 'agents'), { recursive: true });
    for (const file of (await readdir(path.join(dir, 'agents'))).filter((f) => f.endsWith('.md')).sort()) {
      const target = path.join(dir, 'agents', file);
      workers.push(workerInfo(await readFile(target, 'utf8'), file.slice(0, -3), target));
    }
  }

  const settingsFile = path.join(source, '.claude', 'settings.json');
  const settings = await exists(settingsFile);
  let allow: string[] = [];
  let deny: string[] = [];
  if (settings) {
    const text = await readFile(settingsFile, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new DanError('DAN_BAD_CONFIG', `${settingsFile} is not valid JSON: ${(error as Error).message}`, {
        cause: error,
        details: { file: settingsFile },
      });
    }
    const permissions = (parsed as { permissions?: { allow?: unknown; deny?: unknown } } | null)?.permissions;
    allow = stringList(permissions?.allow);
    deny = stringList(permissions?.deny);
    await cp(settingsFile, path.join(dir, 'settings.json'));
  }
  return { dir, instructions, workers, allow, deny, settings };
}

/**
 * Removes a config dir made by {@link prepareConfigDir}, then the folders above it that it leaves empty, up to
 * `levels` of them (the network's folder and `<tmp>/dan` for an agent's `<tmp>/dan/<network>/<agent>`): a network
 * that stopped leaves nothing under the temporary folder. A folder still in use by another agent is not empty
 * and stays. Never rejects.
 */
export async function removeConfigDir(dir: string, levels = 2): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  let parent = path.dirname(path.resolve(dir));
  for (let i = 0; i < levels && parent !== path.parse(parent).root; i++) {
    // ENOTEMPTY (another agent's folder) or ENOENT (removed by a sibling meanwhile) both end the climb.
    if (!(await rmdir(parent).then(() => true, () => false))) return;
    parent = path.dirname(parent);
  }
}

const stringList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Reads the `key: value` lines of a Markdown file's frontmatter (all a worker file needs; no YAML library). */
export function parseFrontmatter(text: string): Record<string, string> {
  const match = /^---\r?\n([\s\S]*?)\r?\n---(?:\r?\n|$)/.exec(text);
  const fields: Record<string, string> = {};
  for (const line of match?.[1]?.split(/\r?\n/) ?? []) {
    const kv = /^([A-Za-z_][\w-]*)\s*:\s*(.*)$/.exec(line);
    if (kv?.[1]) fields[kv[1]] = (kv[2] ?? '').trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return fields;
}

function workerInfo(text: string, fallbackName: string, file: string): WorkerInfo {
  const fm = parseFrontmatter(text);
  const info: WorkerInfo = { name: fm.name || fallbackName, file };
  if (fm.description) info.description = fm.description;
  if (fm.tools) info.tools = fm.tools;
  return info;
}

/**
 * The variable that tags every process an agent's CLI runs (the CLI, its tools, the sessions they start) with
 * the agent's id: inherited down the tree, it lets the process runtime find them after the agent itself was
 * killed, when nothing else links them to it (see `killTagged`).
 */
export const AGENT_TAG = 'DAN_AGENT_ID';

/** Variables of the agent's own environment that the CLI needs besides {@link PASSTHROUGH_ENV}. */
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR'] as const;

/**
 * The exact environment of a CLI run: PATH, HOME, LANG, LC_ALL, TMPDIR and the pass-through variables
 * (ANTHROPIC_* …) taken from `baseEnv`, `CLAUDE_CONFIG_DIR` set to `configDir`, and
 * `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` unless `baseEnv` sets it, `MCP_CONNECTION_NONBLOCKING=0`, and with `agentId` the tag
 * `DAN_AGENT_ID` (see {@link AGENT_TAG}). Nothing else of the agent's environment (REDIS_URL, its own secrets)
 * reaches the CLI or the tools it runs.
 */
export function buildClaudeEnv(
  baseEnv: Readonly<Record<string, string | undefined>>,
  configDir: string,
  agentId?: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...BASE_ENV, ...PASSTHROUGH_ENV]) {
    const value = baseEnv[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  // A pool of subscription tokens is never handed whole to a CLI: a spawned agent's env holds its one token
  // already; anything else (the orchestrator's planner) uses the first.
  if (env.CLAUDE_CODE_OAUTH_TOKEN?.includes(',')) env.CLAUDE_CODE_OAUTH_TOKEN = env.CLAUDE_CODE_OAUTH_TOKEN.split(',')[0]!;
  if (agentId) env[AGENT_TAG] = agentId;
  env.CLAUDE_CONFIG_DIR = configDir;
  env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC ??= '1';
  // In print mode the CLI (2.1.197) otherwise starts without waiting for MCP servers: the first turn would lack
  // ask_user and the domain's tools (found with the real binary: init reported the server `pending`).
  env.MCP_CONNECTION_NONBLOCKING = '0';
  return env;
}
