import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { token, unauthorizedListeners } from './api';
import { Overview } from './overview';
import { SendForm } from './send-form';
import { TaskPage } from './task-page';
import './style.css';

/** The page's place, from the URL's hash: `#/`, `#/send`, `#/tasks/<id>`. */
function useRoute(): string {
  const [route, setRoute] = useState(location.hash.slice(1) || '/');
  useEffect(() => {
    const onChange = (): void => setRoute(location.hash.slice(1) || '/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function TokenForm({ onSaved }: { onSaved: () => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="card token"
      onSubmit={(e) => {
        e.preventDefault();
        token.set(value.trim());
        onSaved();
      }}
    >
      <h2>This server needs its API token</h2>
      <label>
        DAN_API_TOKEN
        <input type="password" autocomplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />
      </label>
      <button type="submit">Save</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const [needsToken, setNeedsToken] = useState(false);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const listener = (): void => setNeedsToken(true);
    unauthorizedListeners.add(listener);
    return () => unauthorizedListeners.delete(listener);
  }, []);
  const task = /^\/tasks\/([0-9A-Z]{26})$/.exec(route);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          dan
        </a>
        <nav>
          <a href="#/" aria-current={route === '/' ? 'page' : undefined}>
            Overview
          </a>
          <a href="#/send" aria-current={route === '/send' ? 'page' : undefined}>
            Send a task
          </a>
        </nav>
      </header>
      <main key={generation}>
        {needsToken ? (
          <TokenForm
            onSaved={() => {
              setNeedsToken(false);
              setGeneration((g) => g + 1);
            }}
          />
        ) : task ? (
          <TaskPage id={task[1]!} />
        ) : route === '/send' ? (
          <SendForm />
        ) : (
          <Overview />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
