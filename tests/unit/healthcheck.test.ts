import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { eventually } from '../helpers/eventually.js';

// The image's HEALTHCHECK script, run for real: a process whose command line names dist/bin/dan.js stands in for
// the container's dan process, and the health file's age stands in for heartbeats that stopped (Redis gone).
const dir = mkdtempSync(path.join(os.tmpdir(), 'dan-health-'));
const file = path.join(dir, 'alive');
let standIn: ChildProcess;
beforeAll(async () => {
  standIn = spawn('sh', ['-c', 'sleep 300', '/app/dist/bin/dan.js'], { stdio: 'ignore' });
  // Until the fork has exec'd, its command line is still this process's.
  await eventually(() => readFileSync(`/proc/${standIn.pid}/cmdline`, 'utf8').includes('dist/bin/dan.js'), { what: 'the stand-in process', timeoutMs: 10_000 });
});
afterAll(() => {
  standIn.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const check = (env: Record<string, string> = {}) =>
  execa(path.join(repoRoot(), 'scripts', 'healthcheck.sh'), { reject: false, env: { DAN_HEALTH_FILE: file, ...env } });
const aged = (seconds: number): void => {
  writeFileSync(file, `${Date.now()}\n`);
  const then = Date.now() / 1000 - seconds;
  utimesSync(file, then, then);
};

describe('the agent image HEALTHCHECK', () => {
  it('is healthy while heartbeats renew the file, unhealthy once they stopped for half the TTL', async () => {
    aged(0);
    expect((await check()).stdout).toBe('ok');
    aged(10); // the check itself may take seconds on a busy machine
    expect((await check()).exitCode).toBe(0);
    aged(20);
    const stale = await check();
    expect(stale.exitCode).toBe(1);
    expect(stale.stdout).toMatch(/last heartbeat \d+s ago \(more than 15s: Redis unreachable/);
    // Never less than two heartbeats (plus a second): a short TTL does not make a live agent flap.
    aged(3);
    expect((await check({ DAN_HEARTBEAT_TTL_MS: '5000', DAN_HEARTBEAT_MS: '4000' })).exitCode).toBe(0);
  });

  it('turns an orchestrator cut off from Redis unhealthy within one TTL (file max age + check interval x retries)', () => {
    const dockerfile = readFileSync(path.join(repoRoot(), 'Dockerfile.agent'), 'utf8');
    const match = /HEALTHCHECK --interval=(\d+)s .*--retries=(\d+)/.exec(dockerfile);
    expect(match).not.toBeNull();
    const [interval, retries] = [Number(match![1]), Number(match![2])];
    const ttlS = 30; // DAN_HEARTBEAT_TTL_MS default
    expect(ttlS / 2 + interval * retries).toBeLessThanOrEqual(ttlS);
  });
});
