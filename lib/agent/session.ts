import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { z } from 'zod';
import { openToAgentGroup } from '../executor/index.js';
import type { TaskRecord } from '../task.js';
import type { AgentContext, StageOutcome, TaskRun } from './task-run.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Where the Claude Code CLI keeps a session (found with the real binary, 2.1.197): the transcript
 * `<CLAUDE_CONFIG_DIR>/projects/<cwd>/<session id>.jsonl`, `<cwd>` being the working directory with every
 * character but a letter or digit made `-`, and a folder `<session id>/` beside it when subagents ran. `--resume
 * <id>` looks for the transcript only under the folder of the cwd it runs in (a copy under another project folder
 * is "No conversation found"), and nothing else of the config dir is needed: a fresh config dir holding only that
 * file resumed the conversation, from another working directory too.
 */
export const projectFolder = (cwd: string): string => path.resolve(cwd).replace(/[^A-Za-z0-9]/g, '-');

/** A saved session as stored in `<prefix>task:<id>:session` (gzipped JSON). */
const savedSessionSchema = z.object({
  v: z.literal(1),
  sessionId: z.string().regex(/^[A-Za-z0-9-]{1,100}$/),
  /** Files of the project folder that belong to the session, by relative path, base64. */
  files: z.record(z.string(), z.string()),
});
export type SavedSession = z.infer<typeof savedSessionSchema>;

const safeRelative = (rel: string): boolean => rel.length > 0 && !path.isAbsolute(rel) && !rel.split(/[\\/]/).includes('..');

/** The session's files under the config dir (every project folder: the cwd differs by task), by path relative to it. */
export async function collectSession(configDir: string, sessionId: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const projects = path.join(configDir, 'projects');
  const folders = await readdir(projects).catch(() => [] as string[]);
  for (const folder of folders) {
    const dir = path.join(projects, folder);
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = path.join(entry.parentPath, entry.name);
      const rel = path.relative(dir, full);
      if (rel === `${sessionId}.jsonl` || rel.startsWith(`${sessionId}${path.sep}`)) files.set(rel, await readFile(full));
    }
  }
  return files;
}

/** Removes the session's files from the config dir (saved to Redis, they are not this agent's to keep). */
async function forgetSession(configDir: string, sessionId: string): Promise<void> {
  const projects = path.join(configDir, 'projects');
  for (const folder of await readdir(projects).catch(() => [] as string[])) {
    await rm(path.join(projects, folder, `${sessionId}.jsonl`), { force: true });
    await rm(path.join(projects, folder, sessionId), { recursive: true, force: true });
  }
}

export async function encodeSession(sessionId: string, files: Map<string, Buffer>): Promise<Buffer> {
  const saved: SavedSession = { v: 1, sessionId, files: Object.fromEntries([...files].map(([rel, data]) => [rel, data.toString('base64')])) };
  return gzipAsync(JSON.stringify(saved));
}

/** The saved session, or why it cannot be used. */
export async function decodeSession(blob: Buffer): Promise<SavedSession | string> {
  let json: unknown;
  try {
    json = JSON.parse((await gunzipAsync(blob)).toString('utf8'));
  } catch (error) {
    return `it is corrupt (${(error as Error).message})`;
  }
  const parsed = savedSessionSchema.safeParse(json);
  if (!parsed.success) return 'it is corrupt (not a saved session)';
  if (!Object.keys(parsed.data.files).includes(`${parsed.data.sessionId}.jsonl`)) return 'it has no transcript';
  if (!Object.keys(parsed.data.files).every(safeRelative)) return 'it is corrupt (a file outside its folder)';
  return parsed.data;
}

/**
 * Writes a saved session where `--resume` looks for it when the CLI runs in `cwd`: readable and writable by the
 * agent's group when the CLI runs under a uid of its own in that group (DAN_CLI_USER), which appends to it.
 */
export async function restoreSessionFiles(configDir: string, cwd: string, saved: SavedSession, forGroup = false): Promise<void> {
  const dir = path.join(configDir, 'projects', projectFolder(cwd));
  const mode = forGroup ? 0o660 : 0o600;
  for (const [rel, data] of Object.entries(saved.files)) {
    const target = path.join(dir, rel);
    await mkdir(path.dirname(target), { recursive: true });
    // A file left from before keeps its own mode and owner (maybe the CLI's): replaced, not rewritten.
    await rm(target, { force: true });
    await writeFile(target, Buffer.from(data, 'base64'), { mode });
  }
}

/** Which conversation a task's run continues: its own (an answer), or the task it follows (`--continue`). */
function sessionSource(record: TaskRecord): { taskId: string; own: boolean } | undefined {
  if (record.answer !== undefined) return { taskId: record.id, own: true };
  if (record.follows) return { taskId: record.follows, own: false };
  return undefined;
}

/**
 * Stage: restores the session the run continues, into this agent's config dir under the run's working directory,
 * so `--resume` finds it whichever agent or container ran it before. A missing or corrupt session does not stop
 * the run: it starts a new conversation, the log says so plainly, and a follow-up's prompt then carries the
 * earlier task's request and result instead.
 */
export async function restoreSession(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const record = run.record;
  const source = record && !run.target ? sessionSource(record) : undefined;
  if (!record || !source) return 'next';
  const earlier = source.own ? record : await ctx.bus.tasks.find(source.taskId);
  const why = await (async (): Promise<SavedSession | string> => {
    if (!earlier) return `task ${source.taskId} no longer exists`;
    if (!earlier.sessionId) return `task ${source.taskId} recorded no session`;
    const blob = await ctx.bus.redis.getBuffer(ctx.bus.keys.taskSession(source.taskId));
    if (!blob) return `no saved session of task ${source.taskId} (not saved, too large, or expired)`;
    const saved = await decodeSession(blob);
    if (typeof saved === 'string') return `the saved session of task ${source.taskId}: ${saved}`;
    if (saved.sessionId !== earlier.sessionId) return `the saved session of task ${source.taskId} is not the one its record names`;
    return saved;
  })();
  if (typeof why === 'string') {
    run.writer.push({ type: 'warning', text: `cannot resume the conversation: ${why}; this run starts a new conversation` });
    if (!source.own && earlier) run.prompt = withEarlierTask(earlier, run.prompt ?? record.description);
    if (source.own && record.answer !== undefined) run.prompt = withAnswer(record, record.answer);
    return 'next';
  }
  await restoreSessionFiles(ctx.configDir, run.cwd ?? ctx.config.workspace, why, ctx.config.cliUser !== undefined);
  run.resume = why.sessionId;
  run.writer.push({ type: 'info', text: `resuming session ${why.sessionId} of task ${source.taskId}` });
  return 'next';
}

/** An answered task's prompt when its conversation is lost: the task, the question and the answer. */
function withAnswer(record: TaskRecord, answer: string): string {
  return [
    record.description.trim(),
    `## Your question and the user's answer\n\nWorking on this task earlier, you asked the user:\n\n${record.question?.question ?? '(the question was not recorded)'}\n\nThey answered:\n\n${answer.trim()}`,
  ].join('\n\n');
}

/** A follow-up's prompt when the earlier conversation is lost: what was asked and answered before. */
function withEarlierTask(earlier: TaskRecord, prompt: string): string {
  return [
    prompt,
    `## The earlier task this one follows\n\nThis continues task ${earlier.id} (${earlier.status}). It was asked:\n\n${earlier.description.trim()}`,
    earlier.result ? `Its result:\n\n${earlier.result.trim()}` : 'It left no result text.',
  ].join('\n\n');
}

/**
 * Stage: saves the session the run wrote (the task's run, and a conflict resolution in the same session) to
 * `<prefix>task:<id>:session`, gzipped and capped at DAN_SESSION_MAX_BYTES, removed with the task by retention;
 * then removes it from this agent's config dir. Never fails the task: a session that cannot be saved only means
 * a later follow-up starts anew, and the log says so.
 */
export async function saveSession(ctx: AgentContext, run: TaskRun): Promise<StageOutcome> {
  const sessionId = run.result?.sessionId;
  if (!sessionId) return 'next';
  try {
    // The CLI under a uid of its own (DAN_CLI_USER) writes its transcripts mode 0600: opened to the agent's group
    // first, as that uid, or the agent could neither read nor save them.
    const projects = path.join(ctx.configDir, 'projects');
    if (ctx.config.cliUser && existsSync(projects)) await openToAgentGroup(projects, ctx.config.cliUser, ctx.env.PATH);
    const files = await collectSession(ctx.configDir, sessionId);
    if (files.size === 0) {
      run.writer.push({ type: 'warning', text: `the CLI left no transcript of session ${sessionId}: a follow-up cannot resume it` });
      return 'next';
    }
    const blob = await encodeSession(sessionId, files);
    if (blob.length > ctx.config.sessionMaxBytes) {
      run.writer.push({ type: 'warning', text: `session ${sessionId} is ${blob.length} bytes gzipped, over DAN_SESSION_MAX_BYTES (${ctx.config.sessionMaxBytes}): not saved; a follow-up starts a new conversation` });
      return 'next';
    }
    await ctx.bus.redis.set(ctx.bus.keys.taskSession(run.taskId), blob);
    run.writer.push({ type: 'info', text: `saved session ${sessionId} (${Math.ceil(blob.length / 1024)} KiB gzipped) for follow-ups` });
    await forgetSession(ctx.configDir, sessionId);
  } catch (error) {
    run.log.warn({ err: error }, 'could not save the session');
    run.writer.push({ type: 'warning', text: `could not save session ${sessionId}: ${(error as Error).message}` });
  }
  return 'next';
}
