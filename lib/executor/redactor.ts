import { REDACTED_ENV } from '../config.js';
import type { LogEntryInput } from '../task.js';

/** Names of environment variables whose values are secrets. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|AUTH/i;
/** Shorter values are not searched for: they would match ordinary text. */
const MIN_SECRET_LENGTH = 6;
const CENSOR = '[redacted]';

/**
 * Removes secret values from what the CLI printed. The CLI never prints its API key on its own, but a tool
 * can (`printenv` in Bash), and the log stream must not carry it.
 */
export class Redactor {
  private constructor(private readonly secrets: readonly string[]) {}

  /** A redactor for the secret-looking values of an environment (API keys, tokens, passwords in proxy URLs). */
  static fromEnv(env: Readonly<Record<string, string | undefined>>): Redactor {
    const secrets = new Set<string>();
    for (const [name, value] of Object.entries(env)) {
      if (!value) continue;
      if (REDACTED_ENV.includes(name) || SECRET_NAME.test(name)) {
        // A pool of tokens (CLAUDE_CODE_OAUTH_TOKEN=a,b) is redacted whole and token by token.
        for (const secret of [value, ...value.split(',')]) if (secret.length >= MIN_SECRET_LENGTH) secrets.add(secret);
      }
      const password = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]+)@/i.exec(value)?.[1];
      if (password && password.length >= MIN_SECRET_LENGTH) secrets.add(password);
    }
    // Longest first, so a secret containing another is replaced whole.
    return new Redactor([...secrets].sort((a, b) => b.length - a.length));
  }

  /** The text with every secret replaced by `[redacted]`. */
  text(value: string): string {
    let out = value;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(CENSOR);
    return out;
  }

  /** A deep copy of a JSON-like value with every string redacted. */
  value(value: unknown): unknown {
    if (this.secrets.length === 0) return value;
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((v) => this.value(v));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.text(k), this.value(v)]));
    }
    return value;
  }

  /** The entry with its text and data redacted. */
  entry(entry: LogEntryInput): LogEntryInput {
    if (this.secrets.length === 0) return entry;
    const out: LogEntryInput = { ...entry, text: this.text(entry.text) };
    if (entry.data) out.data = this.value(entry.data) as Record<string, unknown>;
    return out;
  }
}
