import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Overview } from './api';

type Field = 'domain' | 'description' | 'priority' | 'timeoutS' | 'context' | 'noMerge' | 'form';

/** Which field the server's message is about: its messages start with the field's name, as the CLI's do. */
function fieldOf(message: string): Field {
  if (message.startsWith('unknown domain') || message.startsWith('domain')) return 'domain';
  for (const f of ['description', 'priority', 'timeoutS', 'context', 'noMerge'] as const) if (message.startsWith(f)) return f;
  return 'form';
}

/** The send-task form: the server validates (the same checks as `dan send-task`); its errors show by their field. */
export function SendForm() {
  const [domains, setDomains] = useState<string[]>([]);
  const [domain, setDomain] = useState('');
  const [description, setDescription] = useState('');
  const [priority, setPriority] = useState('normal');
  const [timeout, setTimeoutS] = useState('');
  const [context, setContext] = useState('');
  const [noMerge, setNoMerge] = useState(false);
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<Overview>('GET', '/api/overview')
      .then((o) => {
        setDomains(o.domains.map((d) => d.name));
        setDomain((d) => d || (o.domains.find((x) => x.name !== 'main')?.name ?? 'main'));
      })
      .catch((e: Error) => setErrors({ form: e.message }));
  }, []);

  const submit = (e: Event): void => {
    e.preventDefault();
    const body: Record<string, unknown> = { domain, description, priority };
    if (timeout.trim() !== '') body.timeoutS = Number(timeout);
    if (noMerge) body.noMerge = true;
    if (context.trim() !== '') {
      try {
        body.context = JSON.parse(context) as unknown;
      } catch {
        setErrors({ context: 'context is not valid JSON: write a JSON object such as {"repo": "api"}' });
        return;
      }
    }
    setBusy(true);
    api<{ id: string }>('POST', '/api/tasks', body)
      .then(({ id }) => {
        location.hash = `#/tasks/${id}`;
      })
      .catch((error: Error) => {
        setErrors(error instanceof ApiError && error.status === 400 ? { [fieldOf(error.message)]: error.message } : { form: error.message });
        setBusy(false);
      });
  };

  const err = (f: Field) =>
    errors[f] && (
      <p class="field-error" id={`${f}-error`} role="alert">
        {errors[f]}
      </p>
    );
  const described = (f: Field) => (errors[f] ? { 'aria-invalid': true, 'aria-describedby': `${f}-error` } : {});
  return (
    <form class="card send" onSubmit={submit} noValidate>
      <h1>Send a task</h1>
      <label>
        Domain
        <select name="domain" value={domain} onChange={(e) => setDomain(e.currentTarget.value)} {...described('domain')}>
          {domains.map((d) => (
            <option key={d} value={d}>
              {d === 'main' ? 'main (plan across domains)' : d}
            </option>
          ))}
        </select>
      </label>
      {err('domain')}
      <label>
        Description
        <textarea name="description" rows={5} value={description} onInput={(e) => setDescription(e.currentTarget.value)} placeholder="what to do" {...described('description')} />
      </label>
      {err('description')}
      <div class="row">
        <label>
          Priority
          <select name="priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)} {...described('priority')}>
            <option value="low">low</option>
            <option value="normal">normal</option>
            <option value="high">high</option>
          </select>
        </label>
        <label>
          Timeout (seconds)
          <input name="timeoutS" inputMode="numeric" value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} placeholder="default" {...described('timeoutS')} />
        </label>
      </div>
      {err('priority')}
      {err('timeoutS')}
      <label>
        Context (JSON object, optional)
        <textarea name="context" rows={3} class="mono" value={context} onInput={(e) => setContext(e.currentTarget.value)} placeholder='{"repo": "api"}' {...described('context')} />
      </label>
      {err('context')}
      <label class="check">
        <input type="checkbox" name="noMerge" checked={noMerge} onChange={(e) => setNoMerge(e.currentTarget.checked)} {...described('noMerge')} />
        Keep the branch for review instead of merging it
      </label>
      {err('noMerge')}
      {err('form')}
      <button type="submit" disabled={busy}>
        {busy ? 'Sending…' : 'Send task'}
      </button>
    </form>
  );
}
