import type { Redis } from 'ioredis';
import { commitPlan } from './lua/commit-plan.js';
import { createTask } from './lua/create-task-5.js';
import { expireEnded } from './lua/expire-ended-4.js';
import { requestCancel } from './lua/request-cancel-2.js';
import { acquireLease, heartbeat, reap, releaseLease } from './lua/registry.js';
import { admitRun, pauseScope } from './lua/run-gate.js';
import { transition } from './lua/transition-4.js';

const DEFINITIONS = {
  danCreateTask: { numberOfKeys: 5, lua: createTask },
  danExpireEnded: { numberOfKeys: 4, lua: expireEnded },
  // A variable number of keys: the count is the first argument of each call.
  danCommitPlan: { lua: commitPlan },
  danTransition: { numberOfKeys: 4, lua: transition },
  danRequestCancel: { numberOfKeys: 2, lua: requestCancel },
  // A variable number of keys: the count is the first argument of each call.
  danHeartbeat: { lua: heartbeat },
  danReap: { numberOfKeys: 4, lua: reap },
  danAcquireLease: { numberOfKeys: 1, lua: acquireLease },
  danReleaseLease: { numberOfKeys: 1, lua: releaseLease },
  danAdmitRun: { numberOfKeys: 4, lua: admitRun },
  danPauseScope: { numberOfKeys: 1, lua: pauseScope },
} as const;

type ScriptName = keyof typeof DEFINITIONS;
type ScriptArg = string | number;

/**
 * The one gateway to dan's Lua scripts. ioredis sends EVALSHA and falls back to EVAL, so scripts survive a
 * Redis restart that flushed the script cache.
 */
export class Scripts {
  private static readonly defined = new WeakSet<Redis>();

  constructor(private readonly redis: Redis) {
    if (!Scripts.defined.has(redis)) {
      for (const [name, definition] of Object.entries(DEFINITIONS)) redis.defineCommand(name, definition);
      Scripts.defined.add(redis);
    }
  }

  private call<T>(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<T> {
    const command = (this.redis as unknown as Record<ScriptName, (...a: ScriptArg[]) => Promise<T>>)[name];
    return command.call(this.redis, ...keys, ...args);
  }

  createTask(keys: [string, string, string, string, string], args: ScriptArg[]): Promise<number> {
    return this.call('danCreateTask', keys, args);
  }

  expireEnded(keys: [string, string, string, string], args: ScriptArg[]): Promise<[number, number]> {
    return this.call('danExpireEnded', keys, args);
  }

  commitPlan(keys: string[], args: ScriptArg[]): Promise<'ok' | 'fenced' | 'planned' | 'exists'> {
    return this.call('danCommitPlan', [String(keys.length), ...keys], args);
  }

  transition(keys: [string, string, string, string], args: ScriptArg[]): Promise<[string, string, string]> {
    return this.call('danTransition', keys, args);
  }

  requestCancel(keys: [string, string], args: ScriptArg[]): Promise<[string, string, string]> {
    return this.call('danRequestCancel', keys, args);
  }

  heartbeat(keys: string[], args: ScriptArg[]): Promise<Array<number | string>> {
    return this.call('danHeartbeat', [String(keys.length), ...keys], args);
  }

  reap(keys: [string, string, string, string], args: ScriptArg[]): Promise<string[]> {
    return this.call('danReap', keys, args);
  }

  acquireLease(key: string, holder: string, ttlMs: number): Promise<number> {
    return this.call('danAcquireLease', [key], [holder, ttlMs]);
  }

  releaseLease(key: string, holder: string): Promise<number> {
    return this.call('danReleaseLease', [key], [holder]);
  }

  admitRun(keys: [string, string, string, string], args: ScriptArg[]): Promise<string[]> {
    return this.call('danAdmitRun', keys, args);
  }

  pauseScope(key: string, args: ScriptArg[]): Promise<string> {
    return this.call('danPauseScope', [key], args);
  }
}
