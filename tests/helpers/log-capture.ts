import { Writable } from 'node:stream';

/** Log lines of an in-process component (a pino logger's destination), kept for assertions and failure messages. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    done();
  }

  /** The `msg` of each line. */
  messages(): string[] {
    return this.lines.map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');
  }
}
