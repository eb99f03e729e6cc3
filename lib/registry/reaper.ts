import type { AgentRecord, AgentRegistry } from './agent-registry.js';

/** Called once per reaped agent, by exactly one reaper. */
export type ReapHandler = (agent: AgentRecord) => Promise<void>;

/**
 * The reaper's core: finds agents whose heartbeat expired, reaps each atomically (so two reapers racing
 * never both act on one agent), and hands each reaped agent to the handlers in order. A failing handler is
 * reported and does not stop the others.
 */
export class Reaper {
  private readonly handlers: ReapHandler[] = [];

  constructor(
    private readonly registry: AgentRegistry,
    private readonly onError: (error: Error, agent: AgentRecord) => void = () => {},
  ) {}

  onReap(handler: ReapHandler): this {
    this.handlers.push(handler);
    return this;
  }

  /** One cycle; returns the agents this reaper reaped. */
  async reapOnce(): Promise<AgentRecord[]> {
    const reaped: AgentRecord[] = [];
    for (const id of await this.registry.expired()) {
      const agent = await this.registry.reap(id);
      if (!agent) continue;
      reaped.push(agent);
      for (const handler of this.handlers) {
        try {
          await handler(agent);
        } catch (error) {
          this.onError(error as Error, agent);
        }
      }
    }
    return reaped;
  }
}
