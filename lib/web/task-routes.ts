import { z } from 'zod';
import { assertKnownDomain, listDomains } from '../domains.js';
import { BadInputError } from '../errors.js';
import { checkFollowUp } from '../follow-up.js';
import { answerSchema, MAIN_DOMAIN, taskStatusSchema } from '../task.js';
import { listLimitSchema, specFromRequest, taskRequestSchema, type FieldNames } from '../task-request.js';
import type { ApiContext } from './api-context.js';
import { defineRoute, type ApiRoute } from './api-route.js';
import {
  agentSchema,
  asAgentAnswer,
  asTaskAnswer,
  cancelAnswerSchema,
  errorSchema,
  idParamsSchema,
  overviewSchema,
  taskRecordSchema,
  taskWithSubtasksSchema,
} from './api-schemas.js';

/** How the API names the fields in its messages: as the JSON body does. */
const API_FIELDS: FieldNames = { domain: 'domain', description: 'description', priority: 'priority', timeoutS: 'timeoutS', context: 'context', noMerge: 'noMerge', model: 'model', effort: 'effort', fallbackModel: 'fallbackModel', budgetUsd: 'budgetUsd', follows: 'follows', gates: 'gates' };

const badInput = { description: 'bad input: nothing was written', schema: errorSchema };
const unauthorized = { description: 'DAN_API_TOKEN is set and the request lacks `Authorization: Bearer <token>`', schema: errorSchema };
const unknownTask = { description: 'no task with that id', schema: errorSchema };

const answerBodySchema = z.object({ text: answerSchema.describe('your answer (1 byte to 64 KiB)') }).strict();

const listQuerySchema = z.object({
  domain: z.string().optional().describe('only this domain'),
  status: taskStatusSchema.optional().describe('only this status'),
  limit: listLimitSchema.default(20).describe('at most this many, newest first (1 to 1000, default 20)'),
});

/** The task and agent routes of the API. */
export function taskRoutes(ctx: ApiContext): ApiRoute[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/tasks',
      tag: 'tasks',
      summary: 'send a task (`dan send-task`)',
      description: 'Validated exactly as `dan send-task` is, before anything is written; 201 once the record is durable and the task on its queue.',
      body: taskRequestSchema,
      responses: { 201: { description: 'the task is queued', schema: z.object({ id: z.string() }) }, 400: badInput, 401: unauthorized },
      handler: async ({ body, reply }) => {
        if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadInputError('the body must be a JSON object: {"domain": …, "description": …}');
        const unknown = Object.keys(body).filter((k) => !(k in taskRequestSchema.shape));
        if (unknown.length > 0) throw new BadInputError(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: the fields are ${Object.keys(taskRequestSchema.shape).join(', ')}`);
        const spec = specFromRequest(body, ctx.config, API_FIELDS);
        const follows = spec.follows;
        const record = follows
          ? (await ctx.bus.submitFollowUp({ ...spec, follows }, await checkFollowUp(ctx.bus.tasks, ctx.config.network, follows, spec.domain, 'follows'))).record
          : await ctx.bus.submit(spec);
        reply.code(201);
        return { id: record.id };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tasks',
      tag: 'tasks',
      summary: 'list tasks, newest first (`dan tasks`)',
      query: listQuerySchema,
      responses: { 200: { description: 'the tasks', schema: z.object({ tasks: z.array(taskRecordSchema) }) }, 400: badInput, 401: unauthorized },
      handler: async ({ query }) => {
        if (query.domain !== undefined) assertKnownDomain(ctx.config.templatesDir, query.domain);
        const tasks = await ctx.bus.tasks.list({ domain: query.domain, status: query.status, limit: query.limit });
        return { tasks: tasks.map(asTaskAnswer) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tasks/:id',
      tag: 'tasks',
      summary: "a task's record; a goal's with its subtasks (`dan status --json`)",
      params: idParamsSchema,
      responses: { 200: { description: 'the record', schema: taskWithSubtasksSchema }, 400: badInput, 401: unauthorized, 404: unknownTask },
      handler: async ({ params }) => {
        const record = await ctx.bus.tasks.get(params.id);
        if (record.children.length === 0) return asTaskAnswer(record);
        return { ...asTaskAnswer(record), subtasks: (await ctx.bus.tasks.getMany(record.children)).map(asTaskAnswer) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tasks/:id/cancel',
      tag: 'tasks',
      summary: 'cancel a task (`dan cancel`): a waiting or queued one at once, an active one by its agent',
      params: idParamsSchema,
      responses: { 200: { description: 'what happened', schema: cancelAnswerSchema }, 400: badInput, 401: unauthorized, 404: unknownTask },
      handler: async ({ params }) => ({ id: params.id, ...(await ctx.bus.cancel(params.id)) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tasks/:id/answer',
      tag: 'tasks',
      summary: 'answer the question a task asked (`dan answer`): the task is queued again and its run resumes with the answer',
      params: idParamsSchema,
      body: answerBodySchema,
      responses: { 200: { description: 'the task, queued', schema: z.object({ id: z.string(), status: taskStatusSchema }) }, 400: badInput, 401: unauthorized, 404: unknownTask },
      handler: async ({ params, body }) => {
        const parsed = answerBodySchema.safeParse(body);
        if (!parsed.success) {
          // The same words as `dan answer`'s, for the same mistakes.
          const issue = parsed.error.issues[0];
          if (issue?.path[0] === 'text') throw new BadInputError(`the answer ${issue.message}: send {"text": "<your answer>"}`);
          throw new BadInputError('the body must be {"text": "<your answer>"} and nothing else');
        }
        const record = await ctx.bus.answer(params.id, parsed.data.text);
        return { id: record.id, status: record.status };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tasks/:id/retry',
      tag: 'tasks',
      summary: 'start a failed, timed-out or cancelled task again (`dan retry`); a goal retries its failed subtasks',
      params: idParamsSchema,
      responses: { 200: { description: 'the task, queued (a goal: reopened)', schema: z.object({ id: z.string(), status: taskStatusSchema, subtasks: z.array(z.string()) }) }, 400: badInput, 401: unauthorized, 404: unknownTask },
      handler: async ({ params }) => {
        const { record, subtasks } = await ctx.bus.retry(params.id);
        return { id: record.id, status: record.status, subtasks };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/agents',
      tag: 'agents',
      summary: 'registered agents with whether their heartbeat is alive (`dan agents`)',
      responses: { 200: { description: 'the agents', schema: z.object({ agents: z.array(agentSchema) }) }, 401: unauthorized },
      handler: async () => {
        const agents = (await ctx.registry.list()).sort((a, b) => a.domain.localeCompare(b.domain) || a.startedAt - b.startedAt);
        return { agents: agents.map(asAgentAnswer) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/overview',
      tag: 'tasks',
      summary: "the domains (templates) with their queues' depths, and today's totals (UTC)",
      responses: { 200: { description: 'the overview', schema: overviewSchema }, 401: unauthorized },
      handler: async () => {
        const names = [MAIN_DOMAIN, ...listDomains(ctx.config.templatesDir)];
        const domains = await Promise.all(names.map(async (name) => ({ name, ...(await ctx.bus.queues.counts(name)) })));
        const since = new Date().setUTCHours(0, 0, 0, 0);
        const ids = await ctx.bus.tasks.idsSince(since);
        let costUsd = 0;
        for (let i = 0; i < ids.length; i += 500) {
          for (const r of await ctx.bus.tasks.getMany(ids.slice(i, i + 500), () => {})) costUsd += r.costUsd ?? 0;
        }
        return { domains, today: { since, tasks: ids.length, costUsd } };
      },
    }),
  ];
}
