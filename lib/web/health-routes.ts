import { z } from 'zod';
import type { ApiContext } from './api-context.js';
import { defineRoute, type ApiRoute } from './api-route.js';
import { errorSchema } from './api-schemas.js';
import type { DanMetrics } from './dan-metrics.js';

/** How long /readyz waits for Redis to answer. */
const READY_TIMEOUT_MS = 2000;

/** /healthz, /readyz, /metrics and the document itself. */
export function healthRoutes(ctx: ApiContext, metrics: DanMetrics, document: () => Record<string, unknown>): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      tag: 'health',
      auth: false,
      summary: 'the process is up',
      responses: { 200: { description: 'up', schema: z.object({ ok: z.literal(true) }) } },
      handler: async () => ({ ok: true }),
    }),
    defineRoute({
      method: 'GET',
      url: '/readyz',
      tag: 'health',
      auth: false,
      summary: 'Redis answers',
      responses: {
        200: { description: 'ready', schema: z.object({ ok: z.literal(true) }) },
        503: { description: 'Redis does not answer', schema: errorSchema },
      },
      handler: async ({ reply }) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS)));
        const answer = await Promise.race([ctx.bus.redis.ping().catch(() => 'failed'), timeout]).finally(() => clearTimeout(timer));
        if (answer === 'PONG') return { ok: true };
        reply.code(503);
        return { error: { code: 'DAN_REDIS_UNREACHABLE', message: `Redis does not answer (${answer})` } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      tag: 'metrics',
      summary: 'Prometheus metrics (text exposition format)',
      responses: {
        200: { description: 'the metrics', other: { 'text/plain': 'Prometheus text format 0.0.4' } },
        401: { description: 'no or wrong token', schema: errorSchema },
      },
      handler: async ({ reply }) => {
        const text = await metrics.text();
        void reply.type(metrics.contentType); // returns the reply itself, not a promise
        return text;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/openapi.json',
      tag: 'meta',
      auth: false,
      summary: 'this document',
      responses: { 200: { description: 'the OpenAPI 3.1 document', schema: z.record(z.string(), z.unknown()) } },
      handler: async () => document(),
    }),
  ];
}
