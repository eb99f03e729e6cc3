import os from 'node:os';
import { isTerminal, newTaskId, taskSpecSchema } from '../lib/task.js';
import { BenchNetwork, DanChild, STAND_IN, StandInWorkspace, cpuMs, type BenchRedis } from './context.js';
import { eventually } from '../tests/helpers/eventually.js';
import type { Figure } from './stats.js';

const DOMAINS = ['backend', 'frontend', 'devops'] as const;

/** The stand-in CLI's own default: it sleeps a random 20-200 ms, as the issue's stand-in "sleeps a random short time". */
export const STAND_IN_DEFAULT = { minMs: 20, maxMs: 200 } as const;

/**
 * Throughput: `count` tasks over three domains, six warm agents (two `dan agent` processes per domain), the
 * stand-in CLI sleeping `cli.minMs`-`cli.maxMs`. Baseline in the same run: the same CLI run `count` times by a
 * bare loop with the same concurrency (six at a time), nothing else. The target (80% of the bare loop) is judged
 * with the stand-in's default sleep; with no sleep at all the figure is dan's own CPU cost per task. In shared
 * workspace mode unless `mode` says git (bench/git.ts compares the two).
 */
export async function benchThroughput(
  redis: BenchRedis,
  count: number,
  cli: { minMs: number; maxMs: number } = STAND_IN_DEFAULT,
  mode: 'git' | 'shared' = 'shared',
): Promise<Figure[]> {
  const judged = cli.minMs === STAND_IN_DEFAULT.minMs && cli.maxMs === STAND_IN_DEFAULT.maxMs;
  const ws = await StandInWorkspace.create(cli);
  const net = await BenchNetwork.open(redis.url, 'throughput');
  const agents = DOMAINS.flatMap((domain) =>
    [1, 2].map((i) =>
      DanChild.start(
        ['agent', '--domain', domain, '--id', `bench-${domain}-${i}`],
        net.env({ DAN_WORKSPACE: ws.dir, DAN_WORKSPACE_MODE: mode, DAN_CLAUDE_BIN: STAND_IN, DAN_IDLE_TIMEOUT_MS: '3600000', DAN_LOG_LEVEL: 'info' }),
      ),
    ),
  );
  try {
    await eventually(async () => (await net.redis.scard(net.bus.keys.agents)) === agents.length, { what: 'the throughput agents to register', timeoutMs: 90_000, intervalMs: 20 });
    const events = net.bus.events();
    let ended = 0;
    let allEnded: () => void = () => {};
    const finished = new Promise<void>((resolve) => (allEnded = resolve));
    const ids = new Set<string>();
    events.on('event', (e) => {
      if (e.kind === 'task' && isTerminal(e.status) && ids.has(e.id) && ++ended === count) allEnded();
    });
    await events.subscribeEvents();

    const cpu = async () => ({
      agents: await Promise.all(agents.map((a) => cpuMs(a.pid))),
      redis: redis.pid ? await cpuMs(redis.pid) : undefined,
      sender: await cpuMs(process.pid),
    });
    const before = await cpu();
    const started = Date.now();
    // Sent in parallel batches, so the sender is not what limits the rate.
    for (let i = 0; i < count; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, (_, j) => {
          const id = newTaskId();
          ids.add(id);
          const spec = taskSpecSchema.parse({ domain: DOMAINS[(i + j) % 3], description: `throughput ${i + j}`, timeoutS: 60, maxAttempts: 1 });
          return net.bus.submit(spec, { id });
        }),
      );
    }
    await finished;
    const seconds = (Date.now() - started) / 1000;
    const after = await cpu();
    const sum = (xs: Array<{ self: number; children: number }>, k: 'self' | 'children') => xs.reduce((n, x) => n + x[k], 0);
    const perTask = {
      agents: (sum(after.agents, 'self') - sum(before.agents, 'self')) / count,
      cli: (sum(after.agents, 'children') - sum(before.agents, 'children')) / count,
      redis: after.redis && before.redis ? (after.redis.self - before.redis.self) / count : Number.NaN,
      sender: (after.sender.self - before.sender.self) / count,
    };
    const records = await net.bus.tasks.getMany([...ids]);
    const completed = records.filter((r) => r.status === 'completed').length;
    // A task that did not complete fails the target; why is said here, not hidden in a count.
    for (const r of records.filter((x) => x.status !== 'completed')) console.error(`bench: throughput: task ${r.id} ended ${r.status}: ${r.error ?? 'no error recorded'}`);
    const dan = count / seconds;

    const bareBefore = await cpuMs(process.pid);
    const bare = await bareLoop(ws, count, agents.length);
    const bareAfter = await cpuMs(process.pid);
    const barePerTask = { loop: (bareAfter.self - bareBefore.self) / count, cli: (bareAfter.children - bareBefore.children) / count };
    const ratio = dan / bare;
    return [
      {
        bench: 'throughput',
        metric: `${count} tasks, 3 domains, 6 agents, ${cli.maxMs === 0 ? 'CLI with no sleep (dan\'s own cost)' : `stand-in CLI sleeping ${cli.minMs}-${cli.maxMs} ms`} (${completed} completed)`,
        value: dan,
        unit: '/s',
        baseline: { label: 'the same CLI in a bare loop, 6 at a time', value: bare },
        comparison: `${Math.round(ratio * 100)}% of the bare loop`,
        target: judged ? '≥ 80% of the bare loop' : undefined,
        met: judged ? ratio >= 0.8 && completed === count : undefined,
        note:
          `CPU per task (ms): dan agents ${perTask.agents.toFixed(1)}, the CLI ${perTask.cli.toFixed(1)}, Redis ${perTask.redis.toFixed(1)}, ` +
          `the sender ${perTask.sender.toFixed(1)}; bare loop: itself ${barePerTask.loop.toFixed(1)}, the CLI ${barePerTask.cli.toFixed(1)}.` +
          (cli.maxMs === 0
            ? ` On ${os.cpus().length} cores both runs are CPU-bound, so the ratio is the ratio of CPU spent per task: this line is dan's own cost, not judged.`
            : " The CLI's own time dominates both runs."),
      },
    ];
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await net.close();
    await ws.remove();
  }
}

/** Runs the stand-in `count` times, `concurrency` at a time, reading its output; returns runs per second. */
async function bareLoop(ws: StandInWorkspace, count: number, concurrency: number): Promise<number> {
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await ws.runCli(`bare ${next++}`);
    }),
  );
  return count / ((Date.now() - started) / 1000);
}
