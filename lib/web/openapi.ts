import { z } from 'zod';
import type { ApiRoute } from './api-route.js';

/** `/api/tasks/:id` → `/api/tasks/{id}` */
export const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> => {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return rest;
};

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Array<Record<string, unknown>> {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, in: where, required: where === 'path' || (object.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

/**
 * The OpenAPI 3.1 document of the routes, generated from their zod schemas (JSON Schema 2020-12, which
 * OpenAPI 3.1 uses as is): requests as zod parses them, answers as the server writes them.
 */
export function openApiDocument(routes: readonly ApiRoute[], info: { version: string; tokenRequired: boolean }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, answer] of Object.entries(route.responses)) {
      const content: Record<string, unknown> = {};
      if (answer.schema) content['application/json'] = { schema: jsonSchema(answer.schema, 'output') };
      for (const [type, description] of Object.entries(answer.other ?? {})) content[type] = { schema: { type: 'string', description } };
      responses[status] = { description: answer.description, ...(Object.keys(content).length > 0 ? { content } : {}) };
    }
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${openApiPath(route.url).replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
      responses,
      ...(route.auth === false ? { security: [] } : {}),
    };
    (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'dan',
      version: info.version,
      description:
        'The HTTP API of dan, the distributed agent network (`dan serve`). Bad input is a 400 with `{error: {code, message}}` and writes nothing.' +
        (info.tokenRequired ? ' Every /api call and /metrics need `Authorization: Bearer <DAN_API_TOKEN>`.' : ''),
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'DAN_API_TOKEN, when the server has one' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
