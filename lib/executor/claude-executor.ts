import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { silentLogger, type Logger } from '../log.js';
import type { LogEntryInput, Usage } from '../task.js';
import { EntryQueue, type EntryHandler } from './entry-queue.js';
import { LimitWatch, type LimitKind, type RunLimit } from './limits.js';
import { killProcessTree } from './process-tree.js';
import { Redactor } from './redactor.js';
import { RunAudit, type RunFindings } from './run-audit.js';
import type { ResultEvent } from './stream-events.js';
import { StreamParser } from './stream-parser.js';
import { clip, truncateDeep } from './truncate.js';

/** Permission modes of the CLI's `--permission-mode`. */
export type PermissionMode = 'default' | 'acceptEdits' | 'bypassPermissions' | 'plan' | 'dontAsk';

export interface RunClaudeOptions {
  /** The CLI to run (`DAN_CLAUDE_BIN`). */
  claudeBin: string;
  prompt: string;
  /** The workspace: the CLI's working directory. */
  cwd: string;
  /**
   * Exactly the CLI's environment (build it with `buildClaudeEnv`); nothing of this process's own
   * environment is added. Its secret values are redacted from every entry.
   */
  env: Readonly<Record<string, string>>;
  /** `--model`. @default the CLI's default */
  model?: string;
  /** `--effort`. @default the CLI's default */
  effort?: string;
  /** `--fallback-model`: the model the CLI switches to when this one is overloaded. @default none */
  fallbackModel?: string;
  /** `--max-budget-usd`: the CLI stops the run once it has spent this much (status failed, reason `budget`). */
  maxBudgetUsd?: number;
  /** `--permission-mode`. @default the CLI's default (the config dir's settings.json decides) */
  permissionMode?: PermissionMode;
  /** `--allowedTools`. @default none */
  allowedTools?: readonly string[];
  /** `--resume <session id>`: continue that conversation (the session must be in the config dir). @default a new session */
  resume?: string;
  /** `--mcp-config <json>` with `--strict-mcp-config`: exactly these MCP servers, nothing else. @default none */
  mcpConfig?: string;
  /** `--disallowedTools`. @default none */
  disallowedTools?: readonly string[];
  /** `--json-schema`: the run must end with structured output matching it (the result text is that JSON). @default none */
  jsonSchema?: Record<string, unknown>;
  /** Kills the CLI's process group after this long: status `timed_out`. @default no limit */
  timeoutMs?: number;
  /** Aborting kills the CLI's process group: status `cancelled`, with `signal.reason` when it is a string. */
  signal?: AbortSignal;
  /** Receives every entry in order; awaited one at a time without holding up the reading of stdout. */
  onEntry?: EntryHandler;
  /** @default a silent logger */
  logger?: Logger;
  /**
   * Run the CLI as this uid and gid (`DAN_CLI_USER`), through `setpriv` with every capability dropped, so that
   * it cannot read this process's memory, environment or files (docs/SECURITY.md, *The CLI's own uid*). Needs
   * CAP_SETUID and CAP_SETGID here (the agent image's entrypoint gives them to the agent); without them the run
   * fails rather than run the CLI as this process's uid. @default this process's own uid
   */
  runAs?: { uid: number; gid: number };
}

/**
 * The command that starts the CLI: the CLI itself, or, with `runAs`, `setpriv` switching to that uid and gid
 * with no supplementary groups, no inheritable or ambient capabilities (so the CLI's exec leaves it none) and
 * no new privileges, then exec'ing the CLI in place (same pid: the process-group kill still reaches it).
 */
export function cliCommand(claudeBin: string, args: readonly string[], runAs?: { uid: number; gid: number }): [string, string[]] {
  if (!runAs) return [claudeBin, [...args]];
  return [
    'setpriv',
    [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--no-new-privs', '--', claudeBin, ...args],
  ];
}

/**
 * Opens to the agent's group what the CLI, running as `runAs`, made under `dir` (its session transcripts are
 * mode 0600 whatever the umask): a `chmod g+rwX` of every file of that uid, run as that uid, since the agent may
 * not change another uid's files. Rejects when it cannot.
 */
export async function openToAgentGroup(dir: string, runAs: { uid: number; gid: number }, searchPath: string | undefined): Promise<void> {
  const [file, args] = cliCommand('find', [dir, '-user', String(runAs.uid), '-exec', 'chmod', 'g+rwX', '{}', '+'], runAs);
  await execa(file, args, { stdin: 'ignore', env: { PATH: searchPath ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
}

export type ExecutorStatus = 'completed' | 'failed' | 'timed_out' | 'cancelled';

/** A tool call the CLI refused for lack of permission (it explains a run that "did nothing"). */
export interface PermissionDenial {
  tool: string;
  toolUseId?: string;
  input?: unknown;
}

export interface ExecutorResult {
  status: ExecutorStatus;
  /** The final text of the run (the `result` event's `result`), '' when there was none. */
  result: string;
  /** Why the run did not complete. */
  error?: string;
  /**
   * A short machine-readable cause when one is known: `budget` (the run spent its --max-budget-usd), or the
   * limit it ended on (lib/executor/limits.ts): `usage_limit`, `rate_limit`, `overloaded`, `unauthorized`.
   */
  reason?: 'budget' | LimitKind;
  /** The account or service limit the run ended on, with its reset time when the CLI gave one. */
  limit?: RunLimit;
  /** The model the run used, as the CLI's init event named it. */
  model?: string;
  costUsd: number;
  turns: number;
  usage: Usage;
  sessionId?: string;
  permissionDenials: PermissionDenial[];
  /**
   * What the status alone hides, in the whole session (subagents included): `no changes`, `2 refused writes`,
   * `1 refused tool call`, `3 tool errors`. Empty for a clean run. A `completed` run with warnings did not
   * necessarily do what it was asked: the record and `dan status` show them.
   */
  warnings: string[];
  findings: RunFindings;
  exitCode?: number;
  durationMs: number;
}

/** Above this size the prompt goes on stdin: one argument may not exceed 128 KiB on Linux (E2BIG). */
const MAX_PROMPT_ARG_BYTES = 100_000;
const STDERR_TAIL = 20;

/** The CLI's arguments. The prompt comes last, after `--`, so a prompt starting with `-` is not an option. */
export function buildClaudeArgs(options: Omit<RunClaudeOptions, 'claudeBin' | 'cwd' | 'env'>): string[] {
  const args = ['-p', '--output-format', 'stream-json', '--verbose'];
  if (options.resume) args.push('--resume', options.resume);
  if (options.model) args.push('--model', options.model);
  if (options.effort) args.push('--effort', options.effort);
  if (options.fallbackModel) args.push('--fallback-model', options.fallbackModel);
  if (options.maxBudgetUsd !== undefined) args.push('--max-budget-usd', String(options.maxBudgetUsd));
  if (options.permissionMode) args.push('--permission-mode', options.permissionMode);
  if (options.mcpConfig) args.push('--mcp-config', options.mcpConfig, '--strict-mcp-config');
  if (options.allowedTools?.length) args.push('--allowedTools', ...options.allowedTools);
  if (options.disallowedTools?.length) args.push('--disallowedTools', ...options.disallowedTools);
  if (options.jsonSchema) args.push('--json-schema', JSON.stringify(options.jsonSchema));
  if (Buffer.byteLength(options.prompt, 'utf8') <= MAX_PROMPT_ARG_BYTES) args.push('--', options.prompt);
  return args;
}

/**
 * Runs `claude -p` headless in the workspace, streaming each stdout line as log entries, and returns the
 * outcome from the final `result` event. Never throws for a failure of the CLI: a missing binary, an API
 * error, a crash, a timeout or a cancel all come back as a status with an error message.
 */
export async function runClaude(options: RunClaudeOptions): Promise<ExecutorResult> {
  const started = Date.now();
  const log = (options.logger ?? silentLogger()).child({ component: 'executor' });
  const redactor = Redactor.fromEnv(options.env);
  const queue = new EntryQueue(options.onEntry, log);
  const emit = (entry: LogEntryInput): void => queue.push(redactor.entry({ ...entry, ts: entry.ts ?? Date.now() }));
  const audit = new RunAudit();
  const done = async (partial: Partial<ExecutorResult> & Pick<ExecutorResult, 'status'>): Promise<ExecutorResult> => {
    const warnings = audit.warnings();
    if (warnings.length > 0) emit(warningEntry(audit.findings, warnings));
    await queue.drained();
    const result: ExecutorResult = {
      result: '',
      costUsd: 0,
      turns: 0,
      usage: {},
      permissionDenials: [],
      warnings,
      findings: audit.findings,
      ...partial,
      durationMs: Date.now() - started,
    };
    if (result.error) result.error = redactor.text(result.error);
    result.result = redactor.text(result.result);
    result.permissionDenials = redactor.value(result.permissionDenials) as PermissionDenial[];
    if (warnings.length > 0) log.warn({ warnings, findings: audit.findings }, `claude's run has warnings: ${warnings.join(', ')}`);
    if (result.permissionDenials.length > 0) {
      log.warn({ tools: result.permissionDenials.map((d) => d.tool) }, 'claude was denied permission for some tool calls');
    }
    log.info(
      { status: result.status, exitCode: result.exitCode, turns: result.turns, costUsd: result.costUsd, durationMs: result.durationMs, sessionId: result.sessionId },
      result.error ? `claude ${result.status}: ${clip(result.error, 300)}` : `claude ${result.status}`,
    );
    return result;
  };

  if (options.signal?.aborted) return done({ status: 'cancelled', error: abortReason(options.signal) });
  if (!(await stat(options.cwd).then((s) => s.isDirectory(), () => false))) {
    return done({ status: 'failed', error: `workspace ${options.cwd} does not exist or is not a folder` });
  }

  const args = buildClaudeArgs(options);
  const viaStdin = args.at(-2) !== '--';
  log.info(
    { bin: options.claudeBin, cwd: options.cwd, model: options.model, permissionMode: options.permissionMode, allowedTools: options.allowedTools, promptBytes: Buffer.byteLength(options.prompt), promptOnStdin: viaStdin },
    'starting claude',
  );
  // Detached: the CLI leads a process group of its own, which a timeout or cancel kills (with the tool
  // processes it started in sessions of their own: see killProcessTree) without touching this process.
  const [file, argv] = cliCommand(options.claudeBin, args, options.runAs);
  const child = execa(file, argv, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    detached: true,
    buffer: false,
    reject: false,
    // Without stdin closed, `claude -p` waits 3 s for piped input before it starts.
    ...(viaStdin ? { input: options.prompt } : { stdin: 'ignore' as const }),
  });

  let stopped: { status: 'timed_out' | 'cancelled'; error: string } | undefined;
  let killing: Promise<void> | undefined;
  const stop = (status: 'timed_out' | 'cancelled', error: string): void => {
    if (stopped || child.pid === undefined) return;
    stopped = { status, error };
    log.warn({ pid: child.pid, reason: error }, `stopping claude: ${status}`);
    killing = killProcessTree(child.pid).catch((err: unknown) => {
      log.warn({ err, pid: child.pid }, 'could not kill the claude process tree');
      killGroup(child, log);
    });
  };
  const timer =
    options.timeoutMs !== undefined
      ? setTimeout(() => stop('timed_out', `claude timed out after ${options.timeoutMs} ms`), options.timeoutMs)
      : undefined;
  const onAbort = (): void => stop('cancelled', abortReason(options.signal!));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // An abort while the workspace was being checked fired no event we could hear.
  if (options.signal?.aborted) onAbort();
  // A detached child outlives this process unless told otherwise.
  const onExit = (): void => killGroup(child, log);
  process.on('exit', onExit);

  const parser = new StreamParser();
  let resultEvent: ResultEvent | undefined;
  let model: string | undefined;
  const limits = new LimitWatch();
  const stderrTail: string[] = [];
  const readStdout = (async () => {
    for await (const line of createInterface({ input: child.stdout!, crlfDelay: Infinity })) {
      const parsed = parser.parse(line);
      if (parsed.event?.kind === 'result') resultEvent = parsed.event.event;
      if (parsed.event?.kind === 'init' && parsed.event.event.model) model ??= parsed.event.event.model;
      if (parsed.event?.kind === 'result' || line.includes('"rate_limit_event"')) {
        try {
          limits.see(JSON.parse(line));
        } catch {
          // not JSON: the parser has logged it raw
        }
      }
      if (parsed.event) audit.see(parsed.event);
      for (const entry of parsed.entries) emit(entry);
    }
  })();
  const readStderr = (async () => {
    for await (const line of createInterface({ input: child.stderr!, crlfDelay: Infinity })) {
      if (line.trim().length === 0) continue;
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
      emit({ type: 'stderr', text: clip(line, 2000) });
    }
  })();

  try {
    const [outcome] = await Promise.all([child, readStdout, readStderr]);
    await killing;
    // Whatever is still in the CLI's own process group (a hook or helper it did not stop) goes with it.
    killGroup(child, log);
    const fromResult = { ...(resultEvent ? summary(resultEvent) : {}), ...(model ? { model } : {}) };
    if (stopped) return await done({ ...fromResult, ...stopped, exitCode: outcome.exitCode });
    const code = (outcome as { code?: string }).code;
    if (outcome.exitCode === undefined && outcome.signal === undefined && code) {
      return await done({ status: 'failed', error: spawnError(code, options.claudeBin, outcome.shortMessage ?? code) });
    }
    const stderr = stderrTail.slice(-5).join('\n');
    if (resultEvent && !resultEvent.is_error && outcome.exitCode === 0) {
      return await done({ ...fromResult, status: 'completed', exitCode: 0 });
    }
    if (resultEvent?.subtype === 'error_max_budget_usd') {
      const spent = (resultEvent.total_cost_usd ?? 0).toFixed(4);
      const error = `the run's budget of $${options.maxBudgetUsd ?? '?'} is spent: it cost $${spent} and was stopped`;
      return await done({ ...fromResult, status: 'failed', reason: 'budget', error, exitCode: outcome.exitCode });
    }
    const limit = limits.limit();
    if (limit) {
      const when = limit.resetsAt ? ` (resets ${new Date(limit.resetsAt).toISOString()})` : '';
      const what = limit.kind === 'unauthorized' ? 'the API rejected the credential (401)' : limit.kind.replace('_', ' ');
      return await done({ ...fromResult, status: 'failed', reason: limit.kind, limit, error: `${what}${when}: ${limit.message}`, exitCode: outcome.exitCode });
    }
    let error: string;
    if (resultEvent?.is_error) error = errorOf(resultEvent);
    else if (outcome.signal) error = `claude was killed by ${outcome.signal}${stderr ? `: ${stderr}` : ''}`;
    else if (!resultEvent) error = `claude exited with code ${outcome.exitCode} without a result${stderr ? `: ${stderr}` : ''}`;
    else error = `claude exited with code ${outcome.exitCode}${stderr ? `: ${stderr}` : ''}`;
    return await done({ ...fromResult, status: 'failed', error, exitCode: outcome.exitCode });
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
  }
}

/** The log's `warning` entry: what the run's status hides, and where to look. */
function warningEntry(findings: RunFindings, warnings: string[]): LogEntryInput {
  const refused = Object.entries(findings.refused).map(([tool, n]) => `${tool} ×${n}`);
  const why =
    refused.length > 0
      ? `: refused ${refused.join(', ')} (the domain's .claude/settings.json does not allow them; \`dan domain new\` writes one that does)`
      : '';
  return { type: 'warning', text: `${warnings.join(', ')}${why}`, data: { warnings, ...findings } };
}

/** SIGKILL to the CLI's process group, synchronously (it also runs from the `exit` handler). */
function killGroup(child: ResultPromise, log: Logger): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') log.warn({ err: error, pid: child.pid }, 'could not kill the claude process group');
  }
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (typeof reason === 'string' && reason.length > 0) return reason;
  if (reason instanceof Error && reason.name !== 'AbortError' && reason.message) return reason.message;
  return 'cancelled';
}

function spawnError(code: string, bin: string, message: string): string {
  if (code === 'ENOENT') return `claude binary not found at ${bin}: set DAN_CLAUDE_BIN`;
  if (code === 'EACCES') return `claude binary at ${bin} is not executable: check its permissions or set DAN_CLAUDE_BIN`;
  return `could not start claude (${bin}): ${message}`;
}

function errorOf(e: ResultEvent): string {
  if (e.result) return e.result;
  if (e.errors && e.errors.length > 0) return e.errors.join('; ');
  return `claude failed (${e.subtype})`;
}

const USAGE_FIELDS = ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;

function summary(e: ResultEvent): Partial<ExecutorResult> {
  const usage: Usage = {};
  for (const field of USAGE_FIELDS) {
    const value = e.usage?.[field];
    if (typeof value === 'number') usage[field] = value;
  }
  const out: Partial<ExecutorResult> = {
    result: e.result ?? '',
    costUsd: e.total_cost_usd ?? 0,
    turns: e.num_turns ?? 0,
    usage,
    permissionDenials: (e.permission_denials ?? []).map((d) => ({
      tool: d.tool_name,
      ...(d.tool_use_id ? { toolUseId: d.tool_use_id } : {}),
      ...(d.tool_input !== undefined ? { input: truncateDeep(d.tool_input, { maxString: 500 }) } : {}),
    })),
  };
  if (e.session_id) out.sessionId = e.session_id;
  return out;
}
