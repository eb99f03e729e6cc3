import { useState } from 'preact/hooks';
import { api, type Question } from './api';

/**
 * The question a task asked (status needs_input) and a box to answer it (`dan answer`): the server checks the
 * answer as the CLI does and its message shows under the box; once accepted, the task is queued again and
 * `onAnswered` is told (the task's log stream ended when it began to wait: its page follows it again).
 */
export function AnswerForm({ id, question, onAnswered }: { id: string; question: Question; onAnswered: () => void }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const edit = (value: string): void => {
    setText(value);
    setError(undefined);
  };

  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    api<{ status: string }>('POST', `/api/tasks/${id}/answer`, { text })
      .then(() => {
        setError(undefined);
        setText('');
        onAnswered();
      })
      .catch((err: Error) => setError(err.message))
      .finally(() => setBusy(false));
  };

  return (
    <form class="card answer" onSubmit={submit} noValidate>
      <h2>Question</h2>
      <p data-testid="question">{question.question}</p>
      {question.options && question.options.length > 0 && (
        <div class="options">
          {question.options.map((o) => (
            <button key={o} type="button" class="option" onClick={() => edit(o)}>
              {o}
            </button>
          ))}
        </div>
      )}
      <label>
        Your answer
        <textarea name="answer" rows={3} value={text} onInput={(e) => edit(e.currentTarget.value)} {...(error ? { 'aria-invalid': true, 'aria-describedby': 'answer-error' } : {})} />
      </label>
      {error && (
        <p class="field-error" id="answer-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? 'Sending…' : 'Send answer'}
      </button>
    </form>
  );
}
