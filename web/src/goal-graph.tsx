import dagre from '@dagrejs/dagre';
import type { TaskRecord } from './api';

const NODE_W = 150;
const NODE_H = 46;

/**
 * A goal's subtasks as a dependency graph, laid out by dagre (left to right), drawn as SVG. Each node is a link to
 * its subtask, coloured by its status; the caller passes fresh statuses, so nodes recolour as events arrive.
 */
export function GoalGraph({ subtasks }: { subtasks: TaskRecord[] }) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 40, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const t of subtasks) g.setNode(t.id, { width: NODE_W, height: NODE_H });
  const known = new Set(subtasks.map((t) => t.id));
  for (const t of subtasks) for (const dep of t.dependsOn) if (known.has(dep)) g.setEdge(dep, t.id);
  dagre.layout(g);
  const { width = 0, height = 0 } = g.graph();
  return (
    <svg class="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label="the goal's subtasks and their dependencies">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      {g.edges().map((e) => {
        const points = g.edge(e).points ?? [];
        return <polyline key={`${e.v}-${e.w}`} class="edge" points={points.map((p: { x: number; y: number }) => `${p.x},${p.y}`).join(' ')} marker-end="url(#arrow)" />;
      })}
      {subtasks.map((t) => {
        const n = g.node(t.id);
        return (
          <a key={t.id} href={`#/tasks/${t.id}`} class="node" data-task={t.id} data-status={t.status}>
            <rect class={`s-${t.status}`} x={n.x - NODE_W / 2} y={n.y - NODE_H / 2} width={NODE_W} height={NODE_H} rx="6" />
            <text x={n.x} y={n.y - 4} text-anchor="middle">
              {t.key ?? t.id.slice(-6)}
            </text>
            <text x={n.x} y={n.y + 13} text-anchor="middle" class="sub">
              {t.domain} · {t.status.replace('_', ' ')}
            </text>
          </a>
        );
      })}
    </svg>
  );
}
