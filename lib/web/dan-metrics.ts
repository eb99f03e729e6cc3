import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { listDomains } from '../domains.js';
import type { Logger } from '../log.js';
import type { Bus } from '../messaging/index.js';
import type { AgentRegistry } from '../registry/index.js';
import { MAIN_DOMAIN, isTerminal, type DanEvent, type TaskRecord } from '../task.js';
import type { EventFeed } from './event-feed.js';

export interface DanMetricsDeps {
  bus: Bus;
  registry: AgentRegistry;
  feed: EventFeed;
  templatesDir: string;
  logger: Logger;
}

const TOKEN_KINDS = { input: 'input_tokens', output: 'output_tokens', cache_creation: 'cache_creation_input_tokens', cache_read: 'cache_read_input_tokens' } as const;

/**
 * The Prometheus metrics of `dan serve` (prom-client, its own registry). Counters and histograms count the
 * lifecycle events this process sees from the moment it starts (Prometheus handles the reset of a restart; with
 * several web processes, each counts every event: scrape one, or take `max` across them). Gauges (queues,
 * agents, the leader) are read from Redis at scrape time, so every process reports the same truth.
 */
export class DanMetrics {
  readonly registry = new Registry();
  private readonly created: Counter<'domain'>;
  private readonly ended: Counter<'domain' | 'status'>;
  private readonly handBacks: Counter<'domain'>;
  private readonly reaped: Counter<'domain'>;
  private readonly duration: Histogram<'domain' | 'status'>;
  private readonly dispatch: Histogram<'domain'>;
  private readonly cost: Counter<'domain'>;
  private readonly tokens: Counter<'domain' | 'kind'>;
  private readonly leaderChanges: Counter;
  private readonly merges: Counter<'domain' | 'state'>;
  private readonly verdicts: Counter<'gate' | 'verdict'>;
  readonly sseClients: Gauge;
  private lastLeader: string | null | undefined;
  /** Events are handled one after the other, so a record read for one never races the next. */
  private queue: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: DanMetricsDeps) {
    const registers = [this.registry];
    this.created = new Counter({ name: 'dan_tasks_created_total', help: 'Tasks created (sent, or made by a plan), by domain', labelNames: ['domain'], registers });
    this.ended = new Counter({ name: 'dan_tasks_ended_total', help: 'Tasks that ended, by domain and final status', labelNames: ['domain', 'status'], registers });
    this.handBacks = new Counter({ name: 'dan_task_handbacks_total', help: "Tasks taken back from an agent and queued again (a dead agent's, reaped; or one stopped mid-task)", labelNames: ['domain'], registers });
    this.reaped = new Counter({ name: 'dan_agents_reaped_total', help: 'Agents the reaper found dead (heartbeat expired), by domain', labelNames: ['domain'], registers });
    this.duration = new Histogram({
      name: 'dan_task_duration_seconds',
      help: 'From start (taken by an agent) to end, of tasks that ended, by domain and final status',
      labelNames: ['domain', 'status'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    });
    this.dispatch = new Histogram({
      name: 'dan_task_dispatch_latency_seconds',
      help: 'From creation to first start by an agent, by domain',
      labelNames: ['domain'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.cost = new Counter({ name: 'dan_task_cost_usd_total', help: 'Model cost in USD of tasks that ended, by domain', labelNames: ['domain'], registers });
    this.tokens = new Counter({ name: 'dan_task_tokens_total', help: 'Model tokens of tasks that ended, by domain and kind', labelNames: ['domain', 'kind'], registers });
    this.leaderChanges = new Counter({ name: 'dan_leader_changes_total', help: 'Changes of the orchestrator lease holder seen between scrapes', registers });
    this.merges = new Counter({ name: 'dan_merges_total', help: "What became of ended tasks' changes (git workspaces): merged, conflict, blocked, skipped, nothing to commit", labelNames: ['domain', 'state'], registers });
    this.verdicts = new Counter({ name: 'dan_review_verdicts_total', help: 'Review gate runs that ended, by gate and verdict (pass, fail, or none: the reviewer gave no valid verdict)', labelNames: ['gate', 'verdict'], registers });
    this.sseClients = new Gauge({ name: 'dan_web_sse_clients', help: 'Open server-sent-event streams of this web process', registers });
    const self = this;
    new Gauge({
      name: 'dan_queue_waiting',
      help: 'Tasks waiting on a domain queue (read from Redis at scrape time)',
      labelNames: ['domain'],
      registers,
      async collect() {
        await self.collectQueues(this, 'waiting');
      },
    });
    new Gauge({
      name: 'dan_queue_active',
      help: 'Tasks taken from a domain queue by an agent (read from Redis at scrape time)',
      labelNames: ['domain'],
      registers,
      async collect() {
        await self.collectQueues(this, 'active');
      },
    });
    new Gauge({
      name: 'dan_agents',
      help: "Registered agents by domain and status ('dead': heartbeat expired, not yet reaped), read at scrape time",
      labelNames: ['domain', 'status'],
      registers,
      async collect() {
        this.reset();
        for (const agent of await self.deps.registry.list()) this.inc({ domain: agent.domain, status: agent.alive ? agent.status : 'dead' });
      },
    });
    new Gauge({
      name: 'dan_leader_present',
      help: 'Whether an orchestrator holds the lease (read at scrape time)',
      registers,
      async collect() {
        const holder = await self.deps.bus.redis.get(self.deps.bus.keys.leader);
        if (self.lastLeader !== undefined && holder !== null && holder !== self.lastLeader) self.leaderChanges.inc();
        if (holder !== null) self.lastLeader = holder;
        else self.lastLeader ??= null;
        this.set(holder === null ? 0 : 1);
      },
    });
  }

  /** Starts counting the network's events. */
  async start(): Promise<void> {
    this.unsubscribe ??= await this.deps.feed.subscribe((e) => {
      // Chained and caught here: a failed record read is logged, and the next event still counts.
      this.queue = this.queue.then(() => this.count(e)).catch((error: unknown) => this.deps.logger.warn({ err: error, event: e }, 'metrics: event not counted'));
    });
  }

  /** The text exposition format. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Resolves once every event received so far is counted. */
  async settled(): Promise<void> {
    await this.queue;
  }

  close(): void {
    this.unsubscribe?.();
  }

  private async collectQueues(gauge: Gauge<'domain'>, which: 'waiting' | 'active'): Promise<void> {
    gauge.reset();
    for (const domain of [MAIN_DOMAIN, ...listDomains(this.deps.templatesDir)]) gauge.set({ domain }, (await this.deps.bus.queues.counts(domain))[which]);
  }

  private async count(e: DanEvent): Promise<void> {
    if (e.kind === 'agent') {
      if (e.status === 'dead') this.reaped.inc({ domain: e.domain });
      return;
    }
    // A new record's event carries no reason; every transition's carries its log text.
    if ((e.status === 'queued' || e.status === 'waiting') && e.reason === undefined) this.created.inc({ domain: e.domain });
    if (e.status === 'queued' && e.agent !== undefined) this.handBacks.inc({ domain: e.domain });
    if (e.status === 'active') {
      const record = await this.deps.bus.tasks.find(e.id);
      if (record?.startedAt !== undefined && record.attempts === 1) this.dispatch.observe({ domain: e.domain }, Math.max(0, record.startedAt - record.createdAt) / 1000);
    }
    if (isTerminal(e.status)) {
      this.ended.inc({ domain: e.domain, status: e.status });
      const record = await this.deps.bus.tasks.find(e.id);
      if (record) this.observeEnd(record);
    }
  }

  private observeEnd(record: TaskRecord): void {
    const domain = record.domain;
    if (record.startedAt !== undefined && record.finishedAt !== undefined) {
      this.duration.observe({ domain, status: record.status }, Math.max(0, record.finishedAt - record.startedAt) / 1000);
    }
    if (record.costUsd !== undefined) this.cost.inc({ domain }, record.costUsd);
    if (record.git?.merge !== undefined && !record.review) this.merges.inc({ domain, state: record.git.merge });
    if (record.review) this.verdicts.inc({ gate: record.review.gate, verdict: record.verdict?.verdict ?? 'none' });
    for (const [kind, field] of Object.entries(TOKEN_KINDS)) {
      const value = record.usage?.[field];
      if (typeof value === 'number' && value > 0) this.tokens.inc({ domain, kind }, value);
    }
  }
}
