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
