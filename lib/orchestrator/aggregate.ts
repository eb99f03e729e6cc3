import type { StoredLogEntry } from '../messaging/index.js';
import type { TaskRecord } from '../task.js';
import { describeStat } from '../workspace/index.js';

/** Tools whose `file_path` input names a file the task changed. */
const WRITING_TOOLS = new Set(['Write', 'Edit', 'MultiEdit', 'NotebookEdit']);

/** Files a task's log shows it wrote or edited, in order of first change. */
export function filesChanged(entries: readonly StoredLogEntry[]): string[] {
  const files = new Set<string>();
  for (const { entry } of entries) {
    if (entry.type !== 'tool_use' || !entry.data) continue;
    const tool = entry.data.tool;
    const input = entry.data.input as Record<string, unknown> | undefined;
    const file = input?.file_path ?? input?.notebook_path;
    if (typeof tool === 'string' && WRITING_TOOLS.has(tool) && typeof file === 'string') files.add(file);
  }
  return [...files];
}

export interface Aggregate {
  status: 'completed' | 'failed';
  result: string;
  error?: string;
  costUsd: number;
  turns: number;
}

/**
 * What a subtask changed: with git workspaces, the real diff stat of its branch and what became of it (the
 * merge commit); else the files its log shows it wrote.
 */
function changeLines(c: TaskRecord, logged: readonly string[]): string[] {
  const git = c.git;
  if (!git) return [logged.length > 0 ? `files: ${logged.join(', ')}` : 'files: none seen in the log'];
  const files = git.files.map((f) => (f.added === null ? `${f.path} (binary)` : `${f.path} (+${f.added} -${f.removed ?? 0})`));
  const merge =
    git.merge === 'merged'
      ? `merged into ${git.integration} as ${git.mergeCommit?.slice(0, 10) ?? '?'}`
      : `${git.merge ?? 'not merged'}${git.mergeReason ? `: ${git.mergeReason}` : ''}; branch ${git.branch}`;
  return [`files: ${files.length > 0 ? files.join(', ') : 'none'} (${describeStat(git.files)})`, `git: ${merge}`];
}

const duration = (r: TaskRecord): string =>
  r.startedAt && r.finishedAt ? `${((r.finishedAt - r.startedAt) / 1000).toFixed(1)}s` : '-';

/**
 * The parent's outcome from its finished subtasks: a summary per subtask (status, agent, duration, cost, the
 * files it changed, its result), totals, and for a failure which parts failed and why. Pure.
 */
export function aggregate(parent: TaskRecord, children: readonly TaskRecord[], files: ReadonlyMap<string, string[]>): Aggregate {
  const costUsd = (parent.costUsd ?? 0) + children.reduce((sum, c) => sum + (c.costUsd ?? 0), 0);
  const turns = (parent.turns ?? 0) + children.reduce((sum, c) => sum + (c.turns ?? 0), 0);
  const failed = children.filter((c) => c.status !== 'completed');
  const sections = children.map((c) => {
    const head = `## ${c.key ?? c.id} (${c.domain}): ${c.status}`;
    const meta = `agent ${c.agent ?? '-'}, ${duration(c)}, $${(c.costUsd ?? 0).toFixed(4)}, ${c.turns ?? 0} turns`;
    const body = c.status === 'completed' ? (c.result ?? '').trim() : (c.error ?? c.reason ?? '').trim();
    return [head, meta, ...changeLines(c, files.get(c.id) ?? []), '', body].join('\n');
  });
  const allFiles = [...new Set(children.flatMap((c) => (c.git ? c.git.files.map((f) => f.path) : (files.get(c.id) ?? []))))];
  const summary = [
    `${children.length - failed.length} of ${children.length} subtasks completed; total $${costUsd.toFixed(4)}, ${turns} turns.`,
    allFiles.length > 0 ? `Files changed: ${allFiles.join(', ')}` : children.some((c) => c.git) ? 'Files changed: none.' : 'Files changed: none seen in the logs.',
    '',
    ...sections,
  ].join('\n');
  if (failed.length === 0) return { status: 'completed', result: summary, costUsd, turns };
  const error = `subtask${failed.length > 1 ? 's' : ''} did not complete: ${failed
    .map((c) => `${c.key ?? c.id} (${c.domain}) ${c.status}${c.error || c.reason ? `: ${(c.error ?? c.reason)!.split('\n')[0]}` : ''}`)
    .join('; ')}`;
  return { status: 'failed', result: summary, error, costUsd, turns };
}
