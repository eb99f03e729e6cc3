import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, ensureRoleUsers, roleUrl, roleUser, whoAmI, type Redis } from '../../lib/messaging/index.js';
import { freePort, RedisServer } from '../helpers/redis-server.js';
import { DanProcess } from '../helpers/dan-process.js';
import { eventually } from '../helpers/eventually.js';
import { deleteNetworkKeys, uniqueNetwork } from '../helpers/network.js';
import { runDan } from '../helpers/cli.js';
import { World } from '../helpers/world.js';

// Redis ACL users per role (docs/SECURITY.md, Redis roles), against a real redis-server with a password: what the
// agent's and the client's users may not do; that an orchestrator on such a Redis runs a task end to end with its
// agents connected as their user, their credentials nowhere in their environment; that the real `dan` CLI works as
// the client role and connects as it when given the admin URL; and that `dan up`'s own Redis has a password.

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

/** What no role user may do: admin, dangerous and keyspace-wide commands, and other networks' keys and channels. */
const REFUSED: Array<[string, ...Array<string | number>]> = [
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

describe.each(['agent', 'client'] as const)('the %s role', (role) => {
  const network = uniqueNetwork('acl');
  let admin: Redis;
  let user: Redis;

  beforeAll(async () => {
    admin = await connectRedis(server.url(), { mode: 'cli' });
    expect(await ensureRoleUsers(admin, server.url(), network)).toEqual({ kind: 'set', users: [roleUser(network, 'agent'), roleUser(network, 'client')] });
    user = await connectRedis(roleUrl(server.url(), server.url(), network, role)!, { mode: 'cli', name: `acl-test-${role}` });
  });

  afterAll(() => {
    user?.disconnect();
    admin?.disconnect();
  });

  it('is refused admin, dangerous and keyspace-wide commands, and keys and channels of other networks', async () => {
    const answers = await Promise.all(REFUSED.map(async (command) => [command.join(' '), await attempt(user, ...command)] as const));
    // NOPERM, or the ACL refusing a key a script touches; DEBUG is refused before the ACL by enable-debug-command.
    const allowed = answers.filter(([, answer]) => !/NOPERM|can't access at least one of the keys|DEBUG command not allowed/.test(answer));
    expect(allowed).toEqual([]);
    // Still there: the admin user and the keyspace.
    expect(await attempt(admin, 'PING')).toBe('ok');
  });

  it('may do what agents, the CLI and BullMQ do: its network keys and channels, scripts, INFO, CLIENT SETNAME', async () => {
    expect(await whoAmI(user)).toBe(roleUser(network, role));
    expect(await attempt(user, 'SET', `${network}:probe`, '1')).toBe('ok');
    expect(await attempt(user, 'EVAL', "return redis.call('GET', KEYS[1])", 1, `${network}:probe`)).toBe('ok');
    expect(await attempt(user, 'PUBLISH', `${network}:events`, '{}')).toBe('ok');
    expect(await attempt(user, 'INFO', 'server')).toBe('ok');
    expect(await attempt(user, 'CLIENT', 'SETNAME', `dan-${role}-probe`)).toBe('ok');
    expect(await attempt(user, 'DEL', `${network}:probe`)).toBe('ok');
  });

  it('is set again, with the same password, by every orchestrator that starts', async () => {
    const before = await admin.call('ACL', 'GETUSER', roleUser(network, role));
    expect(await ensureRoleUsers(admin, server.url(), network)).toMatchObject({ kind: 'set' });
    expect(await admin.call('ACL', 'GETUSER', roleUser(network, role))).toEqual(before);
    expect(await attempt(user, 'PING')).toBe('ok');
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
  it('is enough for dan send-task, status, tasks, logs, cancel, retry and agents', async () => {
    const network = uniqueNetwork('aclcli');
    const admin = await connectRedis(server.url(), { mode: 'cli' });
    try {
      await ensureRoleUsers(admin, server.url(), network);
      // Only the client role's URL: nothing to fall back on.
      const env = { REDIS_URL: roleUrl(server.url(), server.url(), network, 'client')!, DAN_NETWORK: network, PATH: process.env.PATH };
      const sent = await runDan(['send-task', 'backend', 'hello from the client role', '--json'], env);
      expect(sent.exitCode, String(sent.stderr)).toBe(0);
      const id = (JSON.parse(String(sent.stdout)) as { id: string }).id;
      for (const args of [['status', id], ['tasks'], ['logs', '--task', id, '--no-follow'], ['cancel', id], ['retry', id], ['cancel', id], ['agents']]) {
        const result = await runDan(args, env);
        expect(result.exitCode, `dan ${args.join(' ')}: ${String(result.stderr)}`).toBe(0);
      }
      expect(await admin.hget(`${network}:task:${id}`, 'status')).toBe('cancelled');
    } finally {
      await deleteNetworkKeys(server.url(), `${network}:`);
      admin.disconnect();
    }
  }, 120_000);

  it('is what the CLI connects as when given the admin URL, which creates the role users when no orchestrator has yet', async () => {
    const network = uniqueNetwork('aclderive');
    const admin = await connectRedis(server.url(), { mode: 'cli' });
    try {
      const env = { REDIS_URL: server.url(), DAN_NETWORK: network, PATH: process.env.PATH };
      expect(await admin.call('ACL', 'GETUSER', roleUser(network, 'client'))).toBeNull();
      const tasks = await runDan(['tasks'], env);
      expect(tasks.exitCode, String(tasks.stderr)).toBe(0);
      // Its connection as the client role was refused, so it set the roles up and connected again.
      expect(await admin.call('ACL', 'GETUSER', roleUser(network, 'client'))).not.toBeNull();
      const doctor = await runDan(['doctor', '--json'], env);
      const checks = (JSON.parse(String(doctor.stdout)) as { checks: Array<{ name: string; status: string; found: string }> }).checks;
      expect(checks.find((c) => c.name === 'redis roles')).toMatchObject({
        status: 'ok',
        found: expect.stringContaining(`the CLI and dan serve connect as ${roleUser(network, 'client')}, agents as ${roleUser(network, 'agent')}`),
      });
      // Given only the client's URL (no admin password anywhere), the CLI and doctor use it.
      const clientOnly = { ...env, REDIS_URL: `redis://127.0.0.1:${server.port}`, DAN_CLIENT_REDIS_URL: roleUrl(server.url(), server.url(), network, 'client')! };
      const listed = await runDan(['tasks'], clientOnly);
      expect(listed.exitCode, String(listed.stderr)).toBe(0);
      const asClient = await runDan(['doctor', '--json'], clientOnly);
      const clientChecks = (JSON.parse(String(asClient.stdout)) as { checks: Array<{ name: string; status: string; found: string }> }).checks;
      expect(clientChecks.find((c) => c.name === 'redis roles')?.found).toMatch(new RegExp(`^connected as ${roleUser(network, 'client')} \\(what the CLI uses\\)`));
    } finally {
      await deleteNetworkKeys(server.url(), `${network}:`);
      for (const role of ['agent', 'client'] as const) await admin.call('ACL', 'DELUSER', roleUser(network, role));
      admin.disconnect();
    }
  }, 120_000);

  it('says how to get the credential when Redis refuses the one given (exit 3)', async () => {
    const network = uniqueNetwork('aclrefused');
    const base = { DAN_NETWORK: network, PATH: process.env.PATH };
    const none = await runDan(['tasks'], { ...base, REDIS_URL: server.url().replace(`:${PASSWORD}@`, '') });
    expect(none.exitCode).toBe(3);
    expect(String(none.stderr)).toMatch(/it asks for a password: run dan in the folder you ran `dan up` in/);
    const wrong = await runDan(['tasks'], { ...base, REDIS_URL: server.url(), DAN_CLIENT_REDIS_URL: `redis://${roleUser(network, 'client')}:wrong@127.0.0.1:${server.port}` });
    expect(wrong.exitCode).toBe(3);
    expect(String(wrong.stderr)).toMatch(/it refused the user or password: check REDIS_URL \(or DAN_CLIENT_REDIS_URL\)/);
    expect(String(wrong.stderr)).not.toContain(PASSWORD);
  }, 60_000);
});

describe("`dan up`'s own Redis", () => {
  it('has an admin password made once, kept 0600 in .dan, on loopback only; refuses a connection without it; the CLI and dashboard there connect as the client role', async () => {
    const port = await freePort();
    const webPort = await freePort();
    const folder = await mkdtemp(path.join(os.tmpdir(), 'dan-acl-up-'));
    const network = uniqueNetwork('aclup');
    const env = { REDIS_URL: `redis://127.0.0.1:${port}`, DAN_NETWORK: network, DAN_WORKSPACE: path.join(folder, 'workspace'), DAN_WEB_PORT: String(webPort) };
    const up = DanProcess.start(['up'], { ...env, AGENT_ID: 'orch-acl-up' }, folder);
    let admin: Redis | undefined;
    try {
      await eventually(() => up.logged('leader: scaling and reaping').length > 0 && /dashboard and API at/.test(up.text()), {
        what: '`dan up` to start Redis, lead and serve',
        timeoutMs: 60_000,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${up.text()}`);
      });
      const file = path.join(folder, '.dan', 'redis-password');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const password = (await readFile(file, 'utf8')).trim();
      expect(password).toMatch(/^[0-9a-f]{48}$/);

      // Without the password: refused.
      const refused = await connectRedis(`redis://127.0.0.1:${port}`, { mode: 'cli' }).then(
        (redis) => {
          redis.disconnect();
          return 'connected';
        },
        (error: Error) => String(error.cause),
      );
      expect(refused).toMatch(/NOAUTH/);
      admin = await connectRedis(`redis://:${password}@127.0.0.1:${port}`, { mode: 'cli' });
      expect(await admin.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
      // The password came on the server's stdin, not its command line (which `ps` shows every user).
      const pid = /^process_id:(\d+)/m.exec(await admin.info('server'))![1]!;
      expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(password);
      expect(up.text()).not.toContain(password);

      // The orchestrator set up the roles, and the dashboard's connections are the client role's.
      const clients = await eventually(
        async () => {
          const lines = String(await admin!.call('CLIENT', 'LIST')).split('\n');
          const web = lines.filter((l) => / name=dan-web/.test(l));
          return web.length > 0 ? { web, orchestrator: lines.filter((l) => / name=dan-orchestrator/.test(l)) } : undefined;
        },
        { what: 'the dashboard to connect' },
      );
      for (const line of clients.web) expect(line).toContain(`user=${roleUser(network, 'client')}`);
      for (const line of clients.orchestrator) expect(line).toContain('user=default');

      // The CLI run in that folder finds the password and connects as the client role.
      const doctor = await runDan(['doctor', '--json'], env, { cwd: folder });
      const checks = (JSON.parse(String(doctor.stdout)) as { checks: Array<{ name: string; found: string }> }).checks;
      expect(checks.find((c) => c.name === 'redis roles')?.found).toContain(`the CLI and dan serve connect as ${roleUser(network, 'client')}`);
      const agents = await runDan(['agents'], env, { cwd: folder });
      expect(agents.exitCode, String(agents.stderr)).toBe(0);
      expect(String(agents.stdout)).toContain('orch-acl-up');
      // From elsewhere it has no password, and says where to find it.
      const elsewhere = await runDan(['agents'], env);
      expect(elsewhere.exitCode).toBe(3);
      expect(String(elsewhere.stderr)).toMatch(/asks for a password: run dan in the folder you ran `dan up` in/);

      const down = await runDan(['down', '--timeout', '20000'], env, { cwd: folder });
      expect(down.exitCode, String(down.stderr)).toBe(0);
      expect(await up.exited, up.text()).toEqual({ code: 0, signal: null });
    } finally {
      admin?.disconnect();
      await up.stop(2000);
      await rm(folder, { recursive: true, force: true });
    }
  }, 120_000);
});
