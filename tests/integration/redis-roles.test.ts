import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, ensureRoleUsers, roleUrl, roleUser, whoAmI, type Redis } from '../../lib/messaging/index.js';
import { RedisServer } from '../helpers/redis-server.js';
import { deleteNetworkKeys, uniqueNetwork } from '../helpers/network.js';
import { runDan } from '../helpers/cli.js';
import { World } from '../helpers/world.js';

// Redis ACL users per role (docs/SECURITY.md, Redis roles), against a real redis-server with a password: what an
// agent's user may not do, and that an orchestrator on such a Redis runs a task end to end with its agents
// connected as that user, their credentials nowhere in their environment.

const PASSWORD = `admin-${randomBytes(12).toString('hex')}`;
let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start({ password: PASSWORD });
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

/** The error text of a command, or 'ok'. */
async function attempt(redis: Redis, ...command: [string, ...Array<string | number>]): Promise<string> {
  try {
    await redis.call(...command);
    return 'ok';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('the agent role', () => {
  const network = uniqueNetwork('acl');
  let admin: Redis;
  let agent: Redis;

  beforeAll(async () => {
    admin = await connectRedis(server.url(), { mode: 'cli' });
    expect(await ensureRoleUsers(admin, server.url(), network)).toEqual({ kind: 'set', users: [roleUser(network, 'agent'), roleUser(network, 'client')] });
    agent = await connectRedis(roleUrl(server.url(), server.url(), network, 'agent')!, { mode: 'cli', name: 'acl-test-agent' });
  });

  afterAll(() => {
    agent?.disconnect();
    admin?.disconnect();
  });

  it('is refused admin, dangerous and keyspace-wide commands, and keys and channels of other networks', async () => {
    const refused: Array<[string, ...Array<string | number>]> = [
      ['FLUSHALL'],
      ['FLUSHDB'],
      ['CONFIG', 'GET', 'requirepass'],
      ['CONFIG', 'SET', 'appendonly', 'no'],
      ['KEYS', '*'],
      ['SCAN', 0],
      ['RANDOMKEY'],
      ['SHUTDOWN', 'NOSAVE'],
      ['ACL', 'LIST'],
      ['ACL', 'SETUSER', 'evil', 'on', '>x', '+@all', '~*'],
      ['DEBUG', 'SLEEP', 0],
      ['REPLICAOF', '127.0.0.1', 1],
      ['CLIENT', 'KILL', 'TYPE', 'normal'],
      ['CLIENT', 'LIST'],
      ['CLIENT', 'PAUSE', 10],
      ['MONITOR'],
      ['SCRIPT', 'FLUSH'],
      ['FUNCTION', 'FLUSH'],
      ['SELECT', 1],
      ['SWAPDB', 0, 1],
      ['BGSAVE'],
      ['SET', 'other-network:task:x', '1'],
      ['GET', 'other-network:leader'],
      ['PUBLISH', 'other-network:events', 'x'],
      ['EVAL', "return redis.call('SET', 'other-network:x', '1')", 0],
    ];
    const answers = await Promise.all(refused.map(async (command) => [command.join(' '), await attempt(agent, ...command)] as const));
    // NOPERM, or the ACL refusing a key a script touches; DEBUG is refused before the ACL by enable-debug-command.
    const allowed = answers.filter(([, answer]) => !/NOPERM|can't access at least one of the keys|DEBUG command not allowed/.test(answer));
    expect(allowed).toEqual([]);
    // Still there: the admin user and the keyspace.
    expect(await attempt(admin, 'PING')).toBe('ok');
  });

  it('may do what an agent and BullMQ do: its network keys and channels, scripts, INFO, CLIENT SETNAME', async () => {
    expect(await whoAmI(agent)).toBe(roleUser(network, 'agent'));
    expect(await attempt(agent, 'SET', `${network}:probe`, '1')).toBe('ok');
    expect(await attempt(agent, 'EVAL', "return redis.call('GET', KEYS[1])", 1, `${network}:probe`)).toBe('ok');
    expect(await attempt(agent, 'PUBLISH', `${network}:events`, '{}')).toBe('ok');
    expect(await attempt(agent, 'INFO', 'server')).toBe('ok');
    expect(await attempt(agent, 'CLIENT', 'SETNAME', 'dan-agent-probe')).toBe('ok');
    expect(await attempt(agent, 'DEL', `${network}:probe`)).toBe('ok');
  });

  it('is set again, with the same password, by every orchestrator that starts', async () => {
    const before = await admin.call('ACL', 'GETUSER', roleUser(network, 'agent'));
    expect(await ensureRoleUsers(admin, server.url(), network)).toMatchObject({ kind: 'set' });
    expect(await admin.call('ACL', 'GETUSER', roleUser(network, 'agent'))).toEqual(before);
    expect(await attempt(agent, 'PING')).toBe('ok');
  });
});

describe('an orchestrator on a Redis with a password', () => {
  it('runs a task end to end with its agents connected as the agent role, their secrets not in their environment', async () => {
    const world = await World.create({ label: 'acl-e2e', settings: { REDIS_URL: server.url(), DAN_HEARTBEAT_MS: '250', DAN_HEARTBEAT_TTL_MS: '2000', DAN_REAPER_MS: '250' }, waitTimeoutMs: 90_000 });
    try {
      await world.startOrchestrator('acl-orch');
      const task = await world.submit('write a file as the agent role');
      const done = await world.waitForEnd(task.id);
      expect(done.status, await world.describe(task.id)).toBe('completed');

      const [agentRecord] = await world.liveAgents('backend');
      expect(agentRecord).toBeDefined();
      // Every connection of the agent process is the agent role's user.
      const clients = String(await world.bus.redis.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes(`name=dan-agent:${agentRecord!.id}`));
      expect(clients.length).toBeGreaterThan(0);
      for (const line of clients) expect(line).toContain(`user=${roleUser(world.net.network, 'agent')}`);
      // Its environment (what /proc/<pid>/environ shows, what a tool of its CLI could read) holds no secret.
      const environ = (await readFile(`/proc/${agentRecord!.pid}/environ`, 'utf8')).split('\0');
      expect(environ, environ.map((kv) => kv.split('=')[0]).join(' ')).toContain('DAN_SECRETS=stdin');
      expect(environ.filter((kv) => /^(REDIS_URL|ANTHROPIC_API_KEY|ANTHROPIC_BASE_URL)=/.test(kv))).toEqual([]);
      expect(environ.join('\n')).not.toContain(PASSWORD);
    } finally {
      await world.close();
    }
  }, 180_000);
});

describe('the client role', () => {
  it('is enough for dan send-task, status, tasks, logs and cancel', async () => {
    const network = uniqueNetwork('aclcli');
    const admin = await connectRedis(server.url(), { mode: 'cli' });
    try {
      await ensureRoleUsers(admin, server.url(), network);
      const env = { REDIS_URL: roleUrl(server.url(), server.url(), network, 'client')!, DAN_NETWORK: network, PATH: process.env.PATH };
      const sent = await runDan(['send-task', 'backend', 'hello from the client role', '--json'], env);
      expect(sent.exitCode, String(sent.stderr)).toBe(0);
      const id = (JSON.parse(String(sent.stdout)) as { id: string }).id;
      for (const args of [['status', id], ['tasks'], ['logs', '--task', id, '--no-follow'], ['cancel', id]]) {
        const result = await runDan(args, env);
        expect(result.exitCode, `dan ${args.join(' ')}: ${String(result.stderr)}`).toBe(0);
      }
      expect(await admin.hget(`${network}:task:${id}`, 'status')).toBe('cancelled');
    } finally {
      await deleteNetworkKeys(server.url(), `${network}:`);
      admin.disconnect();
    }
  }, 120_000);
});
