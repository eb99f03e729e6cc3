import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

/**
 * Provides a real Redis for the whole run (DESIGN.md, Tests): REDIS_URL when set, else a Redis container
 * started with testcontainers (image DAN_REDIS_IMAGE), else a `redis-server` found on PATH, else one line
 * saying what to install. The URL reaches the tests as `inject('redisUrl')`.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let stop: (() => Promise<void>) | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function startContainer(): Promise<string | undefined> {
  if (!hasCommand('docker')) return undefined;
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return undefined;
  }
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  const image = process.env.DAN_REDIS_IMAGE ?? 'redis:7-alpine';
  try {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(image)
      .withExposedPorts(6379)
      .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
      .withLabels({ 'dan.test': 'redis' })
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
      .start();
    stop = async () => {
      await container.stop();
    };
    return `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  } catch (error) {
    console.warn(`[tests] no Redis container from ${image} (${(error as Error).message.split('\n')[0]}); trying redis-server`);
    return undefined;
  }
}

async function startLocalServer(): Promise<string | undefined> {
  if (!hasCommand('redis-server')) return undefined;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  for (let i = 0; i < 50; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      stop = async () => {
        child.kill('SIGTERM');
      };
      return url;
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  return undefined;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.REDIS_URL ?? (await startContainer()) ?? (await startLocalServer());
  if (!url) {
    throw new Error(
      'tests need Redis: set REDIS_URL, or start Docker (with image DAN_REDIS_IMAGE), or install redis-server (apt-get install redis-server)',
    );
  }
  project.provide('redisUrl', url);
  return async () => {
    await stop?.();
  };
}
