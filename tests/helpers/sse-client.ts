/** One server-sent event as a client sees it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A minimal SSE client over fetch (Node's EventSource is not in Node 20): it parses the stream as the spec says
 * (`id:`, `event:`, `data:` lines, a blank line ends an event, `:` lines are comments) and keeps every event.
 * `next(match)` waits for the first event not yet taken that matches; `close()` aborts the request.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly status: number;
  private readonly controller: AbortController;
  private readonly waiters = new Set<() => void>();
  private taken = 0;
  private ended = false;
  readonly done: Promise<void>;

  private constructor(response: Response, controller: AbortController) {
    this.status = response.status;
    this.controller = controller;
    this.done = this.read(response).finally(() => {
      this.ended = true;
      for (const wake of this.waiters) wake();
    });
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    return new SseClient(response, controller);
  }

  private async read(response: Response): Promise<void> {
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    let current: Partial<SseEvent> = {};
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, '');
          buffer = buffer.slice(newline + 1);
          if (line === '') {
            if (current.data !== undefined) this.events.push({ event: current.event ?? 'message', data: current.data, id: current.id });
            current = {};
            for (const wake of this.waiters) wake();
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') current.data = current.data === undefined ? value : `${current.data}\n${value}`;
            else if (field === 'id') current.id = value;
            else if (field === 'event') current.event = value;
          }
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
  }

  /** The next event (after those already taken) that matches, within `timeoutMs`. */
  async next(match: (e: SseEvent) => boolean = () => true, timeoutMs = 30_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.taken < this.events.length) {
        const e = this.events[this.taken++]!;
        if (match(e)) return e;
      }
      if (this.ended) throw new Error(`the stream ended; events: ${JSON.stringify(this.events.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for an event; last: ${JSON.stringify(this.events.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        const waiters = this.waiters;
        waiters.add(done);
      });
    }
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.done.catch(() => {});
  }
}
