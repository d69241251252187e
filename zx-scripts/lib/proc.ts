// Finding and stopping processes by what they run, through /proc.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessInfo {
  pid: number;
  argv: string[];
}

export function listProcesses(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (argv.length > 0) found.push({ pid: Number(entry), argv });
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** True while the process exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Direct children of a process (from every thread's children list). */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
        .split(' ')
        .filter((s) => s.trim() !== '')
        .map(Number),
    );
  } catch {
    return [];
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Sends `sig`, waits up to `graceMs` for the processes to end, then SIGKILLs the rest. Returns the ones killed hard. */
export async function stopProcesses(pids: number[], sig: NodeJS.Signals, graceMs: number): Promise<number[]> {
  for (const pid of pids) signal(pid, sig);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(100);
  const stubborn = pids.filter(isAlive);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  while (stubborn.some(isAlive)) await sleep(50);
  return stubborn;
}

/** Clock ticks a second in /proc/<pid>/stat (USER_HZ: 100 on every Linux this kit supports). */
const TICKS_PER_SECOND = 100;

/**
 * CPU milliseconds a process has used (user + system), and with `reaped` also the children it has waited for (a
 * PostgreSQL backend that ended is counted in the postmaster's). 0 for a process that is gone.
 */
export function cpuMsOf(pid: number, reaped: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "(comm) ": state is field 3; utime 14, stime 15, cutime 16, cstime 17
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    const children = reaped ? Number(fields[13]) + Number(fields[14]) : 0;
    return ((own + children) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** A process's descendants (children, their children, ...) with the name the kernel knows them by. */
export function descendantsOf(root: number): { pid: number; comm: string }[] {
  const found: { pid: number; comm: string }[] = [];
  const queue = childrenOf(root);
  while (queue.length > 0) {
    const pid = queue.shift() ?? 0;
    try {
      found.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() });
    } catch {
      continue; // ended while we looked
    }
    queue.push(...childrenOf(pid));
  }
  return found;
}

/**
 * CPU used by a process tree's descendants, summed by a group name that `group` gives each command name (undefined:
 * not counted). Reaped children count in their parent's figure, so a descendant that ends between two readings is
 * still counted as long as its parent is in the same group (PostgreSQL's backends under the postmaster).
 */
export function cpuByGroup(root: number, group: (comm: string) => string | undefined): Map<string, number> {
  const totals = new Map<string, number>();
  for (const { pid, comm } of descendantsOf(root)) {
    const name = group(comm);
    if (name !== undefined) totals.set(name, (totals.get(name) ?? 0) + cpuMsOf(pid, true));
  }
  return totals;
}
