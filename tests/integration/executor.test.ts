import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildClaudeArgs,
  buildClaudeEnv,
  prepareConfigDir,
  runClaude,
  type ExecutorResult,
  type RunClaudeOptions,
} from '../../lib/executor/index.js';
import { createLogger } from '../../lib/log.js';
import type { LogEntryInput } from '../../lib/task.js';
import {
  conversationRequests,
  delegateScenario,
  echoScenario,
  isSubagentRequest,
  ModelServer,
  writeFileScenario,
  type Script,
} from '../fixtures/model-server.js';
import { eventually } from '../helpers/eventually.js';
import { processesIn } from '../helpers/processes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLAUDE_BIN = path.join(ROOT, 'node_modules', '.bin', 'claude');
const API_KEY = `sk-ant-test-${randomUUID()}`;
const DOMAIN_MARKER = `backend-instructions-${randomUUID()}`;
const WORKER_BODY = `You are the API worker (${randomUUID()}). Write the files the task names, nothing else.`;

let base: string;
let templateDir: string;

/** A domain template like agents/domain-templates/<domain>/, made here: the real templates are not ours to test. */
async function writeTemplate(dir: string): Promise<void> {
  await mkdir(path.join(dir, '.claude', 'agents'), { recursive: true });
  await writeFile(path.join(dir, 'CLAUDE.md'), `# Backend domain\n\nFollow ${DOMAIN_MARKER}.\n`);
  await writeFile(
    path.join(dir, '.claude', 'agents', 'api-worker.md'),
    `---\nname: api-worker\ndescription: Builds HTTP APIs for the backend\ntools: Write, Read\n---\n\n${WORKER_BODY}\n`,
  );
  await writeFile(
    path.join(dir, '.claude', 'settings.json'),
    JSON.stringify({ permissions: { allow: ['Write', 'Read', 'Edit', 'Bash'] } }, null, 2),
  );
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'dan-executor-'));
  templateDir = path.join(base, 'template');
  await writeTemplate(templateDir);
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

interface Run {
  server: ModelServer;
  workspace: string;
  configDir: string;
  options: RunClaudeOptions;
  entries: LogEntryInput[];
  logs: string[];
}

/**
 * A workspace and a config dir of its own, a model server (its own, unless one is given), and the options
 * for one real CLI run.
 */
async function prepare(script: Script | ModelServer, prompt: string, extra: Partial<RunClaudeOptions> = {}): Promise<Run> {
  const dir = await mkdtemp(path.join(base, 'run-'));
  const workspace = path.join(dir, 'workspace');
  await mkdir(workspace);
  const { dir: configDir } = await prepareConfigDir(templateDir, path.join(dir, 'config'));
  const server = script instanceof ModelServer ? script : await ModelServer.start({ script });
  const entries: LogEntryInput[] = [];
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  const env = buildClaudeEnv(
    { PATH: process.env.PATH, HOME: dir, ANTHROPIC_API_KEY: API_KEY, ANTHROPIC_BASE_URL: server.url, REDIS_URL: 'redis://secret@x' },
    configDir,
  );
  const options: RunClaudeOptions = {
    claudeBin: CLAUDE_BIN,
    prompt,
    cwd: workspace,
    env,
    onEntry: (e) => {
      entries.push(e);
    },
    logger: createLogger({ level: 'debug', destination }),
    ...extra,
  };
  return { server, workspace, configDir, options, entries, logs };
}

async function run(r: Run): Promise<ExecutorResult> {
  try {
    return await runClaude(r.options);
  } finally {
    await r.server.close();
  }
}

const types = (entries: LogEntryInput[]): string[] => entries.map((e) => e.type);

describe('runClaude with the real claude binary', () => {
  it('runs a Write tool call that creates the file, streaming init, assistant, tool_use, tool_result, result in order', async () => {
    const r = await prepare(writeFileScenario(), 'Create file hello.txt with a greeting');
    const result = await run(r);

    expect(result).toMatchObject({ status: 'completed', exitCode: 0, turns: 2, permissionDenials: [] });
    expect(result.result).toContain('Done: wrote hello.txt');
    expect(result.costUsd).toBeGreaterThan(0);
    expect(result.usage.input_tokens).toBeGreaterThan(0);
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await readFile(path.join(r.workspace, 'hello.txt'), 'utf8')).toContain('Create file hello.txt with a greeting');

    const kinds = types(r.entries).filter((t) => t !== 'system' && t !== 'stderr');
    expect(kinds).toEqual(['init', 'assistant', 'tool_use', 'tool_result', 'assistant', 'result']);
    expect(r.entries.find((e) => e.type === 'tool_use')!.text).toBe(`Write ${path.join(r.workspace, 'hello.txt')} (77 chars)`);
    expect(r.entries.every((e) => typeof e.ts === 'number')).toBe(true);
  });

  it('gives the model the domain’s CLAUDE.md and its workers', async () => {
    const r = await prepare(echoScenario(), 'Say hello');
    const prepared = await prepareConfigDir(templateDir, r.configDir);
    expect(prepared).toMatchObject({
      instructions: true,
      settings: true,
      workers: [{ name: 'api-worker', description: 'Builds HTTP APIs for the backend', tools: 'Write, Read' }],
      allow: ['Write', 'Read', 'Edit', 'Bash'],
    });
    const result = await run(r);

    expect(result).toMatchObject({ status: 'completed', result: 'Echo: Say hello' });
    const [turn] = conversationRequests(r.server.requests);
    expect(turn!.reminders).toContain(DOMAIN_MARKER);
    expect(turn!.systemMessages).toContain('- api-worker: Builds HTTP APIs for the backend');
    expect(r.entries.find((e) => e.type === 'init')!.data!.agents).toContain('api-worker');
  });

  it('delegates to the api-worker subagent, whose own turns reach the model with the worker body as system prompt', async () => {
    const r = await prepare(delegateScenario({ workerBody: WORKER_BODY }), 'Create file api.md describing the users API');
    const result = await run(r);

    expect(result.status).toBe('completed');
    expect(result.result).toContain('Delegated to api-worker: Done: wrote api.md');
    const turns = conversationRequests(r.server.requests);
    const subagentTurns = turns.filter((t) => isSubagentRequest(t, WORKER_BODY));
    expect(subagentTurns.length).toBe(2);
    expect(subagentTurns.every((t) => t.subagent)).toBe(true);
    expect(turns.filter((t) => !isSubagentRequest(t, WORKER_BODY)).length).toBe(2);
    expect(await readFile(path.join(r.workspace, 'api.md'), 'utf8')).toContain('describing the users API');

    const agentCall = r.entries.find((e) => e.type === 'tool_use' && e.data?.tool === 'Agent')!;
    expect(agentCall.data!.input).toMatchObject({ subagent_type: 'api-worker' });
    const write = r.entries.find((e) => e.type === 'tool_use' && e.data?.tool === 'Write')!;
    expect(write.data!.parent_tool_use_id).toBe(agentCall.data!.tool_use_id);
  });

  it('fails at once with the API’s message on an HTTP 400', async () => {
    const r = await prepare([{ status: 400, message: 'scripted bad request' }], 'Anything');
    const result = await run(r);

    expect(result).toMatchObject({ status: 'failed', error: 'API Error: 400 scripted bad request', exitCode: 1 });
    expect(types(r.entries).at(-1)).toBe('result');
  }, 30_000);

  it('times out: kills the CLI and leaves no process behind', async () => {
    // Long enough for the CLI to reach the hanging model even on a loaded two-core machine.
    const r = await prepare([{ hang: true }], 'Wait forever', { timeoutMs: 10_000 });
    const result = await run(r);

    expect(result.status).toBe('timed_out');
    expect(result.error).toBe('claude timed out after 10000 ms');
    expect(conversationRequests(r.server.requests).length).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await processesIn(r.workspace)).length === 0, { what: 'no process left in the workspace', timeoutMs: 10_000 });
  }, 60_000);

  it('is cancelled by its AbortSignal, killing the tool processes the CLI started', async () => {
    const marker = `dan-sleep-${randomUUID()}`;
    const controller = new AbortController();
    const r = await prepare(
      (req) =>
        req.hasToolResult
          ? { text: 'slept' }
          : { tools: [{ name: 'Bash', input: { command: `sleep 300 # ${marker}`, description: 'wait' } }] },
      'Sleep for a while',
      { signal: controller.signal },
    );
    const running = runClaude(r.options);
    // The Bash tool runs its command in a session of its own: it must go too.
    await eventually(async () => (await processesIn('/nonexistent', { marker })).length > 0, { what: 'the marked process to start', timeoutMs: 20_000 });
    controller.abort('cancelled by the user');
    const result = await running;
    await r.server.close();

    expect(result).toMatchObject({ status: 'cancelled', error: 'cancelled by the user' });
    await eventually(async () => (await processesIn(r.workspace, { marker })).length === 0, { what: 'no process left', timeoutMs: 10_000 });
  });

  it('never lets the API key reach an entry, the result or a log line', async () => {
    const r = await prepare(
      (req) =>
        req.hasToolResult
          ? { text: `The tool said: ${req.toolResults[0]!.text}` }
          : { tools: [{ name: 'Bash', input: { command: 'printenv ANTHROPIC_API_KEY', description: 'show the key' } }] },
      'Print the key',
    );
    const result = await run(r);

    expect(result.status).toBe('completed');
    // The key did go through the CLI: the tool printed it and the model saw it.
    expect(conversationRequests(r.server.requests).some((q) => q.toolResults.some((t) => t.text.includes(API_KEY)))).toBe(true);
    const everything = JSON.stringify({ entries: r.entries, result, logs: r.logs });
    expect(everything).not.toContain(API_KEY);
    expect(result.result).toBe('The tool said: [redacted]');
    expect(r.entries.find((e) => e.type === 'tool_result')!.text).toBe('[redacted]');
    expect(r.logs.join('')).not.toContain('redis://secret');
  });

  it('sends a prompt too long for the command line on stdin', async () => {
    const r = await prepare(echoScenario(), `Large prompt first line\n${'y'.repeat(150_000)}`);
    const result = await run(r);

    expect(result).toMatchObject({ status: 'completed', result: 'Echo: Large prompt first line' });
  });

  it('is cancelled without starting when the signal is already aborted', async () => {
    const r = await prepare(echoScenario(), 'Never sent', { signal: AbortSignal.abort('too late') });
    const result = await run(r);

    expect(result).toMatchObject({ status: 'cancelled', error: 'too late' });
    expect(conversationRequests(r.server.requests)).toEqual([]);
  });
});

describe('runClaude with other binaries', () => {
  async function fakeBinary(script: string): Promise<string> {
    const file = path.join(await mkdtemp(path.join(base, 'bin-')), 'claude');
    await writeFile(file, `#!/bin/sh\n${script}\n`);
    await chmod(file, 0o755);
    return file;
  }

  it('survives garbage lines, yields them as raw entries, and takes the outcome from the result line', async () => {
    const bin = await fakeBinary(
      [
        'echo "$@" > "$PWD/args.txt"',
        'env > "$PWD/env.txt"',
        'echo "this is not json"',
        `echo '{"type":"mystery_event","x":1}'`,
        'echo "some warning" >&2',
        `echo '{"type":"result","subtype":"success","is_error":false,"result":"fake done","num_turns":3,"total_cost_usd":0.5,"usage":{"input_tokens":7,"output_tokens":9,"server_tool_use":{}},"session_id":"s-1"}'`,
      ].join('\n'),
    );
    const r = await prepare([], 'Do -- the thing', {
      claudeBin: bin,
      model: 'claude-test-model',
      permissionMode: 'acceptEdits',
      allowedTools: ['Write', 'Read'],
      disallowedTools: ['Bash'],
    });
    const result = await run(r);

    expect(result).toMatchObject({
      status: 'completed',
      result: 'fake done',
      turns: 3,
      costUsd: 0.5,
      usage: { input_tokens: 7, output_tokens: 9 },
      sessionId: 's-1',
      exitCode: 0,
    });
    // stdout and stderr are two pipes: their lines keep their own order, not each other's.
    const stdout = r.entries.filter((e) => e.type !== 'stderr');
    expect(types(stdout)).toEqual(['raw', 'raw', 'result']);
    expect(stdout[0]).toMatchObject({ type: 'raw', text: 'this is not json' });
    expect(r.entries.filter((e) => e.type === 'stderr')).toEqual([expect.objectContaining({ text: 'some warning' })]);
    expect((await readFile(path.join(r.workspace, 'args.txt'), 'utf8')).trim()).toBe(
      '-p --output-format stream-json --verbose --model claude-test-model --permission-mode acceptEdits ' +
        '--allowedTools Write Read --disallowedTools Bash -- Do -- the thing',
    );
    const envNames = (await readFile(path.join(r.workspace, 'env.txt'), 'utf8'))
      .split('\n')
      .map((l) => l.split('=')[0])
      .filter((n) => n && !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n))
      .sort();
    expect(envNames).toEqual(
      ['ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC', 'CLAUDE_CONFIG_DIR', 'HOME', 'MCP_CONNECTION_NONBLOCKING', 'PATH'].sort(),
    );
  });

  it('fails with the last stderr lines when the CLI exits without a result', async () => {
    const bin = await fakeBinary('echo "boom: cannot read config" >&2\nexit 3');
    const r = await prepare([], 'x', { claudeBin: bin });
    const result = await run(r);

    expect(result).toMatchObject({
      status: 'failed',
      exitCode: 3,
      error: 'claude exited with code 3 without a result: boom: cannot read config',
    });
  });

  it('fails with a clear message when the binary is missing', async () => {
    const missing = path.join(base, 'no-such-dir', 'claude');
    const r = await prepare([], 'x', { claudeBin: missing });
    const result = await run(r);

    expect(result).toMatchObject({ status: 'failed', error: `claude binary not found at ${missing}: set DAN_CLAUDE_BIN` });
  });

  it('fails when the workspace does not exist', async () => {
    const r = await prepare([], 'x');
    const result = await run({ ...r, options: { ...r.options, cwd: path.join(base, 'nowhere') } });

    expect(result.status).toBe('failed');
    expect(result.error).toContain('does not exist');
  });
});

describe('the CLI’s configuration', () => {
  it('passes --model, --effort and --fallback-model to the CLI, and says which model ran', async () => {
    const r = await prepare(echoScenario(), 'Say hello', { model: 'scripted-model-x', effort: 'high', fallbackModel: 'scripted-model-y' });
    const result = await run(r);
    expect(result).toMatchObject({ status: 'completed', model: 'scripted-model-x' });
    const models = conversationRequests(r.server.requests).map((q) => q.model);
    expect(models.length).toBeGreaterThan(0);
    expect(models.every((m) => m === 'scripted-model-x')).toBe(true);
  });

  it('stops a run that spends its --max-budget-usd: failed, reason budget, with the cost so far', async () => {
    const r = await prepare(writeFileScenario(), 'Create file budget.txt with a greeting', { maxBudgetUsd: 0.000001 });
    const result = await run(r);
    expect(result).toMatchObject({ status: 'failed', reason: 'budget' });
    expect(result.costUsd).toBeGreaterThan(0.000001);
    expect(result.error).toMatch(/^the run's budget of \$0\.000001 is spent: it cost \$[0-9.]+ and was stopped$/);
    // It was stopped after its first turn: the tool call ran, the second turn never came.
    expect(result.turns).toBeLessThan(3);
  });

  it('builds the arguments with the prompt last, after --', () => {
    expect(buildClaudeArgs({ prompt: 'p', model: 'sonnet', effort: 'low', fallbackModel: 'haiku', maxBudgetUsd: 2.5 })).toEqual([
      '-p', '--output-format', 'stream-json', '--verbose', '--model', 'sonnet', '--effort', 'low', '--fallback-model', 'haiku', '--max-budget-usd', '2.5', '--', 'p',
    ]);
    expect(buildClaudeArgs({ prompt: '-starts with a dash' })).toEqual([
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--',
      '-starts with a dash',
    ]);
    expect(buildClaudeArgs({ prompt: 'x'.repeat(200_000) })).not.toContain('--');
  });

  it('passes only the variables the CLI needs, and turns non-essential traffic off unless told', () => {
    const env = buildClaudeEnv(
      { PATH: '/bin', HOME: '/home/a', LANG: 'C.UTF-8', ANTHROPIC_API_KEY: 'k', REDIS_URL: 'redis://x', AGENT_ID: 'a1', ANTHROPIC_MODEL: '' },
      '/cfg',
    );
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/home/a',
      LANG: 'C.UTF-8',
      ANTHROPIC_API_KEY: 'k',
      CLAUDE_CONFIG_DIR: '/cfg',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      // In print mode the CLI would not wait for MCP servers: dan's ask_user must be there on the first turn.
      MCP_CONNECTION_NONBLOCKING: '0',
    });
    expect(buildClaudeEnv({ CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '0' }, '/cfg').CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).toBe('0');
    // The agent's id tags the CLI's process tree (the process runtime kills what a dead agent left running).
    expect(buildClaudeEnv({ AGENT_ID: 'spoofed' }, '/cfg', 'backend-a1')).toEqual({
      DAN_AGENT_ID: 'backend-a1',
      CLAUDE_CONFIG_DIR: '/cfg',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      MCP_CONNECTION_NONBLOCKING: '0',
    });
  });

  it('recreates the config dir cleanly from the template', async () => {
    const target = path.join(base, 'clean-config');
    await mkdir(path.join(target, 'agents'), { recursive: true });
    await writeFile(path.join(target, 'agents', 'stale-worker.md'), '---\nname: stale\n---\nold\n');
    await writeFile(path.join(target, 'leftover.json'), '{}');

    const prepared = await prepareConfigDir(templateDir, target);

    expect(prepared.workers.map((w) => w.name)).toEqual(['api-worker']);
    expect((await readdir(target)).sort()).toEqual(['CLAUDE.md', 'agents', 'settings.json']);
    expect(await readFile(path.join(target, 'agents', 'api-worker.md'), 'utf8')).toContain(WORKER_BODY);
  });

  it('works with a domain that has only a CLAUDE.md, and refuses a missing template', async () => {
    const bare = path.join(base, 'bare-template');
    await mkdir(bare);
    await writeFile(path.join(bare, 'CLAUDE.md'), '# bare\n');
    expect(await prepareConfigDir(bare, path.join(base, 'bare-config'))).toMatchObject({
      instructions: true,
      settings: false,
      workers: [],
      allow: [],
    });
    await expect(prepareConfigDir(path.join(base, 'missing'), path.join(base, 'x-config'))).rejects.toMatchObject({
      code: 'DAN_EXECUTOR',
    });
  });
});

describe('the scripted model server', () => {
  it('answers the CLI’s side calls itself, so scripted turns go to the conversation', async () => {
    const r = await prepare([{ text: 'first scripted turn' }, { text: 'second scripted turn' }], 'Create file hello.txt with a greeting');
    // With non-essential traffic allowed, the CLI also asks the model for a session title (not for a bare "Hello").
    const { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: _off, ...env } = r.options.env;
    const result = await run({ ...r, options: { ...r.options, env } });

    expect(result).toMatchObject({ status: 'completed', result: 'first scripted turn' });
    const side = r.server.requests.filter((q) => q.side);
    expect(side.length).toBeGreaterThanOrEqual(1);
    expect(side[0]!.jsonSchema).toMatchObject({ properties: { title: { type: 'string' } } });
    expect(conversationRequests(r.server.requests)).toHaveLength(1);
  });

  it('serves several CLIs at once from one stateless scenario', async () => {
    await using server = await ModelServer.start({ script: writeFileScenario() });
    const runs = await Promise.all(['alpha.txt', 'beta.txt', 'gamma.txt'].map((f) => prepare(server, `Create file ${f} now`)));
    const results = await Promise.all(runs.map((r) => runClaude(r.options)));

    expect(results.map((x) => x.status)).toEqual(['completed', 'completed', 'completed']);
    for (const [i, f] of ['alpha.txt', 'beta.txt', 'gamma.txt'].entries()) {
      expect(await readFile(path.join(runs[i]!.workspace, f), 'utf8')).toContain(`Create file ${f} now`);
    }
    expect(conversationRequests(server.requests)).toHaveLength(6);
  });

  it('runs standalone: prints its URL, serves a scenario over HTTP and to the CLI, stops on SIGTERM', async () => {
    const child = execa(process.execPath, ['--import', 'tsx', 'tests/fixtures/model-server.ts', '--port', '0', '--scenario', 'auto'], {
      cwd: ROOT,
      reject: false,
      buffer: { stdout: false },
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        child.once('exit', () => reject(new Error('the server exited before printing its URL')));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
      const planning = {
        model: 'claude-test',
        stream: false,
        system: [{ type: 'text', text: 'Answer with subtasks and their dependsOn.\n - Primary working directory: /w' }],
        tools: [{ name: 'Write' }],
        messages: [{ role: 'user', content: 'Plan this.\nGoal: a signup page' }],
      };
      const answer = (await (await fetch(`${url}/v1/messages?beta=true`, { method: 'POST', body: JSON.stringify(planning) })).json()) as {
        content: Array<{ text: string }>;
        stop_reason: string;
      };
      expect(answer.stop_reason).toBe('end_turn');
      const plan = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(answer.content[0]!.text)![1]!) as { subtasks: unknown[] };
      expect(plan.subtasks).toEqual([
        { key: 'api', domain: 'backend', description: expect.stringContaining('a signup page'), dependsOn: [] },
        { key: 'form', domain: 'frontend', description: expect.stringContaining('a signup page'), dependsOn: ['api'] },
      ]);
      const count = await fetch(`${url}/v1/messages/count_tokens`, { method: 'POST', body: JSON.stringify(planning) });
      expect(await count.json()).toEqual({ input_tokens: expect.any(Number) });
      expect((await fetch(`${url}/v1/nothing`, { method: 'POST', body: '{}' })).status).toBe(404);

      const r = await prepare([], 'Create file standalone.txt please');
      await r.server.close();
      const result = await runClaude({ ...r.options, env: { ...r.options.env, ANTHROPIC_BASE_URL: url } });
      expect(result.status).toBe('completed');
      expect(await readFile(path.join(r.workspace, 'standalone.txt'), 'utf8')).toContain('Create file standalone.txt please');
    } finally {
      child.kill('SIGTERM');
    }
    expect((await child).exitCode).toBe(0);
  });

  it('refuses an unknown scenario with a message and exit code 2', async () => {
    const result = await execa(process.execPath, ['--import', 'tsx', 'tests/fixtures/model-server.ts', '--scenario', 'nope'], {
      cwd: ROOT,
      reject: false,
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('unknown scenario "nope"');
  });
});
