import { useEffect, useState } from 'preact/hooks';
import { AnswerForm } from './answer-form';
import { ApiError, api, follow, type LogEntry, type TaskRecord } from './api';
import { cost, duration } from './format';
import { GatesView } from './gates-view';
import { GitView } from './git-view';
import { GoalGraph } from './goal-graph';
import { LogView } from './log-view';
import { StatusBadge } from './status-badge';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timed_out']);
/** What `dan retry` starts again. */
const RETRYABLE = new Set(['failed', 'cancelled', 'timed_out']);

/**
 * A task: its record, its live log (a goal's with its subtasks'), its graph, a cancel button; the question and an
 * answer box while it needs input; a retry button once it failed, timed out or was cancelled.
 */
export function TaskPage({ id }: { id: string }) {
  const [record, setRecord] = useState<TaskRecord | undefined>();
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [cancelNote, setCancelNote] = useState<string | undefined>();
  // The log stream ends when the task ends or waits for an answer: after a retry or an answer, a new round follows it.
  const [round, setRound] = useState(0);

  useEffect(() => {
    let timer: number | undefined;
    const load = (): void => {
      api<TaskRecord>('GET', `/api/tasks/${id}`)
        .then((r) => {
          setRecord(r);
          setError(undefined);
        })
        .catch((e: Error) => setError(e instanceof ApiError && e.status === 404 ? `No task ${id}.` : e.message));
    };
    load();
    setEntries([]);
    const stop = follow(`/api/tasks/${id}/log`, (event, data) => {
      if (event !== 'entry') return;
      const e = data as LogEntry;
      setEntries((list) => [...list, e]);
      // A transition (of the task or a subtask) changes the record: read it again, once per burst.
      if (e.entry.type === 'status' || e.entry.type === 'result') {
        clearTimeout(timer);
        timer = window.setTimeout(load, 100);
      }
    });
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, [id, round]);

  if (error) return <p class="card error">{error}</p>;
  if (!record) return <p class="muted">Loading…</p>;
  const subtasks = record.subtasks ?? [];
  const tags = subtasks.length > 0 ? new Map([[record.id, 'goal'], ...subtasks.map((s) => [s.id, `${s.key ?? s.id.slice(-6)}/${s.domain}`] as [string, string])]) : undefined;
  const cancel = (): void => {
    api<{ outcome: string; agent?: string; status?: string }>('POST', `/api/tasks/${id}/cancel`)
      .then((o) => setCancelNote(o.outcome === 'requested' ? `Asked agent ${o.agent ?? ''} to stop it.` : o.outcome === 'cancelled' ? 'Cancelled.' : `Already ${o.status ?? 'finished'}.`))
      .catch((e: Error) => setCancelNote(e.message));
  };
  const retry = (): void => {
    api<{ subtasks: string[] }>('POST', `/api/tasks/${id}/retry`)
      .then((o) => {
        setCancelNote(o.subtasks.length > 0 ? `Retrying ${o.subtasks.length} subtask${o.subtasks.length === 1 ? '' : 's'}.` : 'Queued again.');
        setRound((r) => r + 1);
      })
      .catch((e: Error) => setCancelNote(e.message));
  };
  return (
    <div class="task">
      <section class="card head">
        <div class="title">
          <h1 class="mono">{record.id}</h1>
          <StatusBadge status={record.status} />
          {!TERMINAL.has(record.status) && (
            <button type="button" class="danger" onClick={cancel} disabled={record.cancelRequested}>
              {record.cancelRequested ? 'Cancelling…' : 'Cancel task'}
            </button>
          )}
          {RETRYABLE.has(record.status) && !record.parent && (
            <button type="button" onClick={retry}>
              Retry
            </button>
          )}
        </div>
        {cancelNote && <p class="note" role="status">{cancelNote}</p>}
        <p class="description">{record.description}</p>
        <dl class="facts">
          <dt>Domain</dt>
          <dd>{record.domain}</dd>
          <dt>Priority</dt>
          <dd>{record.priority}</dd>
          <dt>Attempts</dt>
          <dd>
            {record.attempts}/{record.maxAttempts}
          </dd>
          <dt>Agent</dt>
          <dd class="mono">{record.agent ?? '-'}</dd>
          <dt>Duration</dt>
          <dd>{record.startedAt ? duration((record.finishedAt ?? Date.now()) - record.startedAt) : '-'}</dd>
          <dt>Cost</dt>
          <dd data-testid="cost">{cost(record.costUsd)}</dd>
          <dt>Turns</dt>
          <dd>{record.turns ?? '-'}</dd>
          {record.follows && (
            <>
              <dt>Follows</dt>
              <dd>
                <a class="mono" href={`#/tasks/${record.follows}`}>
                  {record.follows}
                </a>
              </dd>
            </>
          )}
          {record.parent && (
            <>
              <dt>Goal</dt>
              <dd>
                <a class="mono" href={`#/tasks/${record.parent}`}>
                  {record.parent}
                </a>
              </dd>
            </>
          )}
          {record.reason && record.status !== 'completed' && (
            <>
              <dt>Reason</dt>
              <dd>{record.reason}</dd>
            </>
          )}
        </dl>
      </section>
      {record.status === 'needs_input' && record.question && <AnswerForm id={record.id} question={record.question} onAnswered={() => setRound((r) => r + 1)} />}
      {subtasks.length > 0 && (
        <section class="card">
          <h2>Plan</h2>
          <div class="graph-wrap">
            <GoalGraph subtasks={subtasks} />
          </div>
        </section>
      )}
      {record.error && (
        <section class="card">
          <h2 class="error">Error</h2>
          <pre>{record.error}</pre>
        </section>
      )}
      {record.result && (
        <section class="card">
          <h2>Result</h2>
          <pre data-testid="result">{record.result}</pre>
        </section>
      )}
      {record.git !== undefined && <GitView git={record.git} />}
      <GatesView record={record} />
      <section class="card">
        <h2>Log</h2>
        <LogView entries={entries} tags={tags} />
      </section>
    </div>
  );
}
