import { createLogger } from '../../lib/log.js';
import { WebServer } from '../../lib/web/index.js';
import type { TestNetwork } from './network.js';
import { LogCapture } from './log-capture.js';

/** A `dan serve` in this test's process, on its network, on a free loopback port. */
export interface TestWeb {
  server: WebServer;
  url: string;
  logs: LogCapture;
  /** fetch against the server: JSON in, status and parsed JSON out. */
  call(method: string, path: string, options?: { body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; json: unknown; text: string }>;
  close(): Promise<void>;
}

export async function startWeb(net: TestNetwork, options: { token?: string; dashboardDir?: string; keepAliveMs?: number } = {}): Promise<TestWeb> {
  const config = { ...net.config, web: { ...net.config.web, host: '127.0.0.1', port: 0, apiToken: options.token } };
  const logs = new LogCapture();
  const server = await WebServer.create({ config, bus: net.bus, logger: createLogger({ level: 'debug', destination: logs }), dashboardDir: options.dashboardDir, keepAliveMs: options.keepAliveMs });
  const url = await server.listen();
  return {
    server,
    url,
    logs,
    async call(method, path, { body, raw, headers = {} } = {}) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, json, text };
    },
    close: () => server.close(),
  };
}
