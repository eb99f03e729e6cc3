import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DESCRIPTION_BYTES, taskSpecSchema } from '../../lib/task.js';
import { expectBadInput } from '../helpers/expect-bad-input.js';
import { openNetwork, redisUrl, snapshot, type TestNetwork } from '../helpers/network.js';

/**
 * The bad-input matrix, completed: every command (send-task, status, tasks, cancel, logs, agents, agent,
 * orchestrator, up, down) with missing, malformed, oversized and out-of-range arguments. Each exits 2 with one
 * line on stderr, prints nothing on stdout, and leaves Redis exactly as it was. tests/integration/cli.test.ts
 * holds the first part of the matrix (send-task, status, tasks, cancel, logs, agents); this file adds what it
 * lacks, the long-running commands (agent, orchestrator, up, down, none of which may start anything on bad
 * input), and the connection flags and settings every command reads.
 */

const UNKNOWN_ID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const HUGE = 'x'.repeat(64 * 1024);

type Case = [name: string, args: string[], message: RegExp, env?: Record<string, string>];

const send = (...rest: string[]) => ['send-task', 'backend', 'a task', ...rest];

/** Per command: the cases cli.test.ts does not have. Names say the kind: missing, malformed, oversized, out of range. */
const cases: Case[] = [
  // send-task
  ['send-task: missing both arguments', ['send-task'], /missing required argument 'domain'/],
  ['send-task: malformed domain ../etc', ['send-task', '../etc', 'x'], /unknown domain "\.\.\/etc"/],
  ['send-task: oversized domain', ['send-task', 'd'.repeat(200), 'x'], /unknown domain "d+"/],
  ['send-task: blank description', ['send-task', 'backend', '   \n\t'], /description must not be empty/],
  ['send-task: oversized description, multibyte', ['send-task', 'backend', 'é'.repeat(MAX_DESCRIPTION_BYTES / 2 + 1)], /description must be at most 65536 bytes/],
  ['send-task: empty priority', send('-p', ''), /--priority must be low, normal or high/],
  ['send-task: out-of-range timeout -5', send('-t', '-5'), /--timeout must be at least 10 seconds/],
  ['send-task: out-of-range timeout 1e20', send('-t', '1e20'), /--timeout .*must be at most 86400 seconds/],
  ['send-task: missing context value', send('--context'), /option '-c, --context <json>' argument missing/],
  ['send-task: malformed context, truncated JSON', send('-c', '{"repo":'), /--context is not valid JSON/],
  ['send-task: out-of-range attempts setting', send(), /DAN_TASK_ATTEMPTS="0" is invalid/, { DAN_TASK_ATTEMPTS: '0' }],
  ['send-task: too many arguments', [...send(), 'extra'], /too many arguments for 'send-task'/],
  // send-task: access and spend (issue 12)
  ['send-task: out-of-range budget -1', send('--budget', '-1'), /--budget must be more than 0 dollars/],
  ['send-task: out-of-range budget 0', send('--budget', '0'), /--budget must be more than 0 dollars/],
  ['send-task: absurd budget 1e9', send('--budget', '1e9'), /--budget must be at most 10000 dollars/],
  ['send-task: malformed budget', send('--budget', 'ten'), /--budget must be an amount in US dollars/],
  ['send-task: unknown effort', send('--effort', 'extreme'), /--effort must be one of low, medium, high, xhigh, max/],
  ['send-task: malformed model', send('--model', 'sonnet; rm -rf /'), /--model must be a model name/],
  ['send-task: malformed fallback model', send('--fallback-model', ''), /--fallback-model .*must be a model name/],
  ['send-task: malformed token list', send(), /CLAUDE_CODE_OAUTH_TOKEN=\(hidden\) is invalid/, { CLAUDE_CODE_OAUTH_TOKEN: 'tok-one,,tok-two' }],
  ['send-task: missing credentials file', send(), /GOOGLE_APPLICATION_CREDENTIALS="\/no\/such\/key.json" does not exist/, { CLAUDE_CODE_USE_VERTEX: '1', GOOGLE_APPLICATION_CREDENTIALS: '/no/such/key.json' }],
  ['send-task: absurd DAN_TASK_BUDGET_USD', send(), /DAN_TASK_BUDGET_USD="-3" is invalid: must be more than 0 dollars/, { DAN_TASK_BUDGET_USD: '-3' }],
  // status
  ['status: oversized id', ['status', HUGE], /task id "x{40}…" is not a task id/],
  ['status: malformed id, lower case', ['status', UNKNOWN_ID.toLowerCase()], /is not a task id/],
  ['status: out-of-range id with --mermaid', ['status', UNKNOWN_ID, '--mermaid'], new RegExp(`no task with id "${UNKNOWN_ID}"`)],
  ['status: too many arguments', ['status', UNKNOWN_ID, UNKNOWN_ID], /too many arguments for 'status'/],
  // tasks
  ['tasks: out-of-range limit -1', ['tasks', '-n', '-1'], /--limit must be at least 1/],
  ['tasks: oversized limit', ['tasks', '-n', '9'.repeat(30)], /--limit .*must be at most 1000/],
  ['tasks: missing domain value', ['tasks', '--domain'], /option '--domain <domain>' argument missing/],
  ['tasks: oversized domain', ['tasks', '--domain', 'd'.repeat(500)], /unknown domain "d+"/],
  ['tasks: too many arguments', ['tasks', 'backend'], /too many arguments for 'tasks'/],
  // cancel
  ['cancel: oversized id', ['cancel', HUGE], /task id "x{40}…" is not a task id/],
  ['cancel: malformed id, one character short', ['cancel', UNKNOWN_ID.slice(1)], /is not a task id/],
  ['cancel: too many arguments', ['cancel', UNKNOWN_ID, 'now'], /too many arguments for 'cancel'/],
  // logs
  ['logs: out-of-range lines -1', ['logs', '-n', '-1', '--no-follow'], /--lines must be at least 0/],
  ['logs: out-of-range lines 100001', ['logs', '-n', '100001', '--no-follow'], /--lines must be at most 100000/],
  ['logs: malformed lines 1.5', ['logs', '-n', '1.5', '--no-follow'], /--lines must be a whole number/],
  ['logs: missing lines value', ['logs', '--no-follow', '--lines'], /option '-n, --lines <n>' argument missing/],
  ['logs: oversized task id', ['logs', '--task', HUGE, '--no-follow'], /--task .*is not a task id/],
  ['logs: too many arguments', ['logs', 'backend', '--no-follow'], /too many arguments for 'logs'/],
  // agents
  ['agents: missing redis-url value', ['agents', '--redis-url'], /option '-r, --redis-url <url>' argument missing/],
  ['agents: out-of-range heartbeat TTL', ['agents'], /DAN_HEARTBEAT_TTL_MS="1" is invalid/, { DAN_HEARTBEAT_TTL_MS: '1' }],
  // agent: each must fail before it registers, subscribes or takes a job
  ['agent: missing domain', ['agent'], /dan agent needs a domain: pass --domain <name> or set DOMAIN_TYPE/],
  ['agent: missing domain value', ['agent', '--domain'], /option '-d, --domain <name>' argument missing/],
  ['agent: unknown domain', ['agent', '--domain', 'nosuch'], /unknown domain "nosuch"/],
  ['agent: malformed domain ../backend', ['agent', '--domain', '../backend'], /unknown domain "\.\.\/backend"/],
  ['agent: the main domain is not a domain agent', ['agent', '--domain', 'main'], /.+/],
  ['agent: malformed id', ['agent', '--domain', 'backend', '--id', 'a/b'], /AGENT_ID="a\/b" is invalid: must be 1-100 letters/],
  ['agent: oversized id', ['agent', '--domain', 'backend', '--id', 'a'.repeat(101)], /AGENT_ID="a{101}" is invalid: must be 1-100 letters/],
  ['agent: malformed idle timeout', ['agent', '--domain', 'backend', '--idle-timeout', 'soon'], /--idle-timeout must be a whole number of milliseconds from 100 to 86400000/],
  ['agent: out-of-range idle timeout', ['agent', '--domain', 'backend', '--idle-timeout', '99'], /--idle-timeout must be at least 100/],
  ['agent: out-of-range concurrency 0', ['agent', '--domain', 'backend', '--concurrency', '0'], /--concurrency must be at least 1/],
  ['agent: out-of-range concurrency 65', ['agent', '--domain', 'backend', '--concurrency', '65'], /--concurrency must be at most 64/],
  ['agent: too many arguments', ['agent', '--domain', 'backend', 'extra'], /too many arguments for 'agent'/],
  ['agent: unknown option', ['agent', '--domain', 'backend', '--bogus'], /unknown option '--bogus'/],
  // orchestrator: each must fail before it registers or takes the lease
  ['orchestrator: malformed runtime', ['orchestrator', '--runtime', 'kubernetes'], /--runtime must be process or docker/],
  ['orchestrator: missing runtime value', ['orchestrator', '--runtime'], /option '--runtime <runtime>' argument missing/],
  ['orchestrator: malformed runtime setting', ['orchestrator'], /DAN_RUNTIME="kubernetes" is invalid/, { DAN_RUNTIME: 'kubernetes' }],
  ['orchestrator: out-of-range reaper interval', ['orchestrator'], /DAN_REAPER_MS="10" is invalid/, { DAN_REAPER_MS: '10' }],
  ['orchestrator: out-of-range agent limit', ['orchestrator'], /DAN_MAX_AGENTS="-1" is invalid/, { DAN_MAX_AGENTS: '-1' }],
  ['orchestrator: heartbeat TTL not above its interval', ['orchestrator'], /DAN_HEARTBEAT_TTL_MS \(1000\) must be greater than DAN_HEARTBEAT_MS \(1000\)/, { DAN_HEARTBEAT_MS: '1000', DAN_HEARTBEAT_TTL_MS: '1000' }],
  ['orchestrator: minimum above maximum', ['orchestrator'], /DAN_MIN_AGENTS_PER_DOMAIN \(4\) must not exceed DAN_MAX_AGENTS_PER_DOMAIN \(2\)/, { DAN_MIN_AGENTS_PER_DOMAIN: '4', DAN_MAX_AGENTS_PER_DOMAIN: '2' }],
  ['orchestrator: too many arguments', ['orchestrator', 'now'], /too many arguments for 'orchestrator'/],
  // up: each must fail before it starts Redis, an orchestrator or an agent
  ['up: malformed runtime', ['up', '--runtime', 'vm'], /--runtime must be process or docker/],
  ['up: missing runtime value', ['up', '--runtime'], /option '--runtime <runtime>' argument missing/],
  ['up: out-of-range idle timeout setting', ['up'], /DAN_IDLE_TIMEOUT_MS="1" is invalid/, { DAN_IDLE_TIMEOUT_MS: '1' }],
  ['up: too many arguments', ['up', 'backend'], /too many arguments for 'up'/],
  ['tasks: malformed client Redis URL', ['tasks'], /DAN_CLIENT_REDIS_URL="http:\/\/127\.0\.0\.1:6379" is invalid: must be a redis:\/\/ or rediss:\/\/ URL/, { DAN_CLIENT_REDIS_URL: 'http://127.0.0.1:6379' }],
  ['up: unknown option', ['up', '--detach'], /unknown option '--detach'/],
  // down: each must fail before it tells any agent to stop
  ['down: malformed timeout', ['down', '--timeout', 'soon'], /--timeout must be a number of milliseconds from 0 to 600000/],
  ['down: out-of-range timeout -1', ['down', '--timeout', '-1'], /--timeout must be at least 0/],
  ['down: out-of-range timeout 600001', ['down', '--timeout', '600001'], /--timeout must be at most 600000/],
  ['down: missing timeout value', ['down', '--timeout'], /option '--timeout <ms>' argument missing/],
  ['down: malformed runtime', ['down', '--runtime', 'all'], /--runtime must be process or docker/],
  ['down: too many arguments', ['down', 'now'], /too many arguments for 'down'/],
];

/** Every command reads the connection flags: a malformed URL, a malformed or oversized network name. */
const COMMANDS: Array<[string, string[]]> = [
  ['send-task', ['send-task', 'backend', 'x']],
  ['status', ['status', UNKNOWN_ID]],
  ['tasks', ['tasks']],
  ['cancel', ['cancel', UNKNOWN_ID]],
  ['logs', ['logs', '--no-follow']],
  ['agents', ['agents']],
  ['agent', ['agent', '--domain', 'backend']],
  ['orchestrator', ['orchestrator']],
  ['up', ['up']],
  ['down', ['down']],
];
for (const [index, [name, args]] of COMMANDS.entries()) {
  cases.push(
    [`${name}: malformed --network`, [...args, '--network', 'My Network'], /DAN_NETWORK="My Network" is invalid/],
    [`${name}: oversized --network`, [...args, '--network', 'n'.repeat(64)], /DAN_NETWORK="n{64}" is invalid: must be 1-63/],
  );
  // The URL is checked by the same code for all: every other command is enough.
  if (index % 2 === 0) {
    cases.push([`${name}: malformed --redis-url`, [...args, '--redis-url', 'http://127.0.0.1:6379'], /REDIS_URL="http:\/\/127\.0\.0\.1:6379" is invalid: must be a redis:\/\/ or rediss:\/\/ URL/]);
  }
}

describe('bad input to every command exits 2 with one line and changes nothing in Redis', () => {
  let net: TestNetwork;
  let knownId: string;
  beforeAll(async () => {
    net = await openNetwork({}, 'bad-input');
    knownId = (await net.bus.submit(taskSpecSchema.parse({ domain: 'backend', description: 'keep me', timeoutS: 60, maxAttempts: 3 }))).id;
  });
  afterAll(async () => {
    await net.cleanup();
  });

  it.concurrent.for(cases)('%s', async ([, args, message, extraEnv], { expect }) => {
    // DAN_START_REDIS=false: if `dan up` ever got past its checks, it must not start a redis-server here.
    const env = { REDIS_URL: redisUrl(), DAN_NETWORK: net.network, DAN_LOG_LEVEL: 'silent', DAN_START_REDIS: 'false', ...extraEnv };
    await expectBadInput(expect, net, args, env, message, { timeoutMs: 30_000 });
  });

  it('left the existing task, and nothing else, in the network', async () => {
    const keys = Object.keys(await snapshot(net.redis, net.config.prefix));
    expect(keys.filter((k) => k.includes(':agent') || k.endsWith(':leader'))).toEqual([]);
    expect(await net.bus.tasks.list()).toEqual([expect.objectContaining({ id: knownId, status: 'queued', description: 'keep me' })]);
  });
});
