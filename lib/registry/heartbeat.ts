import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { AgentRegistry } from './agent-registry.js';

export interface HeartbeatOptions {
  intervalMs: number;
  /**
   * A file rewritten after every successful renewal (and at start), so a container HEALTHCHECK can tell a live
   * agent from a wedged one without Redis. A failure to write it is reported as 'error' and changes nothing else.
   */
  healthFile?: string;
  /** The tasks the agent runs now: each renewal also reports those whose record asks for a cancel. */
  tasks?: () => readonly string[];
}

/**
 * Renews an agent's heartbeat every interval. Emits 'reaped' once when the registry says the agent has been
 * reaped (it must stop its work without recording a result, and exit), 'cancel' (on every renewal, until the task
 * ends) for a running task whose record asks for a cancel, and 'error' when a renewal fails (Redis down: the loop
 * keeps trying, the TTL decides).
 */
export class Heartbeat extends EventEmitter<{ reaped: []; cancel: [taskId: string, reason: string]; error: [Error] }> {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private reaped = false;

  constructor(
    private readonly registry: AgentRegistry,
    private readonly agentId: string,
    private readonly options: HeartbeatOptions,
  ) {
    super();
  }

  start(): void {
    if (this.timer || this.stopped) return;
    void this.touch(); // reports its own failure as 'error'
    const tick = async (): Promise<void> => {
      try {
        const { alive, cancelled } = await this.registry.beat(this.agentId, this.options.tasks?.() ?? []);
        if (!alive && !this.reaped) {
          this.reaped = true;
          this.emit('reaped');
        }
        if (alive) {
          for (const { taskId, reason } of cancelled) this.emit('cancel', taskId, reason);
          await this.touch();
        }
      } catch (error) {
        this.emit('error', error as Error);
      }
      if (!this.stopped && !this.reaped) this.timer = setTimeout(() => void tick(), this.options.intervalMs);
    };
    // tick() reports a failed renewal as 'error' and never rejects.
    this.timer = setTimeout(() => void tick(), this.options.intervalMs);
  }

  private async touch(): Promise<void> {
    if (!this.options.healthFile) return;
    await writeFile(this.options.healthFile, `${Date.now()}\n`).catch((error: Error) => this.emit('error', error));
  }

  get isReaped(): boolean {
    return this.reaped;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
