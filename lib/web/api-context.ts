import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Bus, Redis } from '../messaging/index.js';
import type { AgentRegistry } from '../registry/index.js';
import type { EventFeed } from './event-feed.js';

/** What the routes work with: the process's bus and registry, its event feed, its settings. */
export interface ApiContext {
  bus: Bus;
  registry: AgentRegistry;
  feed: EventFeed;
  config: DanConfig;
  logger: Logger;
  /** A new connection for one follower's blocking reads (XREAD BLOCK holds a connection); the caller closes it. */
  blockingConnection(): Redis;
  /** How long an SSE stream stays quiet before a keep-alive comment. */
  keepAliveMs: number;
}
