import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { Scripts } from './scripts.js';

/**
 * What pauses a scope: a subscription's usage window, a rate limit, an overloaded service, a credential the API
 * rejected (401: the token is marked bad and tried again only after the backoff).
 */
export type PauseKind = 'usage_limit' | 'rate_limit' | 'overloaded' | 'unauthorized';

/** A pause of a token (`token:<index>`) or of the whole network (`network`: an API key, Bedrock, Vertex). */
export interface Pause {
  scope: string;
  untilMs: number;
  kind: PauseKind;
  /** Limits in a row (the backoff's exponent). */
  failures: number;
  /** The CLI's own words. */
  message: string;
}

/** Whether an agent may start a CLI now; when not, why and until when it should not ask again. */
export type Admission =
  | { admitted: true }
  | { admitted: false; why: 'paused'; untilMs: number; pause: Pick<Pause, 'scope' | 'kind' | 'untilMs'> }
  | { admitted: false; why: 'budget'; untilMs: number; spentUsd: number; capUsd: number }
  | { admitted: false; why: 'full'; running: number; cap: number };

/** The network-wide limits the leader publishes from its configuration (DAN_MAX_RUNNING, DAN_DAILY_BUDGET_USD). */
export interface NetworkLimits {
  maxRunning?: number;
  dailyBudgetUsd?: number;
}

export interface RunGateOptions {
  now?: () => number;
  /** First backoff of a limit without a reset time. @default 30000 */
  backoffBaseMs?: number;
  /** Longest backoff. @default 900000 (15 minutes) */
  backoffMaxMs?: number;
}

/** Days a day's spend is kept (`dan tasks --cost` shows today's). */
const SPEND_TTL_S = 8 * 86_400;
/** The furthest ahead a reset time is believed: a weekly window at most. */
const MAX_RESET_AHEAD_MS = 7 * 86_400_000;

/** `YYYY-MM-DD` of a time, in UTC. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The start of the UTC day after the one `ms` falls in. */
export function nextUtcDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/**
 * Access and spend in Redis (issue 12): pauses after usage and rate limits, the running slots of DAN_MAX_RUNNING,
 * the spend of each UTC day by domain, and the limits the leader publishes. Every check-and-take is one script.
 */
export class RunGate {
  private readonly scripts: Scripts;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: RunGateOptions = {},
  ) {
    this.scripts = new Scripts(redis);
    this.now = options.now ?? Date.now;
  }

  /**
   * Admits a run of `taskId` by `agentId` when none of `scopes` is paused, today's spend is under the daily
   * budget and a running slot is free (taken then, until {@link release} or the agent's heartbeat ends).
   */
  async admit(agentId: string, taskId: string, scopes: readonly string[]): Promise<Admission> {
    const now = this.now();
    const reply = await this.scripts.admitRun(
      [this.keys.pauses, this.keys.limits, this.keys.spend(utcDay(now)), this.keys.running],
      [now, scopes.join(' '), slot(agentId, taskId), this.keys.heartbeat('{agent}'), nextUtcDay(now)],
    );
    switch (reply[0]) {
      case 'ok':
        return { admitted: true };
      case 'paused':
        return { admitted: false, why: 'paused', untilMs: Number(reply[1]), pause: { untilMs: Number(reply[1]), kind: reply[2] as PauseKind, scope: reply[3]! } };
      case 'budget':
        return { admitted: false, why: 'budget', untilMs: Number(reply[1]), spentUsd: Number(reply[2]), capUsd: Number(reply[3]) };
      default:
        return { admitted: false, why: 'full', running: Number(reply[1]), cap: Number(reply[2]) };
    }
  }

  /** Frees the running slot of a run. */
  async release(agentId: string, taskId: string): Promise<void> {
    await this.redis.hdel(this.keys.running, slot(agentId, taskId));
  }

  /** Pauses a scope after a limit; returns when the pause ends (ms). */
  async pause(scope: string, limit: { kind: PauseKind; resetsAt?: number; message: string }): Promise<number> {
    const until = await this.scripts.pauseScope(this.keys.pauses, [
      scope,
      this.now(),
      limit.resetsAt ?? '',
      limit.kind,
      limit.message.slice(0, 500),
      this.options.backoffBaseMs ?? 30_000,
      this.options.backoffMaxMs ?? 900_000,
      MAX_RESET_AHEAD_MS,
    ]);
    return Number(until);
  }

  /** The pauses that last now. */
  async pauses(): Promise<Pause[]> {
    const now = this.now();
    const all = await this.redis.hgetall(this.keys.pauses);
    const out: Pause[] = [];
    for (const [scope, raw] of Object.entries(all)) {
      try {
        const p = JSON.parse(raw) as { untilMs: string; kind: PauseKind; failures: string; message: string };
        if (Number(p.untilMs) > now) out.push({ scope, untilMs: Number(p.untilMs), kind: p.kind, failures: Number(p.failures), message: p.message });
      } catch {
        // a value another writer damaged: it pauses nothing (the admit script would fail on it and say so)
      }
    }
    return out.sort((a, b) => a.scope.localeCompare(b.scope));
  }

  /** Adds what a run cost to today's spend of its domain. */
  async addSpend(domain: string, usd: number): Promise<void> {
    if (!(usd > 0)) return;
    const key = this.keys.spend(utcDay(this.now()));
    await this.redis.multi().hincrbyfloat(key, domain, usd).expire(key, SPEND_TTL_S).exec();
  }

  /** Today's spend (UTC) by domain, in dollars. */
  async spendToday(): Promise<Record<string, number>> {
    const all = await this.redis.hgetall(this.keys.spend(utcDay(this.now())));
    return Object.fromEntries(Object.entries(all).map(([domain, usd]) => [domain, Number(usd)]));
  }

  /** Publishes the network's limits (the leader, from its configuration): an unset limit is removed. */
  async publishLimits(limits: NetworkLimits): Promise<void> {
    const tx = this.redis.multi();
    for (const field of ['maxRunning', 'dailyBudgetUsd'] as const) {
      const value = limits[field];
      if (value === undefined) tx.hdel(this.keys.limits, field);
      else tx.hset(this.keys.limits, field, String(value));
    }
    await tx.exec();
  }

  /** The limits in force (as the leader last published them). */
  async limits(): Promise<NetworkLimits> {
    const raw = await this.redis.hgetall(this.keys.limits);
    return {
      ...(raw.maxRunning !== undefined ? { maxRunning: Number(raw.maxRunning) } : {}),
      ...(raw.dailyBudgetUsd !== undefined ? { dailyBudgetUsd: Number(raw.dailyBudgetUsd) } : {}),
    };
  }

  /** The runs holding a slot now (`<agent>|<task>`), as recorded; a dead agent's are freed by the next admit. */
  async running(): Promise<string[]> {
    return this.redis.hkeys(this.keys.running);
  }
}

const slot = (agentId: string, taskId: string): string => `${agentId}|${taskId}`;

/** The pause scopes of an agent: its subscription token's, and the network's (which an API key's limit pauses). */
export function pauseScopes(tokenIndex: number | undefined): string[] {
  return tokenIndex === undefined ? ['network'] : [`token:${tokenIndex}`, 'network'];
}
