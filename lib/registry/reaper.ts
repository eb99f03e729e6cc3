import type { AgentRecord, AgentRegistry } from './agent-registry.js';

/**
 * Called for each reaped agent until it succeeds once. `resumed` is true when an earlier call (this reaper's or a
 * reaper that died) did not finish: the handler must be idempotent.
 */
export type ReapHandler = (agent: AgentRecord, resumed: boolean) => Promise<void>;

/**
 * The reaper's core, a durable two-step: (1) finds agents whose heartbeat expired and reaps each atomically (so
 * two reapers racing never both act on one agent), which also puts it on the to-release list; (2) hands each to
 * the handlers in order, and takes it off the list only when every handler succeeded. Each cycle first resumes
 * what is still on the list, so a reaper that crashed or failed between the two steps leaves nothing behind. A
 * failing handler is reported and does not stop the others.
 */
export class Reaper {
  private readonly handlers: ReapHandler[] = [];

  constructor(
    private readonly registry: AgentRegistry,
    private readonly onError: (error: Error, agent: AgentRecord) => void = () => {},
    private readonly options: {
      /** An agent on the to-release list is resumed once it was reaped this long ago. @default 5000 */
      resumeAfterMs?: number;
    } = {},
  ) {}

  onReap(handler: ReapHandler): this {
    this.handlers.push(handler);
    return this;
  }

  /** One cycle; returns the agents this reaper reaped in it (not the ones it resumed). */
  async reapOnce(): Promise<AgentRecord[]> {
    for (const agent of await this.registry.pendingRelease(this.options.resumeAfterMs ?? 5000)) await this.release(agent, true);
    const reaped: AgentRecord[] = [];
    for (const id of await this.registry.expired()) {
      const agent = await this.registry.reap(id);
      if (!agent) continue;
      reaped.push(agent);
      await this.release(agent, false);
    }
    return reaped;
  }

  private async release(agent: AgentRecord, resumed: boolean): Promise<void> {
    let failed = false;
    for (const handler of this.handlers) {
      try {
        await handler(agent, resumed);
      } catch (error) {
        failed = true;
        this.onError(error as Error, agent);
      }
    }
    if (!failed) await this.registry.released(agent.id);
  }
}
