/**
 * `npm run bench`: dan's benchmarks (issue 7), each against a baseline measured in the same run. Prints a table
 * and writes docs/BENCHMARKS.md with the machine, the command and the figures.
 *
 *   npm run bench                          everything (about 6 minutes on 2 cores)
 *   npm run bench -- --only dispatch,logs  some of: dispatch throughput git gates cold-start registry failover logs memory web retention
 *   npm run bench -- --quick               smaller counts, for trying things out (the report says so)
 *   npm run bench -- --no-build            use dist/ and the agent image as they are
 *   npm run bench -- --out FILE            write the report elsewhere (default docs/BENCHMARKS.md); the figures
 *                                          also go to FILE with .json for .md
 *   npm run bench -- --render FILE.json    only write the report again from saved figures (after editing
 *                                          bench/explanations.ts), measuring nothing
 *
 * Redis: REDIS_URL when set (with DAN_AGENT_REDIS_URL for the Docker cold start), else a redis-server of its
 * own on a free port, configured as `dan up` runs it (AOF, appendfsync everysec, noeviction). The Docker cold
 * start is skipped, saying why, when no Docker engine or agent image is there.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRedis } from '../lib/messaging/index.js';
import { benchColdStart } from './cold-start.js';
import { BenchRedis, ROOT, dockerStatus } from './context.js';
import { benchDispatch } from './dispatch.js';
import { EXPLANATIONS } from './explanations.js';
import { benchFailover } from './failover.js';
import { benchGates } from './gates.js';
import { benchGitStep, benchGitThroughput } from './git.js';
import { benchLogs } from './logs.js';
import { benchMemory } from './memory.js';
import { benchRegistryScale } from './registry-scale.js';
import { benchRetention } from './retention.js';
import { markdown, textTable, type Machine, type RunReport } from './report.js';
import type { Figure, Skipped } from './stats.js';
import { benchThroughput } from './throughput.js';
import { benchWeb } from './web.js';

const ALL = ['dispatch', 'throughput', 'git', 'gates', 'cold-start', 'registry', 'failover', 'logs', 'memory', 'web', 'retention'] as const;
type BenchName = (typeof ALL)[number];

function parseArgs(argv: string[]): { only: Set<BenchName>; quick: boolean; build: boolean; out: string; render?: string } {
  const args: { only: Set<BenchName>; quick: boolean; build: boolean; out: string; render?: string } = {
    only: new Set<BenchName>(ALL),
    quick: false,
    build: true,
    out: path.join(ROOT, 'docs', 'BENCHMARKS.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') args.quick = true;
    else if (arg === '--no-build') args.build = false;
    else if (arg === '--out') args.out = path.resolve(argv[++i] ?? '');
    else if (arg === '--render') args.render = path.resolve(argv[++i] ?? '');
    else if (arg === '--only') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      const unknown = names.filter((n) => !(ALL as readonly string[]).includes(n));
      if (unknown.length > 0 || names.length === 0) throw new Error(`--only takes a comma-separated list of: ${ALL.join(', ')}`);
      args.only = new Set(names as BenchName[]);
    } else throw new Error(`unknown argument ${arg} (see the top of bench/run.ts)`);
  }
  return args;
}

async function machine(redisUrl: string, docker: string): Promise<Machine> {
  const redis = createRedis(redisUrl, { mode: 'cli', name: 'bench-info' });
  try {
    await redis.connect();
    const info = await redis.info('server');
    const config = await redis.config('GET', 'appendonly').catch(() => []);
    const fsync = await redis.config('GET', 'appendfsync').catch(() => []);
    const aof = (config as string[])[1] ?? '?';
    return {
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.cpus().length,
      memoryGb: os.totalmem() / 1024 ** 3,
      os: `${os.type()} ${os.release()} (${os.arch()})`,
      node: process.version,
      redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
      redisConfig: aof === 'yes' ? `appendonly yes, appendfsync ${(fsync as string[])[1] ?? '?'}` : `appendonly ${aof}`,
      docker,
    };
  } finally {
    redis.disconnect();
  }
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.once('SIGINT', () => process.exit(130));
  if (args.render) {
    const saved = JSON.parse(readFileSync(args.render, 'utf8')) as RunReport;
    writeFileSync(args.out, markdown({ ...saved, startedAt: new Date(saved.startedAt) }, EXPLANATIONS));
    console.error(`bench: wrote ${path.relative(process.cwd(), args.out)} from ${path.relative(process.cwd(), args.render)}`);
    return;
  }
  const startedAt = new Date();
  const image = process.env.DAN_AGENT_IMAGE ?? 'dan-agent:latest';
  let docker = dockerStatus(image);
  if (args.build) {
    console.error('bench: compiling (npm run build)');
    run('npm', ['run', 'build', '--silent']);
    if (docker.ok && args.only.has('cold-start')) {
      console.error('bench: refreshing the agent image (scripts/build-image.sh)');
      run(path.join(ROOT, 'scripts', 'build-image.sh'), ['--skip-smoke']);
      docker = dockerStatus(image);
    }
  }
  const redis = await BenchRedis.start(process.env, docker.ok ? docker.gateway : undefined);
  const figures: Figure[] = [];
  const skipped: Skipped[] = [];
  const failed: RunReport['failed'] = [];
  const q = args.quick;
  const benches: Record<BenchName, () => Promise<Figure[]>> = {
    dispatch: () => benchDispatch(redis, q ? 100 : 500),
    throughput: async () => [...(await benchThroughput(redis, q ? 300 : 2000)), ...(await benchThroughput(redis, q ? 300 : 2000, { minMs: 0, maxMs: 0 }))],
    git: async () => [...(await benchGitStep(redis, q ? 8 : 30)), ...(await benchGitThroughput(redis, q ? 200 : 1000))],
    gates: () => benchGates(redis, q ? 10 : 40),
    'cold-start': () => benchColdStart(redis, image, q ? 3 : 10),
    registry: () => benchRegistryScale(redis, 1000, q ? 5 : 20),
    failover: () => benchFailover(redis, q ? 1 : 3),
    logs: () => benchLogs(redis, q ? 10_000 : 50_000),
    memory: () => benchMemory(redis, q ? 20_000 : 45_000),
    web: () => benchWeb(redis, q ? 100 : 500),
    retention: () => benchRetention(redis, q ? 10_000 : 100_000),
  };
  try {
    for (const name of ALL) {
      if (!args.only.has(name)) continue;
      if (name === 'cold-start' && !docker.ok) {
        skipped.push({ bench: 'cold start', reason: docker.reason });
        console.error(`bench: cold start skipped: ${docker.reason}`);
        continue;
      }
      if (name === 'cold-start' && !redis.containerUrl) {
        const reason = 'REDIS_URL is set without DAN_AGENT_REDIS_URL: agent containers would not know how to reach it';
        skipped.push({ bench: 'cold start', reason });
        console.error(`bench: cold start skipped: ${reason}`);
        continue;
      }
      console.error(`bench: ${name}`);
      const began = Date.now();
      try {
        const result = await benches[name]();
        figures.push(...result);
        for (const f of result) console.error(`bench:   ${f.metric}: ${f.value.toFixed(1)} ${f.unit}${f.met === false ? ' (target missed)' : ''}`);
      } catch (error) {
        failed.push({ bench: name, error: (error as Error).message.split('\n')[0]! });
        console.error(`bench: ${name} failed: ${(error as Error).stack}`);
      }
      console.error(`bench: ${name} took ${Math.round((Date.now() - began) / 1000)} s`);
    }
    const report: RunReport = {
      machine: await machine(redis.url, docker.ok ? `engine answers; agent image ${image}` : `not used: ${docker.reason}`),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}${redis.own ? '' : ' (with REDIS_URL)'}`,
      startedAt,
      durationS: (Date.now() - startedAt.getTime()) / 1000,
      figures,
      skipped,
      failed,
    };
    console.log(textTable(report));
    mkdirSync(path.dirname(args.out), { recursive: true });
    writeFileSync(args.out, markdown(report, EXPLANATIONS));
    writeFileSync(args.out.replace(/\.md$/, '') + '.json', `${JSON.stringify(report, null, 2)}\n`);
    console.error(`bench: wrote ${path.relative(process.cwd(), args.out)}`);
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await redis.stop();
  }
}

await main();
