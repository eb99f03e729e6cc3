import type { Redis } from '../messaging/index.js';

/**
 * The token an agent should get: the least used of the tokens that have room (fewer than `perToken` agents) and
 * are not `unavailable` (paused or rejected), the lowest index on a tie. Undefined when none has room. Pure.
 */
export function chooseToken(counts: readonly number[], perToken: number, unavailable: ReadonlySet<number> = new Set()): number | undefined {
  let best: number | undefined;
  for (const [index, count] of counts.entries()) {
    if (count >= perToken || unavailable.has(index)) continue;
    if (best === undefined || count < counts[best]!) best = index;
  }
  return best;
}

/**
 * Which subscription token (of CLAUDE_CODE_OAUTH_TOKEN's comma list) each agent was given, by index only, in
 * the hash `<prefix>tokens:agents` (agent id → index): durable, so that an orchestrator that takes over agrees
 * with the one before it on what is in use. An entry of an agent that is no longer alive nor starting is
 * dropped before each choice. Only the leader spawns, so only the leader writes here.
 */
export class TokenPool {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    /** How many tokens the pool holds. */
    readonly size: number,
    private readonly perToken: number,
  ) {}

  /** Agents per token index, counting only the agents in `present` (alive or starting); forgets the others. */
  async usage(present: ReadonlySet<string>): Promise<number[]> {
    const assigned = await this.redis.hgetall(this.key);
    const counts = new Array<number>(this.size).fill(0);
    const gone: string[] = [];
    for (const [agentId, value] of Object.entries(assigned)) {
      const index = Number(value);
      if (!present.has(agentId) || !Number.isInteger(index) || index < 0 || index >= this.size) gone.push(agentId);
      else counts[index]! += 1;
    }
    if (gone.length > 0) await this.redis.hdel(this.key, ...gone);
    return counts;
  }

  /**
   * Gives `agentId` the least used token with room, recorded before the agent is spawned; undefined when
   * every token has its `perToken` agents (or is unavailable).
   */
  async assign(agentId: string, present: ReadonlySet<string>, unavailable: ReadonlySet<number> = new Set()): Promise<number | undefined> {
    const index = chooseToken(await this.usage(present), this.perToken, unavailable);
    if (index !== undefined) await this.redis.hset(this.key, agentId, String(index));
    return index;
  }

  /** Forgets an agent's token (its spawn failed). */
  async release(agentId: string): Promise<void> {
    await this.redis.hdel(this.key, agentId);
  }

  /** Agent id → token index, as recorded. */
  async assignments(): Promise<Record<string, number>> {
    const assigned = await this.redis.hgetall(this.key);
    return Object.fromEntries(Object.entries(assigned).map(([id, index]) => [id, Number(index)]));
  }
}
