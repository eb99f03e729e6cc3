/** The dashboard's view of `dan serve`'s API: JSON calls and server-sent events, with the bearer token if one is set. */

export type TaskStatus = 'waiting' | 'queued' | 'active' | 'needs_input' | 'completed' | 'failed' | 'cancelled' | 'timed_out';

/** A question a task asked the user (ask_user). */
export interface Question {
  question: string;
  options?: string[];
}

export interface TaskRecord {
  id: string;
  domain: string;
  description: string;
  priority: string;
  timeoutS: number;
  context: Record<string, unknown>;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  updatedAt: number;
  parent?: string;
  key?: string;
  dependsOn: string[];
  children: string[];
  agent?: string;
  startedAt?: number;
  finishedAt?: number;
  result?: string;
  error?: string;
  reason?: string;
  costUsd?: number;
  turns?: number;
  usage?: Record<string, number>;
  cancelRequested: boolean;
  question?: Question;
  follows?: string;
  git?: unknown;
  /** The review gates of the task's change (issue 15). */
  reviews?: GateState[];
  /** A review task: what it reviews. */
  review?: { of: string; gate: string; round: number; commit?: string; goal?: boolean };
  verdict?: { verdict: 'pass' | 'fail'; summary: string; findings: Finding[] };
  subtasks?: TaskRecord[];
}

export interface Finding {
  file: string;
  line?: number;
  severity: string;
  message: string;
}

export interface GateState {
  gate: string;
  state: 'pending' | 'pass' | 'fail' | 'waived';
  rounds: Array<{ task: string; verdict?: 'pass' | 'fail'; error?: string; summary?: string; findings: Finding[]; costUsd: number; fixup?: string }>;
  waived?: { by: string; reason: string; at: number };
}

export interface Agent {
  id: string;
  role: string;
  domain: string;
  status: string;
  alive: boolean;
  taskIds: string[];
  startedAt: number;
  tasksDone: number;
  runtime: string;
}

export interface LogEntry {
  id: string;
  taskId: string;
  entry: { ts: number; type: string; text: string; status?: TaskStatus; agent?: string };
}

export interface Overview {
  domains: Array<{ name: string; waiting: number; active: number }>;
  today: { since: number; tasks: number; costUsd: number };
}

export interface DanEvent {
  kind: 'task' | 'agent';
  id: string;
  domain: string;
  status: string;
  ts: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'dan.apiToken';
export const token = {
  get: (): string | null => localStorage.getItem(TOKEN_KEY),
  set: (value: string): void => localStorage.setItem(TOKEN_KEY, value),
  clear: (): void => localStorage.removeItem(TOKEN_KEY),
};

const authHeaders = (): Record<string, string> => {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
};

/** Listeners told when the server answers 401 (the page then asks for the token). */
export const unauthorizedListeners = new Set<() => void>();

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  if (!response.ok) {
    if (response.status === 401) for (const listener of unauthorizedListeners) listener();
    throw new ApiError(response.status, json?.error?.code ?? 'DAN_HTTP', json?.error?.message ?? `HTTP ${response.status}`);
  }
  return json as T;
}

/**
 * Follows a server-sent-event stream over fetch (EventSource cannot send the Authorization header), reconnecting
 * with Last-Event-ID after a drop so nothing is missed. `onEvent` gets each event; returns a stop function.
 * The stream ends for good when the server closes it after an `end` event.
 */
export function follow(path: string, onEvent: (event: string, data: unknown) => void, onState?: (live: boolean) => void): () => void {
  const controller = new AbortController();
  let lastId: string | undefined;
  let ended = false;
  const run = async (): Promise<void> => {
    for (let attempt = 0; !controller.signal.aborted && !ended; attempt++) {
      try {
        const response = await fetch(path, {
          headers: { accept: 'text/event-stream', ...authHeaders(), ...(lastId ? { 'last-event-id': lastId } : {}) },
          signal: controller.signal,
        });
        if (response.status === 401) {
          for (const listener of unauthorizedListeners) listener();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState?.(true);
        attempt = 0;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        let current: { id?: string; event?: string; data?: string } = {};
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let newline: number;
          while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline).replace(/\r$/, '');
            buffer = buffer.slice(newline + 1);
            if (line === '') {
              if (current.id) lastId = current.id;
              if (current.data !== undefined) {
                if (current.event === 'end') ended = true;
                onEvent(current.event ?? 'message', JSON.parse(current.data));
              }
              current = {};
            } else if (!line.startsWith(':')) {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'data') current.data = current.data === undefined ? text : `${current.data}\n${text}`;
              else if (field === 'id') current.id = text;
              else if (field === 'event') current.event = text;
            }
          }
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      onState?.(false);
      if (!ended) await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5000)));
    }
  };
  void run();
  return () => controller.abort();
}
