import type { TaskRecord } from '../lib/task.js';
import { c, colorStatus, duration, truncate } from './output.js';

const elapsed = (r: TaskRecord): number | undefined => (r.startedAt ? (r.finishedAt ?? Date.now()) - r.startedAt : undefined);
const cost = (r: TaskRecord): string => (r.costUsd === undefined ? '-' : `$${r.costUsd.toFixed(4)}`);

/** A goal and its subtasks as a tree: each subtask's key, domain, status, agent, duration, cost and dependencies. */
export function formatTree(parent: TaskRecord, children: readonly TaskRecord[]): string {
  const keyOf = new Map(children.map((ch) => [ch.id, ch.key ?? ch.id.slice(-6)]));
  const lines = [
    `${c.bold(parent.id)} ${c.gray('main')} ${colorStatus(parent.status)}  ${duration(elapsed(parent))}  ${cost(parent)}  ${truncate(parent.description, 60)}`,
  ];
  children.forEach((ch, i) => {
    const branch = i === children.length - 1 ? '└─' : '├─';
    const deps = ch.dependsOn.length > 0 ? c.gray(` after ${ch.dependsOn.map((d) => keyOf.get(d) ?? d).join(', ')}`) : '';
    lines.push(
      `${branch} ${c.bold(ch.key ?? ch.id)} ${c.gray(ch.domain)} ${colorStatus(ch.status)}  ${ch.agent ?? '-'}  ${duration(elapsed(ch))}  ${cost(ch)}${deps}  ${c.gray(ch.id)}`,
    );
  });
  return lines.join('\n');
}

const MERMAID_CLASS: Record<string, string> = {
  completed: 'fill:#d4f7d4',
  failed: 'fill:#f7d4d4',
  timed_out: 'fill:#f7d4d4',
  cancelled: 'fill:#f7f0d4',
  active: 'fill:#d4e4f7',
  queued: 'fill:#eeeeee',
  waiting: 'fill:#ffffff',
};

/** The graph as a Mermaid flowchart: one node per subtask (key, domain, status), edges for dependencies. */
export function formatMermaid(parent: TaskRecord, children: readonly TaskRecord[]): string {
  const node = (r: TaskRecord): string => `t${r.id}`;
  const label = (r: TaskRecord): string => `${r.key ?? r.id.slice(-6)}<br/>${r.domain}: ${r.status}`.replace(/"/g, "'");
  const lines = ['flowchart TD', `  ${node(parent)}["goal<br/>${parent.status}"]`];
  for (const ch of children) lines.push(`  ${node(ch)}["${label(ch)}"]`);
  for (const ch of children) {
    if (ch.dependsOn.length === 0) lines.push(`  ${node(parent)} --> ${node(ch)}`);
    for (const dep of ch.dependsOn) lines.push(`  t${dep} --> ${node(ch)}`);
  }
  for (const r of [parent, ...children]) lines.push(`  style ${node(r)} ${MERMAID_CLASS[r.status] ?? ''}`);
  return lines.join('\n');
}
