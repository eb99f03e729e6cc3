import { readdir, readFile } from 'node:fs/promises';

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
}

/** The pids listed in /proc (Linux); [] where there is no /proc. */
async function procPids(): Promise<string[]> {
  try {
    return (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
}

/** Every process from /proc (Linux); [] where there is no /proc. */
async function processTable(): Promise<ProcInfo[]> {
  const table: ProcInfo[] = [];
  await Promise.all(
    (await procPids()).map(async (n) => {
      try {
        const stat = await readFile(`/proc/${n}/stat`, 'utf8');
        // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses, so split after the last `)`.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        table.push({ pid: Number(n), ppid: Number(fields[1]), pgid: Number(fields[2]) });
      } catch {
        // The process ended while we looked.
      }
    }),
  );
  return table;
}

/** The descendants of a process (children, their children …), from /proc; [] where there is none. */
export async function descendants(pid: number): Promise<ProcInfo[]> {
  const table = await processTable();
  const children = new Map<number, ProcInfo[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

function signal(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH' && code !== 'EPERM') throw error;
  }
}

/**
 * Kills a process group led by `pid` and everything it started, at once. Killing the group is not enough:
 * the CLI's Bash tool runs each command in a session of its own, which outlives the CLI (it does not clean
 * them up, even on SIGTERM). So the group is frozen first (SIGSTOP: nothing new can be started), its
 * descendants are read from /proc, and then every group among them and the CLI's own get SIGKILL.
 */
export async function killProcessTree(pid: number): Promise<void> {
  signal(-pid, 'SIGSTOP');
  const tree = await descendants(pid);
  for (const pgid of new Set(tree.map((p) => p.pgid))) if (pgid > 1 && pgid !== pid) signal(-pgid, 'SIGKILL');
  for (const p of tree) signal(p.pid, 'SIGKILL');
  signal(-pid, 'SIGKILL');
}

/** Pids of the processes whose environment holds `name=value` (Linux /proc; [] where there is none). */
export async function taggedProcesses(name: string, value: string): Promise<number[]> {
  // environ is `NAME=value\0NAME=value\0…`: the tag is its first entry, or follows a NUL.
  const tag = Buffer.from(`${name}=${value}\0`);
  const afterNul = Buffer.from(`\0${name}=${value}\0`);
  const pids: number[] = [];
  await Promise.all(
    (await procPids())
      .filter((n) => Number(n) !== process.pid)
      .map(async (n) => {
        // Another user's process, or one that ended while we looked, cannot be read: it is not ours.
        const environ = await readFile(`/proc/${n}/environ`).catch(() => undefined);
        if (environ && (environ.subarray(0, tag.length).equals(tag) || environ.includes(afterNul))) pids.push(Number(n));
      }),
  );
  return pids;
}

/**
 * Kills every process tagged `name=value` in its environment, wherever it is in the process tree: what an
 * agent's CLI started still carries the tag after the agent died and they were re-parented, even in sessions
 * of their own. Each one found is frozen (SIGSTOP) so it starts nothing new, the search is repeated until it
 * finds no one new, then all get SIGKILL. Returns how many were killed.
 */
export async function killTagged(name: string, value: string): Promise<number> {
  const found = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const fresh = (await taggedProcesses(name, value)).filter((pid) => !found.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      found.add(pid);
      signal(pid, 'SIGSTOP');
    }
  }
  for (const pid of found) signal(pid, 'SIGKILL');
  return found.size;
}
