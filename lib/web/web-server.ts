import { existsSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ZodType } from 'zod';
import type { DanConfig } from '../config.js';
import { DanError } from '../errors.js';
import type { Logger } from '../log.js';
import { createRedis, type Bus } from '../messaging/index.js';
import { AgentRegistry } from '../registry/index.js';
import { MAX_CONTEXT_BYTES, MAX_DESCRIPTION_BYTES } from '../task.js';
import { parseInput } from '../task-request.js';
import type { ApiContext } from './api-context.js';
import type { ApiRoute } from './api-route.js';
import { assertSafeBind, bearerMatches, unauthorized } from './bearer-auth.js';
import { DanMetrics } from './dan-metrics.js';
import { serveDashboard } from './dashboard-files.js';
import { EventFeed } from './event-feed.js';
import { healthRoutes } from './health-routes.js';
import { httpErrorOf } from './http-error.js';
import { openApiDocument } from './openapi.js';
import { streamRoutes } from './stream-routes.js';
import { taskRoutes } from './task-routes.js';

/**
 * The largest request body: a task at its limits (64 KiB of description and of context), with room for JSON
 * escaping to double them, and the field names. Anything larger is refused before it is parsed.
 */
export const BODY_LIMIT_BYTES = 2 * (MAX_DESCRIPTION_BYTES + MAX_CONTEXT_BYTES) + 8 * 1024;

export interface WebServerOptions {
  config: DanConfig;
  /** The process's bus; the server does not close it. */
  bus: Bus;
  logger: Logger;
  /** The built dashboard (index.html and assets/); none: the API alone. @default none */
  dashboardDir?: string;
  /** @default 15000 */
  keepAliveMs?: number;
  version?: string;
}

/**
 * `dan serve`: the HTTP API, the dashboard and /metrics over one Fastify instance. Stateless: everything it
 * answers is read from Redis through the messaging layer at the time of the request. `create` builds it (no
 * I/O), `listen` binds, `close` stops it (twice is fine).
 */
export class WebServer {
  readonly routes: readonly ApiRoute[];
  readonly metrics: DanMetrics;
  private readonly feed: EventFeed;
  private closed = false;

  private constructor(
    readonly app: FastifyInstance,
    private readonly options: WebServerOptions,
  ) {
    const { config, bus, logger } = options;
    const registry = new AgentRegistry(bus.redis, bus.keys, { heartbeatTtlMs: config.heartbeatTtlMs });
    this.feed = new EventFeed(bus, logger);
    const ctx: ApiContext = {
      bus,
      registry,
      feed: this.feed,
      config,
      logger,
      keepAliveMs: options.keepAliveMs ?? 15_000,
      blockingConnection: () => {
        const redis = createRedis(config.redisUrl, { name: 'dan-web:follow' });
        redis.on('error', (error) => logger.debug({ err: error }, 'log follower connection error'));
        return redis;
      },
    };
    this.metrics = new DanMetrics({ bus, registry, feed: this.feed, templatesDir: config.templatesDir, logger });
    let document: Record<string, unknown> | undefined;
    const routes: ApiRoute[] = [...taskRoutes(ctx), ...streamRoutes(ctx)];
    routes.push(...healthRoutes(ctx, this.metrics, () => (document ??= openApiDocument(this.routes, { version: options.version ?? '0.0.0', tokenRequired: config.web.apiToken !== undefined }))));
    this.routes = routes;
  }

  /** Builds the server and its routes; refuses a non-loopback address without a token (ConfigError). */
  static async create(options: WebServerOptions): Promise<WebServer> {
    assertSafeBind(options.config.web);
    const app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });
    const server = new WebServer(app, options);
    await server.register();
    return server;
  }

  private async register(): Promise<void> {
    const { app } = this;
    const { config, logger } = this.options;
    const token = config.web.apiToken;
    app.setErrorHandler((error, request, reply) => {
      const answer = httpErrorOf(error);
      if (answer.status >= 500) logger.error({ err: error, method: request.method, url: request.url }, 'request failed');
      return reply.code(answer.status).send(answer.body);
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ error: { code: 'DAN_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
    );
    app.addHook('onResponse', async (request, reply) => {
      logger.debug({ method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    });
    for (const route of this.routes) {
      app.route({
        method: route.method,
        url: route.url,
        handler: async (request, reply) => {
          if (token !== undefined && route.auth !== false && !bearerMatches(request.headers.authorization, token)) throw unauthorized();
          const params = route.params ? parseParams(route.params, request.params) : request.params;
          const query = route.query ? parseParams(route.query, request.query) : request.query;
          const sse = (request.headers.accept ?? '').includes('text/event-stream');
          if (sse) this.metrics.sseClients.inc();
          try {
            return await route.handler({ params, query, body: request.body, request, reply });
          } finally {
            if (sse) this.metrics.sseClients.dec();
          }
        },
      });
    }
    if (this.options.dashboardDir && existsSync(this.options.dashboardDir)) await serveDashboard(app, this.options.dashboardDir);
    await app.ready();
  }

  /** Binds DAN_WEB_HOST:DAN_WEB_PORT (port 0: any free one) and starts counting events; returns the address. */
  async listen(): Promise<string> {
    await this.metrics.start();
    const { host, port } = this.options.config.web;
    await this.app.listen({ host, port });
    return this.url;
  }

  /** `http://host:port` as bound. */
  get url(): string {
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new DanError('DAN_RUNTIME', 'the web server is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.metrics.close();
    // Open SSE streams hold their sockets: end them so close() does not wait for the clients.
    this.app.server.closeAllConnections();
    await this.app.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Parses path or query parameters; a failure names the parameter as the CLI names its argument. */
function parseParams<T>(schema: ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const name = String(parsed.error.issues[0]?.path[0] ?? '');
  const field = (schema as unknown as { shape?: Record<string, ZodType> }).shape?.[name];
  if (field) parseInput(field, (value as Record<string, unknown>)[name], name === 'id' ? 'task id' : name);
  return parseInput(schema, value, 'the parameters');
}
