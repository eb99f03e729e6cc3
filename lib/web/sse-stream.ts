import type { FastifyReply } from 'fastify';

export interface SseOptions {
  /** A comment line this often keeps proxies from closing an idle stream. @default 15000 */
  keepAliveMs?: number;
}

/**
 * One server-sent-events answer (https://html.spec.whatwg.org/multipage/server-sent-events.html): the reply is
 * taken over from Fastify, each event written as `id:` / `event:` / `data:` lines. `closed` resolves when the
 * client goes away or `close()` is called; writing after that does nothing.
 */
export class SseStream {
  readonly closed: Promise<void>;
  private open = true;
  private readonly keepAlive: NodeJS.Timeout;

  private constructor(
    private readonly reply: FastifyReply,
    options: SseOptions,
  ) {
    let resolve!: () => void;
    this.closed = new Promise((r) => (resolve = r));
    const end = (): void => {
      if (!this.open) return;
      this.open = false;
      clearInterval(this.keepAlive);
      resolve();
    };
    reply.raw.once('close', end);
    this.end = end;
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
  }

  private readonly end: () => void;

  /** Takes over the reply and sends the SSE headers. */
  static open(reply: FastifyReply, options: SseOptions = {}): SseStream {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.flushHeaders();
    return new SseStream(reply, options);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Sends one event; `data` is JSON on one line. */
  send(event: string, data: unknown, id?: string): void {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): void {
    if (!this.open) return;
    this.end();
    this.reply.raw.end();
  }

  private write(text: string): void {
    if (this.open) this.reply.raw.write(text);
  }
}
