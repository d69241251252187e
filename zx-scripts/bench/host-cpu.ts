// Where the lab's CPU goes during a benchmark step: each host's cgroup (zx-scripts/lab/cgroups.ts), and the controller
// (everything else the machine ran: k6, the agents, the bench itself), from cgroup v2 cpu.stat and /proc/stat.
// A step's figures are CPU ms per order with the lab's idle cost (Patroni's and Keepalived's loops, the brokers'
// housekeeping) taken out, so that a step's CPU per order can be set against another's.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { hostCgroups } from '../lab/cgroups.ts';

/** USER_HZ of /proc/stat */
const TICKS_PER_SECOND = 100;
export const CONTROLLER = 'controller';

export interface CpuReading {
  atMs: number;
  /** CPU µs used so far, by host, and by the controller */
  usec: Record<string, number>;
}

/** CPU µs a host's cgroup has used (0 when it has none: a host that is down). */
function hostUsec(host: string): number {
  for (const dir of hostCgroups(host)) {
    const file = join(dir, 'cpu.stat');
    if (!existsSync(file)) continue;
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('usage_usec '));
    if (line) return Number(line.split(' ')[1]);
  }
  return 0;
}

/** CPU µs the whole machine has been busy (every CPU's user, nice, system, irq, softirq and steal time). */
export function machineUsec(stat = readFileSync('/proc/stat', 'utf8')): number {
  const fields = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1e6) / TICKS_PER_SECOND;
}

export function readCpu(inventory: Inventory): CpuReading {
  const usec: Record<string, number> = {};
  for (const host of inventory.hosts) usec[host.name] = hostUsec(host.name);
  const hosts = Object.values(usec).reduce((a, b) => a + b, 0);
  usec[CONTROLLER] = Math.max(0, machineUsec() - hosts);
  return { atMs: Date.now(), usec };
}

/** CPU µs per second of each host and the controller between two readings. */
export function cpuRate(before: CpuReading, after: CpuReading): Record<string, number> {
  const seconds = (after.atMs - before.atMs) / 1000;
  return Object.fromEntries(Object.keys(after.usec).map((k) => [k, ((after.usec[k] ?? 0) - (before.usec[k] ?? 0)) / seconds]));
}

/** The lab's idle cost: CPU µs a second by host, measured over `seconds` with no load. */
export async function idleRate(inventory: Inventory, seconds: number): Promise<Record<string, number>> {
  const before = readCpu(inventory);
  await sleep(seconds * 1000);
  // the controller's share is the machine's total less the hosts' cgroups: at idle their rounding can make it negative
  return Object.fromEntries(Object.entries(cpuRate(before, readCpu(inventory))).map(([k, v]) => [k, Math.max(0, v)]));
}

export interface StepCpu {
  /** CPU ms per order by host and controller, idle cost taken out (never below 0), and their `total` */
  msPerOrder: Record<string, number>;
  /** CPUs the machine kept busy on average during the step, idle cost included */
  busyCpus: number;
}

/** A step's CPU per order, from readings around it, its order count and the lab's idle rate. */
export function stepCpu(before: CpuReading, after: CpuReading, orders: number, idle: Record<string, number>): StepCpu {
  const seconds = (after.atMs - before.atMs) / 1000;
  const msPerOrder: Record<string, number> = {};
  let total = 0;
  let busy = 0;
  for (const key of Object.keys(after.usec)) {
    const used = (after.usec[key] ?? 0) - (before.usec[key] ?? 0);
    busy += used;
    const ms = orders > 0 ? Math.max(0, used - (idle[key] ?? 0) * seconds) / 1000 / orders : 0;
    msPerOrder[key] = Math.round(ms * 100) / 100;
    total += ms;
  }
  msPerOrder['total'] = Math.round(total * 100) / 100;
  return { msPerOrder, busyCpus: Math.round((busy / 1e6 / seconds) * 100) / 100 };
}

/** The hosts that took the most CPU per order, e.g. "kafka1 3.1, gw1 2.9, ..." */
export function describeStepCpu(cpu: StepCpu, top = 6): string {
  const entries = Object.entries(cpu.msPerOrder).filter(([k]) => k !== 'total').sort((a, b) => b[1] - a[1]).slice(0, top);
  return `${String(cpu.msPerOrder['total'])} ms CPU per order (${entries.map(([k, v]) => `${k} ${String(v)}`).join(', ')}, ...); ${String(cpu.busyCpus)} CPUs busy`;
}
