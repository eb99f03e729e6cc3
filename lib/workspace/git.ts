import { execFile } from 'node:child_process';
import { GitError } from '../errors.js';

/**
 * Settings given on every git call, above anything in the repository's own config. The workspace's `.git` is
 * writable by the model's tools, so nothing in it may make dan's own git calls (made with the agent's
 * credentials in its environment) run a program: no hooks, no fsmonitor, no external diff or textconv, no
 * pager, no signing. Ownership is not checked: the workspace is shared by uids on purpose (root orchestrator,
 * uid 1000 agents), and git's "dubious ownership" refusal would stop every agent.
 */
const GUARDS: ReadonlyArray<[string, string]> = [
  ['safe.directory', '*'],
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['core.pager', 'cat'],
  ['commit.gpgSign', 'false'],
  ['tag.gpgSign', 'false'],
  ['diff.external', ''],
  ['merge.renames', 'true'],
  ['core.quotePath', 'false'],
  ['gc.auto', '0'],
  ['maintenance.auto', 'false'],
  ['init.defaultBranch', 'main'],
];

export interface GitOptions {
  /** The git binary (`DAN_GIT_BIN`). @default git */
  bin?: string;
  /** PATH and HOME for git; nothing else of the caller's environment reaches it. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface GitRunOptions {
  /** Exit codes that are answers, not failures (`merge-tree` says 1 for a conflict). @default [0] */
  ok?: readonly number[];
  input?: string;
  /** Author and committer for a commit. */
  identity?: { name: string; email: string };
  /** Let git take optional locks (`status` then writes the index it refreshed). @default false */
  optionalLocks?: boolean;
}

export interface GitOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs git for dan: one place for the binary, the environment (no user or system config: the same behaviour
 * on every machine, C locale so messages can be read) and the guards above. Failures become GitError.
 */
export class Git {
  private readonly bin: string;
  private readonly env: Record<string, string>;

  constructor(options: GitOptions = {}) {
    this.bin = options.bin ?? 'git';
    const env: Record<string, string> = {
      LC_ALL: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_OPTIONAL_LOCKS: '0',
      GIT_CONFIG_COUNT: String(GUARDS.length),
    };
    GUARDS.forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
    });
    for (const name of ['PATH', 'HOME']) {
      const value = options.env?.[name];
      if (value !== undefined) env[name] = value;
    }
    this.env = env;
  }

  /** Runs `git <args>` in `cwd`. */
  async run(cwd: string, args: readonly string[], options: GitRunOptions = {}): Promise<GitOutput> {
    const env = { ...this.env };
    if (options.optionalLocks) delete env.GIT_OPTIONAL_LOCKS;
    if (options.identity) {
      env.GIT_AUTHOR_NAME = env.GIT_COMMITTER_NAME = options.identity.name;
      env.GIT_AUTHOR_EMAIL = env.GIT_COMMITTER_EMAIL = options.identity.email;
    }
    // Node's own execFile, not execa: an agent runs about ten git commands per task, and execa's extra work per
    // child nearly doubled the CPU each spawn costs the agent (bench: git throughput).
    const result = await new Promise<{ stdout: string; stderr: string; exitCode: number | undefined; error?: Error }>((resolve) => {
      const child = execFile(this.bin, args, { cwd, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = (error as (Error & { code?: unknown }) | null)?.code;
        resolve({ stdout, stderr, exitCode: error ? (typeof code === 'number' ? code : undefined) : 0, error: error ?? undefined });
      });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(options.input ?? '');
    });
    const exitCode = result.exitCode;
    if (result.error && (exitCode === undefined || !(options.ok ?? [0]).includes(exitCode))) {
      throw new GitError(args, exitCode, result.stderr || result.error.message || 'no output', { cause: result.error });
    }
    return { stdout: result.stdout, stderr: result.stderr, exitCode: exitCode ?? -1 };
  }

  /** `run` with trimmed standard output. */
  async text(cwd: string, args: readonly string[], options: GitRunOptions = {}): Promise<string> {
    return (await this.run(cwd, args, options)).stdout.trim();
  }

  /** Whether `git <args>` exits 0 (for questions such as `merge-base --is-ancestor`). */
  async succeeds(cwd: string, args: readonly string[]): Promise<boolean> {
    return (await this.run(cwd, args, { ok: [0, 1, 128] })).exitCode === 0;
  }
}
