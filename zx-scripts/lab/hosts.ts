// Lab hosts: an overlay root per host on the shared base image, booted by systemd-nspawn with systemd as PID 1
// inside the host's own network namespace. Flags this machine needs (docs/lab.md): --register=no --keep-unit (no
// systemd on the controller) and CAP_NET_ADMIN (Keepalived VIPs, nftables).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { $ } from 'zx';
import type { InventoryHost } from '../lib/inventory.ts';
import { childrenOf, isAlive, listProcesses } from '../lib/proc.ts';
import { ensureHostCgroups, hostCgroups, labCgroupRoots } from './cgroups.ts';
import { paths, record, stateDir } from './state.ts';

export interface BootedHost {
  name: string;
  nspawnPid: number;
  hostKey: string;
}

/** Makes the host's overlay root and gives it its own identity: hostname, machine id, SSH host keys, controller key. */
export async function prepareRoot(host: InventoryHost, image: string, controllerKey: string): Promise<string> {
  const dir = paths.hostDir(host.name);
  const root = paths.hostRoot(host.name);
  record({ kind: 'dir', path: dir });
  for (const sub of ['upper', 'work', 'root']) mkdirSync(join(dir, sub), { recursive: true });
  record({ kind: 'mount', path: root });
  await $`mount -t overlay overlay -o ${`lowerdir=${image},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`} ${root}`;
  writeFileSync(join(root, 'etc/hostname'), `${host.name}\n`);
  writeFileSync(join(root, 'etc/machine-id'), createHash('sha256').update(`omslab:${host.name}`).digest('hex').slice(0, 32) + '\n');
  writeFileSync(join(root, 'etc/hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${host.name}\n`);
  mkdirSync(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(join(root, 'root/.ssh'), 0o700);
  writeFileSync(join(root, 'root/.ssh/authorized_keys'), controllerKey, { mode: 0o600 });
  await $`ssh-keygen -q -A -f ${root}`;
  const [type, key] = readFileSync(join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').split(' ');
  return `${type ?? ''} ${key ?? ''}`;
}

export function nspawnArgs(host: InventoryHost, capabilities: string[]): string[] {
  return [
    `--directory=${paths.hostRoot(host.name)}`,
    '--boot',
    '--register=no',
    '--keep-unit',
    `--machine=${host.name}`,
    `--hostname=${host.name}`,
    `--network-namespace-path=/run/netns/${host.name}`,
    `--capability=${capabilities.join(',')}`,
    '--resolv-conf=off',
    '--timezone=off',
    '--link-journal=no',
    '--console=read-only',
  ];
}

/**
 * Starts the host detached from this process (the lab outlives `up`), in a cgroup of its own (cgroups.ts);
 * its console goes to logs/<host>.console.
 */
export function boot(host: InventoryHost, capabilities: string[]): number {
  mkdirSync(paths.logs, { recursive: true });
  const cgroups = hostCgroups(host.name);
  for (const root of labCgroupRoots()) record({ kind: 'cgroup', path: root });
  ensureHostCgroups(host.name);
  const out = openSync(join(paths.logs, `${host.name}.console`), 'w');
  // the shell moves itself into the host's cgroups, then becomes systemd-nspawn
  const enter = 'for cg in $OMSLAB_CGROUPS; do echo $$ > "$cg/cgroup.procs"; done; exec systemd-nspawn "$@"';
  const child = spawn('sh', ['-c', enter, 'systemd-nspawn', ...nspawnArgs(host, capabilities)], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, OMSLAB_CGROUPS: cgroups.join(' ') },
  });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`${host.name}: systemd-nspawn did not start`);
  return child.pid;
}

/** The host's PID 1 (systemd), a child of its systemd-nspawn process. */
export function hostInit(nspawnPid: number): number | undefined {
  return childrenOf(nspawnPid).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd';
    } catch {
      return false;
    }
  });
}

/** The running nspawn process of a host, found by its root directory on the command line. */
export function findNspawn(host: string): number | undefined {
  const marker = `--directory=${paths.hostRoot(host)}`;
  return listProcesses().find((p) => p.argv[0]?.endsWith('systemd-nspawn') && p.argv.includes(marker))?.pid;
}

/** Runs a command inside a host (all its namespaces), without SSH. */
export function inHost(init: number, cmd: string[]) {
  return $`nsenter --target ${init} --all -- ${cmd}`.nothrow().quiet();
}

/**
 * systemd states after boot has finished, good or bad. Not "offline": systemctl prints it while /run/systemd/system
 * does not exist yet, i.e. in the first moments of boot (a CI run once took that for a finished boot).
 */
const SETTLED = new Set(['running', 'degraded', 'maintenance', 'stopping']);

/** Waits until systemd in the host finished booting; returns its state (running, degraded, ...). */
export async function waitBooted(host: string, nspawnPid: number, timeoutMs: number): Promise<{ state: string; failed: string }> {
  const deadline = Date.now() + timeoutMs;
  let init: number | undefined;
  while ((init = hostInit(nspawnPid)) === undefined) {
    if (!isAlive(nspawnPid)) throw new Error(`${host}: systemd-nspawn exited; see ${join(paths.logs, `${host}.console`)}`);
    if (Date.now() > deadline) throw new Error(`${host}: systemd did not start within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
  // Poll rather than `is-system-running --wait`: that fails at once while the host's D-Bus is not up yet.
  let state = '';
  while (!SETTLED.has(state) && Date.now() < deadline) {
    state = (await inHost(init, ['systemctl', 'is-system-running'])).stdout.trim();
    if (!SETTLED.has(state)) await sleep(250);
  }
  state ||= 'unreachable';
  let failed = '';
  if (state !== 'running') {
    failed = (await inHost(init, ['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim();
  }
  return { state, failed };
}

/** Every process started for the lab: they all name the state folder on their command line (roots, logs, keys). */
export function labProcesses(): number[] {
  return listProcesses()
    .filter((p) => p.argv.some((a) => a.includes(`${stateDir}/`)) && p.pid !== process.pid)
    .map((p) => p.pid);
}
