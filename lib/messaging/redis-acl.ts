import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Redis ACL users per role (docs/SECURITY.md, *Redis roles*). The orchestrator holds the admin URL (REDIS_URL: the
 * `default` user or any user allowed `ACL SETUSER`) and, when it starts, creates or updates one user per role
 * of its network:
 *
 * - `dan-<network>-agent`: what a domain agent needs (its network's keys, BullMQ's included, and channels;
 *   scripts; INFO, which BullMQ reads for the server version), none of the dangerous or keyspace-wide commands.
 * - `dan-<network>-client`: what `dan send-task / status / logs / cancel` and `dan serve` need: the same set.
 *
 * Passwords are derived, never stored: HMAC-SHA256 of the admin password over the role and the network, so
 * every orchestrator of the network computes the same ones and Redis holds only their hashes.
 */
export type RedisRole = 'agent' | 'client';
export const REDIS_ROLES: readonly RedisRole[] = ['agent', 'client'];

/** Commands no role but the admin gets, beyond Redis's own `@dangerous` category (which holds KEYS, FLUSHALL,
 * CONFIG, SHUTDOWN, ACL, DEBUG, REPLICAOF, MONITOR, CLIENT KILL/LIST/PAUSE, SORT, MIGRATE, RESTORE …). */
const DENIED = [
  // Keyspace-wide: every key name of every network, whatever the key patterns say.
  'scan', 'randomkey',
  // Another database: the key patterns hold there too, but nothing of dan lives there.
  'select', 'move', 'copy',
  // Scripts and functions of everyone.
  'script|flush', 'script|kill', 'function',
  // Server-wide state.
  'client|no-touch', 'client|tracking', 'client|reply',
];

/** Allowed although `@dangerous` holds it (INFO) or not every version lists it under `@connection`. */
const ALLOWED = ['info', 'client|setname', 'client|getname', 'client|setinfo', 'client|id'];

/** The ACL user of a role on a network. */
export function roleUser(network: string, role: RedisRole): string {
  return `dan-${network}-${role}`;
}

/** The role's password: HMAC-SHA256(admin password, `dan:<network>:<role>`), hex. */
export function rolePassword(adminPassword: string, network: string, role: RedisRole): string {
  return createHmac('sha256', adminPassword).update(`dan:${network}:${role}`).digest('hex');
}

/**
 * The rules of a role's user (after `reset`): on, its password, the network's keys (`<network>:*`, which also
 * holds BullMQ's `<network>:q:*`) and channels, every command but the dangerous and keyspace-wide ones, plus
 * INFO and CLIENT SETNAME/GETNAME/SETINFO/ID, which ioredis and BullMQ send.
 */
export function roleRules(network: string, password: string, known: (command: string) => boolean = () => true): string[] {
  return [
    'reset',
    'on',
    `>${password}`,
    `~${network}:*`,
    `&${network}:*`,
    '+@all',
    '-@dangerous',
    ...DENIED.filter(known).map((command) => `-${command}`),
    ...ALLOWED.filter(known).map((command) => `+${command}`),
  ];
}

/** Which of the commands the rules name this Redis knows (ACL SETUSER refuses an unknown one: CLIENT SETINFO is 7.2). */
async function knownCommands(redis: Redis): Promise<(command: string) => boolean> {
  const names = [...DENIED, ...ALLOWED];
  const info = (await redis.call('COMMAND', 'INFO', ...names)) as unknown[];
  const known = new Set(names.filter((_, i) => info[i] !== null && info[i] !== undefined));
  return (command) => known.has(command);
}

/** The admin password in a Redis URL, or undefined when it has none. */
export function urlPassword(url: string): string | undefined {
  const password = decodeURIComponent(new URL(url).password);
  return password === '' ? undefined : password;
}

/**
 * `url` with the role's user and password (host, port, database and TLS as they were). Undefined when `adminUrl`
 * carries no password: a Redis without one has no users to separate (docs/SECURITY.md says what isolation is left).
 */
export function roleUrl(url: string, adminUrl: string, network: string, role: RedisRole): string | undefined {
  const admin = urlPassword(adminUrl);
  if (admin === undefined) return undefined;
  const parsed = new URL(url);
  parsed.username = roleUser(network, role);
  parsed.password = rolePassword(admin, network, role);
  return parsed.toString();
}

/**
 * The URL a client of the bus (the `dan` CLI's commands, `dan serve`) connects with, from the URL it was given:
 * an admin URL (a password, and no role user named) becomes the client role's; a role's URL, or one without a
 * password (no roles to take), is used as it is.
 */
export function clientRoleUrl(url: string, network: string): string {
  if (decodeURIComponent(new URL(url).username).startsWith(`dan-${network}-`)) return url;
  return roleUrl(url, url, network, 'client') ?? url;
}

/** Whether `error` (or its cause) is Redis refusing a user and password: WRONGPASS, or NOAUTH from an older Redis. */
export function isAuthError(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (/WRONGPASS|NOAUTH|invalid username-password/i.test(e.message)) return true;
  }
  return false;
}

/** What {@link ensureRoleUsers} did: the users it set, or why it set none. */
export type RoleSetup = { kind: 'set'; users: string[] } | { kind: 'no-password' } | { kind: 'no-acl'; reason: string };

/**
 * Creates or updates the role users of a network (ACL SETUSER, idempotent: every orchestrator runs it when it
 * starts). Needs a connection as a user allowed ACL SETUSER. A Redis older than 6 (no ACL) or one that forbids
 * ACL (some managed services) is reported, not thrown: the caller then gives agents the admin URL and says so.
 */
export async function ensureRoleUsers(admin: Redis, adminUrl: string, network: string): Promise<RoleSetup> {
  const password = urlPassword(adminUrl);
  if (password === undefined) return { kind: 'no-password' };
  const users: string[] = [];
  try {
    const known = await knownCommands(admin);
    for (const role of REDIS_ROLES) {
      const user = roleUser(network, role);
      await admin.call('ACL', 'SETUSER', user, ...roleRules(network, rolePassword(password, network, role), known));
      users.push(user);
    }
  } catch (error) {
    return { kind: 'no-acl', reason: (error as Error).message.split('\n')[0]! };
  }
  return { kind: 'set', users };
}

/** The user a connection is authenticated as (ACL WHOAMI), or undefined on a Redis without ACL. */
export async function whoAmI(redis: Redis): Promise<string | undefined> {
  try {
    return String(await redis.call('ACL', 'WHOAMI'));
  } catch {
    return undefined;
  }
}
