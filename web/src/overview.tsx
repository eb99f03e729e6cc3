import { useEffect, useState } from 'preact/hooks';
import { api, follow, type Agent, type DanEvent, type Overview as OverviewData, type TaskRecord } from './api';
import { ago, cost, duration, taskDuration, truncate } from './format';
import { StatusBadge } from './status-badge';

/** Re-reads the view on the events that change it, a few at a time: live, with no polling loop. */
function useLiveOverview() {
  const [tasks, setTasks] = useState<TaskRecord[]>([]);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [overview, setOverview] = useState<OverviewData | undefined>();
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let timer: number | undefined;
    const load = (): void => {
      Promise.all([api<{ tasks: TaskRecord[] }>('GET', '/api/tasks?limit=30'), api<{ agents: Agent[] }>('GET', '/api/agents'), api<OverviewData>('GET', '/api/overview')])
        .then(([t, a, o]) => {
          setTasks(t.tasks);
          setAgents(a.agents);
          setOverview(o);
          setError(undefined);
        })
        .catch((e: Error) => setError(e.message));
    };
    const soon = (): void => {
      clearTimeout(timer);
      timer = window.setTimeout(load, 150);
    };
    load();
    const stop = follow(
      '/api/events',
      (event, data) => {
        if (event === 'task') {
          const e = data as DanEvent;
          setTasks((list) => list.map((t) => (t.id === e.id ? { ...t, status: e.status as TaskRecord['status'] } : t)));
        }
        if (event === 'task' || event === 'agent' || event === 'ready') soon();
      },
      setLive,
    );
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, []);
  return { tasks, agents, overview, live, error };
}

/** A clock for "uptime" and "ago" columns: it redraws, it reads nothing. */
function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function Overview() {
  const { tasks, agents, overview, live, error } = useLiveOverview();
  const now = useNow(1000);
  const byDomain = new Map<string, Agent[]>();
  for (const a of agents) byDomain.set(a.domain, [...(byDomain.get(a.domain) ?? []), a]);
  return (
    <div class="overview">
      <p class="live" data-live={live}>
        {live ? '● live' : '○ connecting…'} {error && <span class="error">{error}</span>}
      </p>
      <section class="cards">
        <div class="card stat">
          <span class="label">Tasks today</span>
          <span class="value" data-testid="today-tasks">{overview?.today.tasks ?? '-'}</span>
        </div>
        <div class="card stat">
          <span class="label">Cost today</span>
          <span class="value">{cost(overview?.today.costUsd)}</span>
        </div>
        <div class="card stat">
          <span class="label">Live agents</span>
          <span class="value">{agents.filter((a) => a.alive).length}</span>
        </div>
      </section>
      <section class="card">
        <h2>Queues</h2>
        <table>
          <thead>
            <tr>
              <th>Domain</th>
              <th>Waiting</th>
              <th>Active</th>
            </tr>
          </thead>
          <tbody>
            {overview?.domains.map((d) => (
              <tr key={d.name}>
                <td>{d.name}</td>
                <td>{d.waiting}</td>
                <td>{d.active}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>Agents</h2>
        {agents.length === 0 ? (
          <p class="muted">No agents registered (the orchestrator starts them when work arrives).</p>
        ) : (
          [...byDomain].map(([domain, list]) => (
            <div key={domain}>
              <h3>{domain}</h3>
              <table>
                <thead>
                  <tr>
                    <th>Agent</th>
                    <th>Status</th>
                    <th>Task</th>
                    <th>Uptime</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((a) => (
                    <tr key={a.id}>
                      <td class="mono">{a.id}</td>
                      <td>
                        <StatusBadge status={a.alive ? a.status : 'dead'} />
                      </td>
                      <td>{a.taskIds.length > 0 ? a.taskIds.map((t) => <a key={t} class="mono" href={`#/tasks/${t}`}>{t.slice(-6)} </a>) : '-'}</td>
                      <td>{duration(now - a.startedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))
        )}
      </section>
      <section class="card">
        <h2>Recent tasks</h2>
        <table class="tasks">
          <thead>
            <tr>
              <th>Task</th>
              <th>Status</th>
              <th>Domain</th>
              <th class="wide">Description</th>
              <th>Duration</th>
              <th>Cost</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t) => (
              <tr key={t.id} data-task={t.id}>
                <td>
                  <a class="mono" href={`#/tasks/${t.id}`}>
                    {t.id.slice(-6)}
                  </a>
                </td>
                <td>
                  <StatusBadge status={t.status} />
                </td>
                <td>{t.domain}</td>
                <td class="wide">{truncate(t.description, 80)}</td>
                <td>{taskDuration(t, now)}</td>
                <td>{cost(t.costUsd)}</td>
                <td>{ago(t.createdAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {tasks.length === 0 && <p class="muted">No tasks yet. <a href="#/send">Send one.</a></p>}
      </section>
    </div>
  );
}
