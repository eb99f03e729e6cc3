import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './cli.js';

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Pids of live processes whose working directory is `dir` or below (agents and the CLIs they started), or,
 * with `marker`, whose command line holds it.
 */
export async function processesIn(dir: string, options: { marker?: string } = {}): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cwd = await readlink(`/proc/${name}/cwd`).catch(() => '');
    const cmdline = options.marker ? await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '') : '';
    const matches = cwd === dir || cwd.startsWith(`${dir}/`) || (options.marker !== undefined && cmdline.includes(options.marker));
    if (matches && isAlive(Number(name))) pids.push(Number(name));
  }
  return pids;
}

/** Whether a pid is (still) a `dan` process of this repository, so cleanup never kills a stranger. */
export function isDanProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(repoRoot(), 'bin', 'dan.ts')) && isAlive(pid);
  } catch {
    return false;
  }
}

/** Sends `signal` to a pid, quietly when it is already gone; whether it was sent. */
export function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}
