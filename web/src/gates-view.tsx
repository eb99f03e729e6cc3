import type { GateState, TaskRecord } from './api';

const MARK: Record<GateState['state'], string> = { pass: '✓', fail: '✗', waived: 'waived', pending: '…' };

/** A task's review gates: each gate's state, its rounds with their verdicts, and the findings of each round. */
export function GatesView({ record }: { record: TaskRecord }) {
  const gates = record.reviews ?? [];
  if (gates.length === 0 && !record.verdict) return null;
  return (
    <section class="card gates">
      <h2>Review</h2>
      {record.review && (
        <p>
          Reviews {record.review.goal ? 'goal' : 'task'} <a href={`#/tasks/${record.review.of}`}>{record.review.of}</a>: gate <b>{record.review.gate}</b>, round {record.review.round}
        </p>
      )}
      {record.verdict && (
        <p class={`verdict ${record.verdict.verdict}`}>
          <b>{record.verdict.verdict}</b> {record.verdict.summary}
        </p>
      )}
      {gates.map((g) => (
        <div class={`gate ${g.state}`} key={g.gate}>
          <h3>
            {g.gate} {MARK[g.state]} <small>({g.rounds.length} round{g.rounds.length === 1 ? '' : 's'})</small>
          </h3>
          {g.waived && (
            <p>
              waived by {g.waived.by}: {g.waived.reason}
            </p>
          )}
          <ol>
            {g.rounds.map((r) => (
              <li key={r.task}>
                <a href={`#/tasks/${r.task}`}>{r.verdict ?? (r.error ? 'no verdict' : 'reviewing…')}</a> {r.summary ?? r.error ?? ''}
                {r.findings.length > 0 && (
                  <ul>
                    {r.findings.map((f, i) => (
                      <li key={i} class="mono">
                        {f.file}
                        {f.line ? `:${f.line}` : ''} [{f.severity}] {f.message}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ol>
        </div>
      ))}
    </section>
  );
}
