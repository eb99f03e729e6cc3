import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Serves the dashboard built at `npm run build` (vite, from web/): index.html at `/`, hashed assets under
 * /assets/ cached for good. The page routes with the URL's hash, so no other path needs index.html.
 */
export async function serveDashboard(app: FastifyInstance, dir: string): Promise<void> {
  await app.register(fastifyStatic, {
    root: path.resolve(dir),
    prefix: '/',
    index: ['index.html'],
    wildcard: true,
    setHeaders: (res, file) => {
      res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
      res.setHeader('x-content-type-options', 'nosniff');
    },
  });
}
