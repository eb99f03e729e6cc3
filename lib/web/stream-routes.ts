import { z } from 'zod';
import { followTask, type StoredLogEntry } from '../messaging/index.js';
import type { DanEvent } from '../task.js';
import { logLinesSchema } from '../task-request.js';
import type { ApiContext } from './api-context.js';
import { defineRoute, type ApiRoute } from './api-route.js';
import { errorSchema, idParamsSchema, storedLogEntrySchema } from './api-schemas.js';
import { eventId, eventIdTime } from './event-feed.js';
import { SseStream } from './sse-stream.js';

const streamIdSchema = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'is not a log entry id (`<ms>-<seq>`)');

const logQuerySchema = z.object({
  last: logLinesSchema.optional().describe('only the newest this many history entries'),
  after: streamIdSchema.optional().describe('only entries after this id (what Last-Event-ID does for the stream)'),
});

const wantsEventStream = (accept: string | undefined): boolean => (accept ?? '').split(',').some((t) => t.trim().startsWith('text/event-stream'));

const lastEventId = (header: string | string[] | undefined): string | undefined => (Array.isArray(header) ? header[0] : header)?.trim() || undefined;

/** The task log (JSON or SSE) and the network's events (SSE). */
export function streamRoutes(ctx: ApiContext): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/tasks/:id/log',
      tag: 'tasks',
      summary: "a task's log (a goal's interleaved with its subtasks'): history as JSON, or history then live as SSE",
      description:
        'With `Accept: text/event-stream`: every history entry, then each new one as it is written, as `entry` events whose id is the ' +
        'entry\'s stream id, with no gap and no duplicate (as `dan logs --follow`); an `end` event with the record once the task ended. ' +
        'A client that reconnects with `Last-Event-ID` gets exactly the entries after it.',
      params: idParamsSchema,
      query: logQuerySchema,
      responses: {
        200: {
          description: 'the log',
          schema: z.object({ entries: z.array(storedLogEntrySchema) }),
          other: { 'text/event-stream': '`entry` events (data: a log entry as in the JSON answer), then `end` (data: {status})' },
        },
        400: { description: 'bad input', schema: errorSchema },
        401: { description: 'no or wrong token', schema: errorSchema },
        404: { description: 'no task with that id', schema: errorSchema },
      },
      handler: async ({ params, query, request, reply }) => {
        const record = await ctx.bus.tasks.get(params.id); // 404 before a stream opens
        const resume = lastEventId(request.headers['last-event-id']);
        const after = resume === undefined ? query.after : streamIdSchema.safeParse(resume).success ? resume : query.after;
        if (!wantsEventStream(request.headers.accept)) {
          const entries: StoredLogEntry[] = [];
          // An aborted follow reads the history and stops; it never blocks, so the shared connection serves.
          await followTask(ctx.bus, record.id, { untilDone: false, signal: AbortSignal.abort(), blocking: ctx.bus.redis, last: query.last, after, onEntry: (e) => entries.push(e) });
          return { entries };
        }
        const stream = SseStream.open(reply, { keepAliveMs: ctx.keepAliveMs });
        const stop = new AbortController();
        void stream.closed.then(() => stop.abort()); // resolves only: never rejects
        const blocking = ctx.blockingConnection();
        try {
          const final = await followTask(ctx.bus, record.id, {
            last: query.last,
            after,
            blocking,
            signal: stop.signal,
            onEntry: (e) => stream.send('entry', e, e.id),
          });
          if (!stop.signal.aborted) stream.send('end', { status: final.status });
        } catch (error) {
          if (!stop.signal.aborted) {
            ctx.logger.warn({ err: error, taskId: record.id }, 'task log stream failed');
            stream.send('error', { error: { code: 'DAN_INTERNAL', message: 'the log could not be read; reconnect to resume' } });
          }
        } finally {
          blocking.disconnect();
          stream.close();
        }
        return undefined;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events',
      tag: 'events',
      summary: 'live lifecycle events of tasks and agents, as SSE',
      description:
        'Each event of `<network>:events` as an SSE `task` or `agent` event (data: the event). A client that reconnects with ' +
        '`Last-Event-ID` first gets the task events it missed (rebuilt from the task logs), then the live ones.',
      responses: {
        200: { description: 'the event stream', other: { 'text/event-stream': '`task` and `agent` events (data: the event, as on the events channel)' } },
        401: { description: 'no or wrong token', schema: errorSchema },
      },
      handler: async ({ request, reply }) => {
        const resumeFrom = lastEventId(request.headers['last-event-id']);
        const since = eventIdTime(resumeFrom);
        const stream = SseStream.open(reply, { keepAliveMs: ctx.keepAliveMs });
        const send = (e: DanEvent): void => stream.send(e.kind, e, eventId(e));
        // Subscribe before reading what was missed, holding live events back until the replay is out: no gap.
        let held: DanEvent[] | undefined = since === undefined ? undefined : [];
        const unsubscribe = await ctx.feed.subscribe((e) => (held ? held.push(e) : send(e)));
        try {
          if (since !== undefined && held) {
            const replayed = await ctx.feed.taskEventsSince(since);
            const sent = new Set(replayed.map(eventId));
            for (const e of replayed) if (eventId(e) !== resumeFrom) send(e);
            for (const e of held) if (!sent.has(eventId(e))) send(e);
            held = undefined;
          }
          stream.send('ready', { ts: Date.now() });
          await stream.closed;
        } finally {
          unsubscribe();
          stream.close();
        }
        return undefined;
      },
    }),
  ];
}
