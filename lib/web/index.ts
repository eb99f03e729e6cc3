/** `dan serve`: the HTTP API (with its OpenAPI document), the dashboard, and /metrics. */
import path from 'node:path';
import { packageRoot } from '../config.js';

export { WebServer, BODY_LIMIT_BYTES, type WebServerOptions } from './web-server.js';
export { openApiPath } from './openapi.js';
export { isLoopback, assertSafeBind } from './bearer-auth.js';

/** Where `npm run build` puts the dashboard: `dist/web` in the package. */
export const dashboardDir = (): string => path.join(packageRoot(), 'dist', 'web');
