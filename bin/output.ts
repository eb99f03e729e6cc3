import { describeGates, type GateState } from '../lib/gates.js';
import { describeStat } from '../lib/workspace/index.js';
import { Chalk, type ChalkInstance } from 'chalk';
import type { AgentRecord } from '../lib/registry/index.js';
import type { StoredLogEntry } from '../lib/messaging/index.js';
import type { TaskRecord, TaskStatus } from '../lib/task.js';

/** Human output: colour only on a TTY and when NO_COLOR is unset (https://no-color.org). */
export function makeChalk(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  const force = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0';
  return new Chalk({ level: noColor ? 0 : force || stream.isTTY ? 1 : 0 });
}

export const c = makeChalk();
export const cErr = makeChalk(process.stderr);

const STATUS_COLOR: Record<TaskStatus, (s: string) => string> = {
  waiting: (s) => c.gray(s),
  queued: (s) => c.cyan(s),
  active: (s) => c.blue(s),
  needs_input: (s) => c.magenta(s),
  completed: (s) => c.green(s),
  failed: (s) => c.red(s),
  cancelled: (s) => c.yellow(s),
  timed_out: (s) => c.red(s),
};

export const colorStatus = (status: TaskStatus): string => STATUS_COLOR[status](status);

/** A status with its run's warnings, the warnings in yellow: `completed (no changes, 2 refused writes)`. */
export const colorOutcome = (r: Pick<TaskRecord, 'status' | 'warnings'>): string =>
  colorStatus(r.status) + (r.warnings && r.warnings.length > 0 ? c.yellow(` (${r.warnings.join(', ')})`) : '');

export function time(ms: number): string {
  const d = new Date(ms);
  return d.toISOString().slice(11, 23);
}

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function ago(ms: number, now = Date.now()): string {
  return `${duration(now - ms)} ago`;
}

export function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

const TYPE_COLOR: Partial<Record<string, (s: string) => string>> = {
  status: (s) => c.bold(s),
  tool_use: (s) => c.magenta(s),
  tool_result: (s) => c.gray(s),
  result: (s) => c.green(s),
  stderr: (s) => c.yellow(s),
  warning: (s) => c.yellow(s),
  error: (s) => c.red(s),
  raw: (s) => c.gray(s),
};

/** One log line: time, optional task tag, type, text. */
export function formatEntry({ entry, taskId }: StoredLogEntry, options: { tag?: string } = {}): string {
  const paint = TYPE_COLOR[entry.type] ?? ((s: string) => s);
  const tag = options.tag === undefined ? '' : `${c.cyan(options.tag)} `;
  const status = entry.type === 'status' && entry.status ? `${colorStatus(entry.status)} ` : '';
  const agent = entry.type === 'status' && entry.agent ? c.gray(` (${entry.agent})`) : '';
  void taskId;
  // Continuation lines of multi-line text are indented under the text, so every entry reads as one block.
  const indent = ' '.repeat(13 + (options.tag === undefined ? 0 : options.tag.length + 1) + 12);
  const text = entry.text.replace(/\n/g, `\n${indent}`);
  return `${c.gray(time(entry.ts))} ${tag}${paint(entry.type.padEnd(11))} ${status}${text}${agent}`;
}

export function formatRecord(r: TaskRecord): string {
  const lines = [
    `${c.bold('task')}       ${r.id}`,
    `${c.bold('status')}     ${colorOutcome(r)}${r.reason && r.status !== 'completed' ? c.gray(`  (${r.reason})`) : ''}`,
    `${c.bold('domain')}     ${r.domain}`,
    `${c.bold('priority')}   ${r.priority}   ${c.bold('timeout')} ${r.timeoutS}s   ${c.bold('attempts')} ${r.attempts}/${r.maxAttempts}`,
    `${c.bold('created')}    ${new Date(r.createdAt).toISOString()}`,
  ];
  if (r.agent) lines.push(`${c.bold('agent')}      ${r.agent}`);
  if (r.startedAt) lines.push(`${c.bold('started')}    ${new Date(r.startedAt).toISOString()}`);
  if (r.finishedAt) lines.push(`${c.bold('finished')}   ${new Date(r.finishedAt).toISOString()}  (${duration(r.finishedAt - (r.startedAt ?? r.createdAt))})`);
  if (r.costUsd !== undefined) lines.push(`${c.bold('cost')}       $${r.costUsd.toFixed(4)}   ${c.bold('turns')} ${r.turns ?? '-'}${r.budgetUsd !== undefined ? `   ${c.bold('budget')} $${r.budgetUsd}` : ''}`);
  else if (r.budgetUsd !== undefined) lines.push(`${c.bold('budget')}     $${r.budgetUsd}`);
  const model = [
    r.modelUsed ? `${r.modelUsed}${r.model && r.model !== r.modelUsed ? ` (asked: ${r.model})` : ''}` : r.model && `${r.model} (asked)`,
    r.effort && `effort ${r.effort}`,
    r.fallbackModel && `fallback ${r.fallbackModel}`,
    r.tokenIndex !== undefined && `subscription token #${r.tokenIndex}`,
  ].filter(Boolean);
  if (model.length > 0) lines.push(`${c.bold('model')}      ${model.join('   ')}`);
  if (r.parent) lines.push(`${c.bold('parent')}     ${r.parent}${r.key ? ` (${r.key})` : ''}`);
  if (r.follows) lines.push(`${c.bold('follows')}    ${r.follows}`);
  if (r.dependsOn.length > 0) lines.push(`${c.bold('depends on')} ${r.dependsOn.join(', ')}`);
  if (Object.keys(r.context).length > 0) lines.push(`${c.bold('context')}    ${truncate(JSON.stringify(r.context), 200)}`);
  if (r.git) lines.push(...formatGit(r));
  if (r.reviews?.length) lines.push(...formatGates(r.reviews));
  else if (r.gates) lines.push(`${c.bold('gates')}      ${r.gates.length > 0 ? r.gates.join(', ') : c.gray('none (--no-gates)')}`);
  if (r.review) lines.push(`${c.bold('reviews')}    ${r.review.goal ? 'goal' : 'task'} ${r.review.of}, gate ${r.review.gate}, round ${r.review.round}${r.review.commit ? `, at ${r.review.commit.slice(0, 10)}` : ''}`);
  if (r.verdict) lines.push(`${c.bold('verdict')}    ${r.verdict.verdict === 'pass' ? c.green('pass') : c.red('fail')}  ${r.verdict.summary}`);
  lines.push(`${c.bold('description')}`, indent(r.review ? (r.description.split('\n')[0] ?? '') : r.description));
  if (r.error) lines.push(`${c.bold(c.red('error'))}`, indent(r.error));
  if (r.result) lines.push(`${c.bold('result')}`, indent(r.result));
  return lines.join('\n');
}

/** A conversation (`--continue` follow-ups), oldest first; `current` marked. */
export function formatThread(thread: readonly TaskRecord[], current: string): string {
  return thread
    .map((r) => {
      const mark = r.id === current ? c.bold('>') : ' ';
      const depth = r.follows ? '  ' : '';
      return `${mark} ${depth}${r.id}  ${colorOutcome(r)}  ${truncate(r.description.split('\n')[0] ?? '', 60)}`;
    })
    .join('\n');
}

/** `gates: code ✓ (1 round), security ✗ (2 rounds: 1 high)`, then the last failing round's findings. */
function formatGates(gates: readonly GateState[]): string[] {
  const lines = [`${c.bold('gates')}      ${describeGates(gates)}`];
  // Each round's review task, for dan status and dan logs of the reviewer's own run.
  for (const gate of gates) {
    const rounds = gate.rounds.map((r, i) => `${i + 1}: ${r.verdict ?? (r.error ? 'no verdict' : 'reviewing')} ${r.task}${r.fixup ? ` (fix-up ${r.fixup})` : ''}`);
    if (rounds.length > 0) lines.push(`             ${c.gray(`${gate.gate} rounds ${rounds.join(', ')}`)}`);
  }
  for (const gate of gates.filter((g) => g.state === 'fail' || g.state === 'waived')) {
    const last = gate.rounds.at(-1);
    for (const f of last?.findings ?? []) lines.push(`             ${c.gray(`${gate.gate}: ${f.file}${f.line ? `:${f.line}` : ''} [${f.severity}] ${truncate(f.message, 160)}`)}`);
  }
  return lines;
}

/** The task's branch, change and merge state, and what to do when it is not merged. */
function formatGit(r: TaskRecord): string[] {
  const git = r.git!;
  const state = git.merge === 'merged' ? c.green('merged') : git.merge === undefined ? c.gray('not merged') : git.merge === 'nothing to commit' ? c.gray(git.merge) : c.yellow(git.merge);
  const lines = [
    `${c.bold('branch')}     ${git.branch}  (from ${git.integration} at ${git.base.slice(0, 10)})`,
    `${c.bold('change')}     ${git.commit ? `${describeStat(git.files)}  ${git.commit.slice(0, 10)}` : c.gray('none')}`,
    `${c.bold('merge')}      ${state}${git.mergeCommit ? `  ${git.mergeCommit.slice(0, 10)} on ${git.integration}` : ''}${git.resolutions ? c.gray(`  (${git.resolutions} conflict resolution${git.resolutions === 1 ? '' : 's'})`) : ''}`,
  ];
  if (git.mergeReason) lines.push(`             ${c.gray(git.mergeReason)}`);
  if (git.commit && git.merge !== 'merged') lines.push(`             ${c.gray(`see the change: dan diff ${r.id}`)}`);
  if (git.keptAttempts.length > 0) lines.push(`${c.bold('attempts')}   ${c.gray(`earlier attempts kept on ${git.keptAttempts.join(', ')}`)}`);
  return lines;
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

/** A fixed-width table; widths from the content. */
export function table(header: string[], rows: string[][]): string {
  const visible = (s: string): number => s.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visible(cell)))).join('  ');
  return [c.bold(line(header)), ...rows.map(line)].join('\n');
}

/** A row of `dan tasks`; `waits`: why queued tasks wait now (`budget`, `paused`), shown with a queued one. */
export function taskRow(r: TaskRecord, now = Date.now(), waits?: string): string[] {
  const status = r.status === 'queued' && waits ? `${colorOutcome(r)} ${c.yellow(`(${waits})`)}` : colorOutcome(r);
  return [r.id, r.domain, status, r.agent ?? '-', ago(r.createdAt, now), truncate(r.description, 50)];
}

/** A row of the dead-letter view (`dan tasks --status failed`): the reason in one line. */
export function deadLetterRow(r: TaskRecord, now = Date.now()): string[] {
  const reason = (r.error ?? r.reason ?? 'no reason recorded').trim().split('\n')[0] ?? '';
  return [r.id, r.domain, `${r.attempts}/${r.maxAttempts}`, ago(r.finishedAt ?? r.updatedAt, now), truncate(r.description, 40), truncate(reason, 100)];
}

/** A row of `dan agents`; `paused`: "paused until 14:05 UTC (usage limit)" when the agent's token is paused. */
export function agentRow(a: AgentRecord, now = Date.now(), paused?: string): string[] {
  const alive = a.status === 'busy' ? c.blue(a.status) : c.green(a.status);
  const state = a.alive ? (paused ? `${alive} ${c.yellow(paused)}` : alive) : c.red('dead (heartbeat expired)');
  return [a.id, a.role, a.domain, state, a.taskIds.join(',') || '-', String(a.tasksDone), a.runtime, a.ref || '-', ago(a.startedAt, now)];
}
