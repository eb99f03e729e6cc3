/** The last `capacity` lines written to it, from any number of streams; a stream's unfinished line is kept apart. */
export class LineBuffer {
  private readonly lines: string[] = [];
  private readonly partial = new Map<string, string>();

  constructor(private readonly capacity: number) {}

  /** Adds a chunk of `stream`'s output. */
  write(stream: string, chunk: string): void {
    const text = (this.partial.get(stream) ?? '') + chunk;
    const parts = text.split('\n');
    this.partial.set(stream, parts.pop() ?? '');
    for (const line of parts) this.push(line);
  }

  /** Ends `stream`: its unfinished line, if any, becomes a line. */
  end(stream: string): void {
    const rest = this.partial.get(stream);
    this.partial.delete(stream);
    if (rest) this.push(rest);
  }

  /** The last `count` lines, unfinished ones included, each ending with a newline. */
  tail(count: number): string {
    const pending = [...this.partial.values()].filter((line) => line !== '');
    const all = [...this.lines, ...pending];
    const chosen = count <= 0 ? [] : all.slice(-count);
    return chosen.map((line) => `${line}\n`).join('');
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }
}
