import { Worker } from 'bullmq';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDomains } from '../../lib/domains.js';
import { createRedis, type Redis, type TaskJobData } from '../../lib/messaging/index.js';
import { MAX_CONTEXT_BYTES, MAX_DESCRIPTION_BYTES, taskSpecSchema } from '../../lib/task.js';
import { danEntry, repoRoot, runDan } from '../helpers/cli.js';
import { expectBadInput } from '../helpers/expect-bad-input.js';
import { eventually, openNetwork, redisUrl, snapshot, type TestNetwork } from '../helpers/network.js';

/**
 * The `dan` CLI as a user runs it: a real process (through tsx) against a real Redis, one network per describe.
 * Exit codes (bin/context.ts): 0 ok, 1 task did not complete, 2 bad input, 3 Redis unreachable.
 */

const UNKNOWN_ID = '01ARZ3NDEKTSV4RRFFQ69G5FAV'; // a well-formed task id that no test creates
const ANSI = /\u001b\[/;

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);

function cliEnv(net: TestNetwork, extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL: redisUrl(), DAN_NETWORK: net.network, DAN_LOG_LEVEL: 'silent', ...extra };
}

describe('sending a task and looking at it', () => {
  let net: TestNetwork;
  beforeAll(async () => {
    net = await openNetwork({}, 'cli');
  });
  afterAll(async () => {
    await net.cleanup();
  });
  const dan = (args: string[], extra: Record<string, string> = {}) => runDan(args, cliEnv(net, extra));

  it('send-task prints the id; status, tasks and logs show the queued task', async () => {
    const sent = await dan(['send-task', 'backend', 'hello', '--json']);
    expect(sent.stderr).toBe('');
    expect(sent.exitCode).toBe(0);
    const { id, status, domain } = JSON.parse(String(sent.stdout)) as { id: string; status: string; domain: string };
    expect({ status, domain }).toEqual({ status: 'queued', domain: 'backend' });
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await net.bus.tasks.get(id)).description).toBe('hello');
    expect((await net.bus.queues.queue('backend').getJob(id))?.id).toBe(id);

    const [shown, tasks, logs, statusJson] = await Promise.all([
      dan(['status', id]),
      dan(['tasks']),
      dan(['logs', '--task', id, '--no-follow']),
      dan(['status', id, '--json']),
    ]);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^task\\s+${id}$`, 'm'));
    expect(shown.stdout).toMatch(/^status\s+queued/m);
    expect(shown.stdout).toContain('hello');

    expect(tasks.exitCode).toBe(0);
    const row = lines(String(tasks.stdout)).find((l) => l.startsWith(id));
    expect(row).toMatch(/backend\s+queued\s+-\s+.*hello$/);

    expect(logs.exitCode).toBe(0);
    expect(lines(String(logs.stdout))).toEqual([expect.stringMatching(/status\s+queued queued for backend \(priority normal, timeout 300s\)$/)]);

    expect(JSON.parse(String(statusJson.stdout))).toMatchObject({ id, status: 'queued', domain: 'backend', description: 'hello', attempts: 0 });
  });

  it('send-task takes its priority, timeout and context from flags', async () => {
    const sent = await dan(['send-task', 'frontend', 'style it', '-p', 'high', '-t', '60', '-c', '{"page":"home"}']);
    expect(sent.exitCode).toBe(0);
    const id = String(sent.stdout).trim();
    expect(await net.bus.tasks.get(id)).toMatchObject({ domain: 'frontend', priority: 'high', timeoutS: 60, context: { page: 'home' } });
  });

  it('send-task to an unknown domain exits 2, names the known domains, and adds no record', async () => {
    const before = await snapshot(net.redis, net.config.prefix);
    const result = await dan(['send-task', 'nosuch', 'x']);
    expect(result.exitCode).toBe(2);
    const known = ['main', ...listDomains(net.config.templatesDir)];
    expect(known).toEqual(expect.arrayContaining(['main', 'backend', 'frontend', 'devops']));
    expect(lines(String(result.stderr))).toEqual([`dan: unknown domain "nosuch": known domains are ${known.join(', ')}`]);
    expect(await snapshot(net.redis, net.config.prefix)).toEqual(before);
  });

  it('cancel of a queued task cancels it', async () => {
    const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'devops', description: 'deploy', timeoutS: 60, maxAttempts: 3 }));
    const cancelled = await dan(['cancel', id]);
    expect(cancelled.exitCode).toBe(0);
    expect(String(cancelled.stdout).trim()).toBe(`cancelled ${id} (was queued)`);
    const status = await dan(['status', id, '--json']);
    expect(JSON.parse(String(status.stdout))).toMatchObject({ id, status: 'cancelled', reason: 'cancelled by user' });
    expect(await net.bus.queues.queue('devops').getJob(id)).toBeUndefined();
  });

  it('logs follows the whole network: the newest history first, then new entries of every task, tagged with their task', async () => {
    const spec = (domain: string, description: string) => taskSpecSchema.parse({ domain, description, timeoutS: 60, maxAttempts: 3 });
    const first = await net.bus.submit(spec('backend', 'first'));
    const [node, ...args] = danEntry();
    const following = execa(node!, [...args, 'logs', '-n', '1'], { cwd: repoRoot(), env: { NO_COLOR: '1', ...cliEnv(net) }, reject: false });
    let stdout = '';
    following.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      const tag = (id: string, domain: string) => `${domain}/${id.slice(-6)}`;
      await eventually(() => stdout.includes(tag(first.id, 'backend')), { what: 'the history line' });
      await net.bus.logs.append(first.id, [{ type: 'assistant', text: 'more about first' }]);
      await eventually(() => stdout.includes('more about first'), { what: 'the live entry' });
      const second = await net.bus.submit(spec('frontend', 'second'));
      await eventually(() => stdout.includes(tag(second.id, 'frontend')), { what: "a new task's entry" });

      expect(lines(stdout)).toEqual([
        expect.stringMatching(new RegExp(`${tag(first.id, 'backend')} status\\s+queued queued for backend`)),
        expect.stringMatching(new RegExp(`${tag(first.id, 'backend')} assistant\\s+more about first$`)),
        expect.stringMatching(new RegExp(`${tag(second.id, 'frontend')} status\\s+queued queued for frontend`)),
      ]);
    } finally {
      following.kill('SIGINT');
    }
    const result = await following;
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('agents says when none are registered', async () => {
    const result = await dan(['agents']);
    expect(result.exitCode).toBe(0);
    expect(String(result.stdout).trim()).toBe('no agents registered (the orchestrator starts them when work arrives)');
  });

  it('exits 3 and names the URL, without its password, when Redis is unreachable', async () => {
    const [plain, withPassword] = await Promise.all([
      runDan(['status', UNKNOWN_ID], { ...cliEnv(net), REDIS_URL: 'redis://127.0.0.1:1' }),
      runDan(['tasks'], { ...cliEnv(net), REDIS_URL: 'redis://dan:s3cret@127.0.0.1:1' }),
    ]);
    expect(plain.exitCode).toBe(3);
    expect(lines(String(plain.stderr))).toEqual([expect.stringContaining('redis://127.0.0.1:1')]);
    expect(withPassword.exitCode).toBe(3);
    expect(lines(String(withPassword.stderr))).toEqual([expect.stringContaining('redis://dan:***@127.0.0.1:1')]);
    expect(String(withPassword.stderr)).not.toContain('s3cret');
  });

  it('writes no ANSI escapes with NO_COLOR, even when colour is forced', async () => {
    const { id } = await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'colours', timeoutS: 60, maxAttempts: 3 }));
    const noColor = { NO_COLOR: '1', FORCE_COLOR: '1' };
    const forced = { NO_COLOR: '', FORCE_COLOR: '1' };
    const [status, logs, error, colouredStatus, colouredError] = await Promise.all([
      dan(['status', id], noColor),
      dan(['logs', '--task', id, '--no-follow'], noColor),
      dan(['status', 'nope'], noColor),
      dan(['status', id], forced),
      dan(['status', 'nope'], forced),
    ]);
    expect(String(status.stdout)).toMatch(/^status\s+queued/m);
    expect(String(status.stdout)).not.toMatch(ANSI);
    expect(String(logs.stdout)).toContain('queued for backend');
    expect(String(logs.stdout)).not.toMatch(ANSI);
    expect(String(error.stderr)).toMatch(/^dan: task id "nope"/);
    expect(String(error.stderr)).not.toMatch(ANSI);
    // The control: the same commands do colour their output when forced and NO_COLOR is unset.
    expect(String(colouredStatus.stdout)).toMatch(ANSI);
    expect(String(colouredError.stderr)).toMatch(ANSI);
  });
});

describe('send-task --wait', () => {
  let net: TestNetwork;
  let workerConnection: Redis;
  let worker: Worker<TaskJobData>;

  beforeAll(async () => {
    net = await openNetwork({}, 'cli-wait');
    // A stand-in agent built from the library itself: takes jobs from the real queue, claims the record,
    // logs, and records the outcome with fencing. Descriptions that mention "fail" fail.
    const bus = net.bus;
    workerConnection = createRedis(redisUrl(), { name: `${net.network}-worker` });
    worker = new Worker<TaskJobData>(
      'backend',
      async (job) => {
        const id = job.data.taskId;
        const claim = await bus.tasks.transition(id, 'active', { mode: 'claim', agent: 'a1', fields: { agent: 'a1', startedAt: Date.now() } });
        if (claim.outcome !== 'ok') return;
        const record = await bus.tasks.get(id);
        await bus.logs.append(id, [{ type: 'assistant', text: `working on: ${record.description}`, agent: 'a1' }]);
        const fence = { expectAgent: 'a1', expectAttempts: claim.attempts, agent: 'a1' };
        if (record.description.includes('fail')) {
          await bus.tasks.transition(id, 'failed', { ...fence, text: 'the build broke', fields: { error: 'the build broke', finishedAt: Date.now() } });
        } else {
          await bus.tasks.transition(id, 'completed', { ...fence, text: 'done', fields: { result: 'all green', finishedAt: Date.now() } });
        }
      },
      { connection: workerConnection, prefix: bus.keys.queuePrefix },
    );
    worker.on('error', () => {}); // a closing connection during teardown is not a test failure
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    await worker.close();
    workerConnection.disconnect();
    await net.cleanup();
  });

  it('exits 0 when the task completes and 1 when it fails, after printing its log', async () => {
    const [passed, failed, passedJson] = await Promise.all([
      runDan(['send-task', 'backend', 'make it pass', '--wait'], cliEnv(net)),
      runDan(['send-task', 'backend', 'make it fail', '--wait'], cliEnv(net)),
      runDan(['send-task', 'backend', 'make it pass quietly', '--wait', '--json'], cliEnv(net)),
    ]);

    expect(passed.exitCode).toBe(0);
    expect(String(passed.stdout)).toContain('working on: make it pass');
    expect(String(passed.stdout)).toMatch(/status\s+completed done \(a1\)/);
    expect(lines(String(passed.stderr)).at(-1)).toMatch(/^completed [0-9A-Z]{26}$/);

    expect(failed.exitCode).toBe(1);
    expect(String(failed.stdout)).toContain('working on: make it fail');
    expect(lines(String(failed.stderr)).at(-1)).toMatch(/^failed [0-9A-Z]{26}: the build broke$/);

    expect(passedJson.exitCode).toBe(0);
    expect(JSON.parse(String(passedJson.stdout))).toMatchObject({ status: 'completed', result: 'all green', agent: 'a1', attempts: 1 });
  });
});

describe('bad input exits 2 with one line on stderr and writes nothing', () => {
  let net: TestNetwork;
  let knownId: string;
  beforeAll(async () => {
    net = await openNetwork({}, 'cli-bad');
    // Something to leave untouched: a queued task with its record, index, log and job.
    knownId = (await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'keep me', timeoutS: 60, maxAttempts: 3 }))).id;
  });
  afterAll(async () => {
    await net.cleanup();
  });

  const bigContext = JSON.stringify({ k: 'x'.repeat(MAX_CONTEXT_BYTES) });
  const send = (...rest: string[]) => ['send-task', 'backend', 'a task', ...rest];

  const cases: Array<[string, string[], RegExp, Record<string, string>?]> = [
    // send-task
    ['send-task without a description', ['send-task', 'backend'], /missing required argument 'description'/],
    ['send-task with an empty description', ['send-task', 'backend', ''], /description must not be empty/],
    ['send-task with a 64 KiB + 1 description', ['send-task', 'backend', 'x'.repeat(MAX_DESCRIPTION_BYTES + 1)], /description must be at most 65536 bytes/],
    ['send-task to an unknown domain', ['send-task', 'nosuch', 'x'], /unknown domain "nosuch"/],
    ['send-task with context [1]', send('-c', '[1]'), /--context must be a JSON object/],
    ['send-task with context nope', send('--context', 'nope'), /--context is not valid JSON/],
    ['send-task with context over 64 KiB', send('-c', bigContext), /--context .*must be at most 65536 bytes of JSON/],
    ['send-task with priority urgent', send('-p', 'urgent'), /--priority .*must be low, normal or high/],
    ['send-task with timeout 9', send('-t', '9'), /--timeout .*must be at least 10 seconds/],
    ['send-task with timeout 86401', send('-t', '86401'), /--timeout .*must be at most 86400 seconds/],
    ['send-task with timeout abc', send('-t', 'abc'), /--timeout .*whole number of seconds/],
    ['send-task with timeout 1.5', send('--timeout', '1.5'), /--timeout .*whole number of seconds/],
    ['send-task with an option missing its value', send('--priority'), /option '-p, --priority <priority>' argument missing/],
    ['send-task with an unknown option', send('--bogus'), /unknown option '--bogus'/],
    ['send-task with a bad heartbeat setting', send(), /DAN_HEARTBEAT_MS="abc" is invalid/, { DAN_HEARTBEAT_MS: 'abc' }],
    // status
    ['status without an id', ['status'], /missing required argument 'id'/],
    ['status with a malformed id', ['status', 'nope'], /task id "nope" is not a task id/],
    ['status with an unknown id', ['status', UNKNOWN_ID], new RegExp(`no task with id "${UNKNOWN_ID}"`)],
    ['status with REDIS_URL=http://x', ['status', UNKNOWN_ID], /REDIS_URL="http:\/\/x" is invalid/, { REDIS_URL: 'http://x' }],
    // tasks
    ['tasks --status bogus', ['tasks', '--status', 'bogus'], /--status must be one of waiting, queued, active/],
    ['tasks -n 0', ['tasks', '-n', '0'], /--limit must be at least 1/],
    ['tasks -n 1001', ['tasks', '-n', '1001'], /--limit must be at most 1000/],
    ['tasks -n 1.5', ['tasks', '-n', '1.5'], /--limit must be a whole number/],
    ['tasks --domain nosuch', ['tasks', '--domain', 'nosuch'], /unknown domain "nosuch"/],
    ['tasks --limit without its value', ['tasks', '--limit'], /option '-n, --limit <n>' argument missing/],
    ['tasks with an unknown option', ['tasks', '--bogus'], /unknown option '--bogus'/],
    // cancel
    ['cancel without an id', ['cancel'], /missing required argument 'id'/],
    ['cancel with a malformed id', ['cancel', 'nope'], /task id "nope" is not a task id/],
    ['cancel with an unknown id', ['cancel', UNKNOWN_ID], new RegExp(`no task with id "${UNKNOWN_ID}"`)],
    // logs
    ['logs --grep (', ['logs', '--grep', '(', '--no-follow'], /--grep is not a valid regular expression/],
    ['logs --main --domains', ['logs', '--main', '--domains', '--no-follow'], /--main and --domains exclude each other/],
    ['logs --task with a malformed id', ['logs', '--task', 'nope', '--no-follow'], /--task .*is not a task id/],
    ['logs --task with an unknown id', ['logs', '--task', UNKNOWN_ID, '--no-follow'], new RegExp(`no task with id "${UNKNOWN_ID}"`)],
    ['logs -n abc', ['logs', '-n', 'abc', '--no-follow'], /--lines must be a number from 0 to 100000/],
    ['logs --task without its value', ['logs', '--task'], /option '--task <id>' argument missing/],
    ['logs with an unknown option', ['logs', '--bogus'], /unknown option '--bogus'/],
    // agents
    ['agents with an unknown option', ['agents', '--bogus'], /unknown option '--bogus'/],
    ['agents with an argument', ['agents', 'backend'], /too many arguments for 'agents'/],
    // the program
    ['an unknown command', ['nosuch'], /unknown command 'nosuch'/],
    ['an unknown global option', ['--bogus'], /unknown option '--bogus'/],
  ];

  it.concurrent.for(cases)('%s', async ([, args, message, extraEnv], { expect }) => {
    await expectBadInput(expect, net, args, cliEnv(net, extraEnv ?? {}), message);
  });

  it('left the existing task as it was', async () => {
    expect(await net.bus.tasks.list()).toEqual([expect.objectContaining({ id: knownId, status: 'queued', description: 'keep me' })]);
  });
});
