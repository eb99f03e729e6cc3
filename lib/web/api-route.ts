import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';

/** One answer of a route, as the OpenAPI document describes it. */
export interface RouteResponse {
  description: string;
  /** JSON body (application/json). */
  schema?: z.ZodType;
  /** Other content types the route answers with (text/event-stream, text/plain …), each with a description. */
  other?: Record<string, string>;
}

/** What a handler gets: the parsed params, query and body, and the raw request and reply. */
export interface RouteInput<P, Q> {
  params: P;
  query: Q;
  body: unknown;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One HTTP route: what the server registers and what the OpenAPI document says, from the same zod schemas, so
 * the two cannot drift. Params and query are parsed with `params`/`query` before the handler runs (a failure is
 * a 400 naming the parameter); a body is parsed by the handler, with the CLI's own validation.
 */
export interface ApiRoute<P = unknown, Q = unknown> {
  method: 'GET' | 'POST';
  /** Fastify's form: `/api/tasks/:id`. */
  url: string;
  summary: string;
  description?: string;
  tag: 'tasks' | 'agents' | 'events' | 'health' | 'metrics' | 'meta';
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** The request body (application/json), for the document. */
  body?: z.ZodType;
  /** Whether the bearer token is needed when one is set. @default true */
  auth?: boolean;
  responses: Record<number, RouteResponse>;
  /** Returns the JSON answer (status from `reply.code()`, default 200), or handles the reply itself (SSE). */
  handler: (input: RouteInput<P, Q>) => Promise<unknown>;
}

/** Keeps a route's params and query types for its handler, and erases them for the route table. */
export const defineRoute = <P, Q>(route: ApiRoute<P, Q>): ApiRoute => route as unknown as ApiRoute;
