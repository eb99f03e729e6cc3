import type { Command } from 'commander';
import { z } from 'zod';
import type { DanConfig } from '../../lib/config.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { Bus } from '../../lib/messaging/index.js';
import { configFrom, connectClient, parseFlag, type ConnectionFlags } from '../context.js';
import { c } from '../output.js';

const portSchema = z.coerce.number({ error: 'must be a port number from 0 to 65535' }).int('must be a whole number').min(0, 'must be at least 0').max(65_535, 'must be at most 65535');

/** A running web server and its own bus; `close()` stops both. */
export interface RunningWeb {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts `dan serve`'s server on its own bus (the API, the dashboard from the package's dist/web, /metrics),
 * connected as the client role (bin/context.ts, connectClient), as the CLI's commands are.
 */
export async function startWebServer(admin: DanConfig, logger: Logger): Promise<RunningWeb> {
  const { WebServer, dashboardDir } = await import('../../lib/web/index.js');
  const { bus, config } = await connectClient(admin, async (client) => ({ bus: await Bus.connect(client, { name: 'dan-web' }), config: client }));
  try {
    const server = await WebServer.create({ config, bus, logger: logger.child({ component: 'web' }), dashboardDir: dashboardDir(), version: process.env.npm_package_version });
    const url = await server.listen();
    logger.info({ url, network: config.network, auth: config.web.apiToken !== undefined }, 'dan serve listening');
    return {
      url,
      async close() {
        await server.close();
        await bus.close();
      },
    };
  } catch (error) {
    await bus.close();
    throw error;
  }
}

/** Refuses a non-loopback address without a token before anything starts (exit 2, nothing written). */
export async function assertWebBind(config: DanConfig): Promise<void> {
  const { assertSafeBind } = await import('../../lib/web/index.js');
  assertSafeBind(config.web);
}

/** `dan serve`: the API, the dashboard and /metrics, until a signal. */
export function registerServeCommand(program: Command, withConnection: (cmd: Command) => Command): void {
  withConnection(
    program
      .command('serve')
      .description('serve the HTTP API, the dashboard and /metrics (DAN_WEB_HOST:DAN_WEB_PORT, default 127.0.0.1:8080)')
      .option('--host <address>', 'address to bind (default DAN_WEB_HOST or 127.0.0.1; beyond loopback needs DAN_API_TOKEN)')
      .option('-p, --port <port>', 'port (default DAN_WEB_PORT or 8080; 0: any free port)'),
  ).action(async (flags: ConnectionFlags & { host?: string; port?: string }) => {
    const port = flags.port === undefined ? undefined : parseFlag(portSchema, flags.port, '--port');
    const config = configFrom(flags, { DAN_WEB_HOST: flags.host, DAN_WEB_PORT: port });
    await assertWebBind(config);
    const logger = createLogger({ level: config.logLevel, name: 'dan-serve' });
    const web = await startWebServer(config, logger);
    process.stderr.write(c.gray(`dan serve: dashboard and API at ${web.url}/ (network "${config.network}"). Ctrl-C stops it.\n`));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await web.close();
  });
}
