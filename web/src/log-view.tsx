import type { LogEntry } from './api';
import { time } from './format';

/** One line per entry as `dan logs` prints it: time, (a goal's subtask tag,) type, status, text, agent. */
export function LogView({ entries, tags }: { entries: LogEntry[]; tags?: Map<string, string> }) {
  return (
    <ol class="log" aria-live="polite">
      {entries.map(({ id, taskId, entry }) => (
        <li key={id} class={`t-${entry.type}`} data-type={entry.type}>
          <span class="ts">{time(entry.ts)}</span>
          {tags && <span class="tag">{tags.get(taskId) ?? taskId.slice(-6)}</span>}
          <span class="type">{entry.type}</span>
          {entry.type === 'status' && entry.status && <span class={`st s-${entry.status}`}>{entry.status}</span>}
          <span class="text">{entry.text}</span>
          {entry.type === 'status' && entry.agent && <span class="agent"> ({entry.agent})</span>}
        </li>
      ))}
    </ol>
  );
}
