// The lab engine: makes the hosts of an inventory real on this machine, and removes them again.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { $ } from 'zx';
import { loadInventory, type Inventory, type InventoryHost } from '../lib/inventory.ts';
import { isAlive, stopProcesses } from '../lib/proc.ts';
import { accepts, startAptProxy } from './apt-proxy.ts';
import { labCgroupRoots, removeCgroupTree } from './cgroups.ts';
import { boot, findNspawn, hostInit, inHost, labProcesses, prepareRoot, waitBooted, type BootedHost } from './hosts.ts';
import { ensureImage } from './image.ts';
import { MGMT_BRIDGE, NFT_TABLE, ROUTER_NS, controllerRuleset, networkPlan } from './network.ts';
import { controllerServesTime, ntpQuery, startTimeSource } from './time-source.ts';
import { clearJournal, journal, paths, readReady, record, stateDir, writeReady, type Resource } from './state.ts';
import { secondsSince } from '../lib/stats.ts';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const defaultInventory = join(repoRoot, 'inventories/lab');

export interface LabSettings {
  suite: string;
  mirror: string;
  basePackages: string[];
  aptProxyPort: number;
  aptUpstreams: string[];
  capabilities: string[];
  bootTimeoutMs: number;
}

/** Lab engine settings from the inventory's lab_* variables (inventories/lab/group_vars/all/lab.yml). */
export function labSettings(inventory: Inventory): LabSettings {
  const v = inventory.vars;
  const list = (value: unknown, fallback: string[]): string[] =>
    Array.isArray(value) && value.every((x) => typeof x === 'string') ? value : fallback;
  return {
    suite: typeof v['lab_debian_suite'] === 'string' ? v['lab_debian_suite'] : 'bookworm',
    mirror: typeof v['lab_debian_mirror'] === 'string' ? v['lab_debian_mirror'] : 'http://deb.debian.org/debian',
    basePackages: list(v['lab_base_packages'], ['systemd', 'systemd-sysv', 'dbus', 'iproute2', 'openssh-server', 'python3']),
    aptProxyPort: typeof v['lab_apt_proxy_port'] === 'number' ? v['lab_apt_proxy_port'] : 3143,
    aptUpstreams: list(v['lab_apt_upstreams'], ['deb.debian.org']),
    capabilities: list(v['lab_host_capabilities'], ['CAP_NET_ADMIN']),
    bootTimeoutMs: typeof v['lab_boot_timeout'] === 'number' ? v['lab_boot_timeout'] * 1000 : 120_000,
  };
}

export function inventoryDigest(inventory: Inventory): string {
  return createHash('sha256')
    .update(JSON.stringify({ hosts: inventory.hosts, zones: inventory.zones, mgmt: inventory.mgmt, time: inventory.timeSources, lab: labSettings(inventory) }))
    .digest('hex')
    .slice(0, 16);
}

type Log = (line: string) => void;

const REQUIRED_COMMANDS = ['ip', 'bridge', 'nft', 'debootstrap', 'systemd-nspawn', 'nsenter', 'mount', 'ssh', 'ssh-keygen'];

function checkPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, mounts, containers)');
  const path = (process.env['PATH'] ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  const missing = REQUIRED_COMMANDS.filter((cmd) => !path.some((dir) => existsSync(join(dir, cmd))));
  if (missing.length > 0) throw new Error(`missing commands: ${missing.join(', ')}; run: npm run bootstrap`);
}

/** One lab command at a time: two `up`s at once would fight over the same namespaces. */
function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(stateDir, { recursive: true });
  if (existsSync(paths.lock)) {
    const holder = Number(readFileSync(paths.lock, 'utf8'));
    if (holder !== process.pid && isAlive(holder)) {
      throw new Error(`another lab command (pid ${holder}) is running; wait for it or stop it`);
    }
  }
  writeFileSync(paths.lock, String(process.pid));
  return fn().finally(() => {
    rmSync(paths.lock, { force: true });
  });
}

export interface UpResult {
  reused: boolean;
  seconds: { image: number; network: number; boot: number; total: number };
  imageBuilt: boolean;
  hosts: { name: string; state: string }[];
}

export function up(inventoryDir: string, log: Log): Promise<UpResult> {
  const inventory = loadInventory(inventoryDir); // a bad inventory stops here, before anything is created
  checkPrerequisites();
  return withLock(async () => {
    const started = performance.now();
    const since = (t: number): number => secondsSince(t);
    const settings = labSettings(inventory);
    const digest = inventoryDigest(inventory);
    const ready = readReady();
    if (ready?.inventoryDigest === digest && Object.keys(ready.hosts).every((h) => findNspawn(h) !== undefined)) {
      log(`lab already up since ${ready.readyAt} (${Object.keys(ready.hosts).length} hosts)`);
      return { reused: true, seconds: { image: 0, network: 0, boot: 0, total: since(started) }, imageBuilt: false, hosts: [] };
    }
    if (journal().length > 0 || labProcesses().length > 0) {
      log('found state of an earlier lab that did not finish or was changed; removing it first');
      await teardown(log);
    }

    const controllerKey = await ensureControllerKey();
    const image = await ensureImage({ suite: settings.suite, mirror: settings.mirror, packages: settings.basePackages }, log);
    const imageSeconds = since(started);

    const tNet = performance.now();
    record({ kind: 'nft-table', family: 'inet', name: NFT_TABLE });
    await $({ input: controllerRuleset(inventory, settings.aptProxyPort) })`nft -f -`.quiet();
    for (const step of networkPlan(inventory)) {
      if (step.creates) record(step.creates);
      await $`${step.cmd}`.quiet();
    }
    await startAptProxy(inventory.mgmt.controller, settings.aptProxyPort, settings.aptUpstreams);
    const servesTime = controllerServesTime(inventory);
    if (servesTime) await startTimeSource(inventory);
    const networkSeconds = since(tNet);
    log(`networks ready: ${inventory.zones.length} zones, management ${inventory.mgmt.subnet.text}${servesTime ? ', time source on the controller' : ''} (${networkSeconds} s)`);

    const tBoot = performance.now();
    const hostKeys = await Promise.all(inventory.hosts.map((h) => prepareRoot(h, image.dir, controllerKey)));
    const booted: BootedHost[] = inventory.hosts.map((h, i) => ({
      name: h.name,
      nspawnPid: boot(h, settings.capabilities),
      hostKey: hostKeys[i] ?? '',
    }));
    writeKnownHosts(inventory, booted);
    const states = await Promise.all(
      booted.map(async (b) => ({ name: b.name, ...(await waitBooted(b.name, b.nspawnPid, settings.bootTimeoutMs)) })),
    );
    const broken = states.filter((s) => s.state !== 'running');
    if (broken.length > 0) {
      throw new Error(
        'hosts did not reach systemd state running:\n' +
          broken.map((s) => `  ${s.name}: ${s.state}${s.failed ? `; failed units: ${s.failed.replace(/\n/g, ', ')}` : ''}`).join('\n'),
      );
    }
    await Promise.all(inventory.hosts.map((h) => waitForSsh(h, settings.bootTimeoutMs)));
    const bootSeconds = since(tBoot);
    log(`${booted.length} hosts booted, systemd running and SSH answering (${bootSeconds} s)`);

    writeReady({
      inventoryDir: resolve(inventoryDir),
      inventoryDigest: digest,
      readyAt: new Date().toISOString(),
      hosts: Object.fromEntries(booted.map((b) => [b.name, { nspawnPid: b.nspawnPid }])),
    });
    return {
      reused: false,
      seconds: { image: imageSeconds, network: networkSeconds, boot: bootSeconds, total: since(started) },
      imageBuilt: image.built,
      hosts: states.map((s) => ({ name: s.name, state: s.state })),
    };
  });
}

async function ensureControllerKey(): Promise<string> {
  mkdirSync(paths.ssh, { recursive: true, mode: 0o700 });
  if (!existsSync(paths.sshKey)) {
    await $`ssh-keygen -q -t ed25519 -N ${''} -C ${'omslab-controller'} -f ${paths.sshKey}`;
  }
  return readFileSync(`${paths.sshKey}.pub`, 'utf8');
}

function writeKnownHosts(inventory: Inventory, booted: BootedHost[]): void {
  const lines = booted.map((b) => {
    const host = inventory.hosts.find((h) => h.name === b.name);
    return `${b.name},${host?.mgmtAddress ?? ''} ${b.hostKey}`;
  });
  writeFileSync(paths.knownHosts, lines.join('\n') + '\n');
}

/** SSH to a host as Ansible does: the lab's key, its known_hosts, strict host key checking. */
export function sshArgs(host: InventoryHost, { interactive = false } = {}): string[] {
  return [
    '-i', paths.sshKey,
    '-o', `UserKnownHostsFile=${paths.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', `BatchMode=${interactive ? 'no' : 'yes'}`,
    '-o', 'ConnectTimeout=5',
    `root@${host.mgmtAddress}`,
  ];
}

async function waitForSsh(host: InventoryHost, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(host.mgmtAddress, 22)) {
      const probe = await $`ssh ${sshArgs(host)} true`.nothrow().quiet();
      if (probe.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`${host.name}: SSH refused the controller key: ${probe.stderr.trim()}`);
    } else if (Date.now() > deadline) {
      throw new Error(`${host.name}: nothing answers SSH on ${host.mgmtAddress}:22`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Removes everything an earlier lab made, from the journal and by sweeping for lab processes and mounts. */
export async function teardown(log: Log): Promise<{ processes: number; resources: number }> {
  const resources = journal();
  // Hosts first: SIGTERM makes systemd-nspawn power its host off cleanly; stragglers are killed.
  const processes = labProcesses();
  await stopProcesses(processes, 'SIGTERM', 20_000);
  // A host whose nspawn was killed hard leaves its processes running in the host's namespace.
  for (const r of resources) {
    if (r.kind === 'netns' && existsSync(`/run/netns/${r.name}`)) {
      const pids = (await $`ip netns pids ${r.name}`.nothrow().quiet()).stdout.split('\n').filter(Boolean).map(Number);
      await stopProcesses(pids, 'SIGKILL', 0);
    }
  }
  const mounts = labMounts();
  for (const path of mounts) await unmount(path);
  for (const r of [...resources].reverse()) await remove(r);
  clearJournal();
  const count = resources.length;
  if (processes.length + count > 0) log(`removed ${processes.length} processes and ${count} journaled resources`);
  return { processes: processes.length, resources: count };
}

function labMounts(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((mountpoint) => mountpoint.startsWith(`${stateDir}/`))
    .reverse(); // innermost first
}

async function unmount(path: string): Promise<void> {
  const result = await $`umount ${path}`.nothrow().quiet();
  if (result.exitCode !== 0 && labMounts().includes(path)) await $`umount --lazy ${path}`.quiet();
}

async function remove(r: Resource): Promise<void> {
  switch (r.kind) {
    case 'mount':
      if (labMounts().includes(r.path)) await unmount(r.path);
      return;
    case 'dir':
      rmSync(r.path, { recursive: true, force: true });
      return;
    case 'netns':
      if (existsSync(`/run/netns/${r.name}`)) await $`ip netns delete ${r.name}`.quiet();
      return;
    case 'link':
      if (existsSync(`/sys/class/net/${r.name}`)) await $`ip link delete ${r.name}`.quiet();
      return;
    case 'cgroup':
      removeCgroupTree(r.path);
      return;
    case 'nft-table':
      await $`nft delete table ${r.family} ${r.name}`.nothrow().quiet();
      return;
  }
}

export function down(log: Log): Promise<{ processes: number; resources: number }> {
  checkPrerequisites();
  return withLock(async () => {
    const result = await teardown(log);
    rmSync(paths.hosts, { recursive: true, force: true });
    rmSync(paths.logs, { recursive: true, force: true });
    return result;
  });
}

export interface HostStatus {
  name: string;
  zone: string;
  address: string;
  mgmtAddress: string;
  groups: readonly string[];
  running: boolean;
  systemd: string;
  memoryMiB: number;
}

export interface LabStatus {
  up: boolean;
  readyAt?: string;
  aptProxy: boolean;
  /** whether the controller answers NTP, when the inventory makes it a time source */
  timeSource?: boolean;
  hosts: HostStatus[];
  memoryMiB: number;
}

export async function status(inventoryDir: string): Promise<LabStatus> {
  const inventory = loadInventory(inventoryDir);
  const ready = readReady();
  const hosts = await Promise.all(
    inventory.hosts.map(async (h): Promise<HostStatus> => {
      const nspawn = findNspawn(h.name);
      const init = nspawn === undefined ? undefined : hostInit(nspawn);
      const systemd = init === undefined ? 'stopped' : (await inHost(init, ['systemctl', 'is-system-running'])).stdout.trim();
      return {
        name: h.name,
        zone: h.zone,
        address: h.address,
        mgmtAddress: h.mgmtAddress,
        groups: h.groups,
        running: init !== undefined,
        systemd,
        memoryMiB: init === undefined ? 0 : await netnsMemoryMiB(h.name),
      };
    }),
  );
  const settings = labSettings(inventory);
  // the controller's services are probed only while its management address exists: without the lab's bridge, a
  // packet to that address would leave the machine by its default route
  const mgmtUp = existsSync(`/sys/class/net/${MGMT_BRIDGE}`);
  return {
    up: ready !== undefined && hosts.every((h) => h.running),
    ...(ready ? { readyAt: ready.readyAt } : {}),
    aptProxy: mgmtUp && (await accepts(inventory.mgmt.controller, settings.aptProxyPort)),
    ...(controllerServesTime(inventory) ? { timeSource: mgmtUp && (await ntpQuery(inventory.mgmt.controller)) !== undefined } : {}),
    hosts,
    memoryMiB: Math.round(hosts.reduce((sum, h) => sum + h.memoryMiB, 0)),
  };
}

/** Proportional set size of every process in the host's network namespace (its whole process tree), in MiB. */
async function netnsMemoryMiB(ns: string): Promise<number> {
  const pids = (await $`ip netns pids ${ns}`.nothrow().quiet()).stdout.split('\n').filter(Boolean);
  let kib = 0;
  for (const pid of pids) {
    try {
      const pss = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kib += Number(pss?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return Math.round(kib / 102.4) / 10;
}

/** Runs a playbook against the inventory with the pinned Ansible; resolves to its exit code. */
export function runPlaybook(inventoryDir: string, playbook: string, extra: string[] = [], outputToStderr = false): Promise<number> {
  const exe = join(repoRoot, '.toolchain/venv/bin/ansible-playbook');
  if (!existsSync(exe)) throw new Error('ansible-playbook is not installed; run: npm run bootstrap');
  return new Promise((done, fail) => {
    const child = spawn(exe, ['-i', inventoryDir, playbook, ...extra], {
      // a caller whose stdout is JSON (drills --json) sends Ansible's output to stderr
      stdio: outputToStderr ? ['ignore', process.stderr, process.stderr] : 'inherit',
      env: { ...process.env, ANSIBLE_CONFIG: join(repoRoot, 'ansible/ansible.cfg') },
    });
    child.on('error', fail);
    child.on('exit', (code) => { done(code ?? 1); });
  });
}

/** Names of lab resources still present on the machine (empty after a clean `down`). */
export async function leftovers(inventory: Inventory): Promise<string[]> {
  const found: string[] = [];
  const netns = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  for (const name of [ROUTER_NS, ...inventory.hosts.map((h) => h.name)]) {
    if (netns.includes(name)) found.push(`netns ${name}`);
  }
  if (existsSync(`/sys/class/net/${MGMT_BRIDGE}`)) found.push(`link ${MGMT_BRIDGE}`);
  for (const link of readdirSync('/sys/class/net')) if (link.startsWith('m-')) found.push(`link ${link}`);
  if ((await $`nft list table inet ${NFT_TABLE}`.nothrow().quiet()).exitCode === 0) found.push(`nft table inet ${NFT_TABLE}`);
  for (const mount of labMounts()) found.push(`mount ${mount}`);
  for (const cgroup of labCgroupRoots()) if (existsSync(cgroup)) found.push(`cgroup ${cgroup}`);
  for (const pid of labProcesses()) found.push(`process ${pid}`);
  if (journal().length > 0) found.push(`journal ${paths.journal}`);
  return found;
}

/**
 * A power cut of one host: SIGKILL to its PID 1 ends every process of the host at once (its PID namespace dies
 * with it). Its disk (the overlay root) and its network stay, as for a real machine that lost power. Unlike a real
 * power cut, writes already in the controller's page cache survive: the lab does not lose unsynced data.
 */
export async function killHost(inventoryDir: string, name: string): Promise<void> {
  const host = loadInventory(inventoryDir).hosts.find((h) => h.name === name);
  if (!host) throw new Error(`unknown host '${name}'`);
  const nspawn = findNspawn(name);
  const init = nspawn === undefined ? undefined : hostInit(nspawn);
  if (nspawn === undefined || init === undefined) throw new Error(`host ${name} is not running`);
  process.kill(init, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (findNspawn(name) !== undefined) {
    if (Date.now() > deadline) throw new Error(`${name}: systemd-nspawn did not exit within 10 s of the kill`);
    await sleep(50);
  }
}

/**
 * The loss of a stopped host's disk, as far as the given folders go (absolute paths in the host): each is removed
 * from its root, as a replaced disk would come back without them. Refuses a running host and a path outside it.
 */
export function wipeHostPaths(inventoryDir: string, name: string, hostPaths: readonly string[]): void {
  if (!loadInventory(inventoryDir).hosts.some((h) => h.name === name)) throw new Error(`unknown host '${name}'`);
  if (findNspawn(name) !== undefined) throw new Error(`host ${name} is running: stop it before its disk is lost`);
  const root = join(paths.hostDir(name), 'root');
  if (!existsSync(join(root, 'etc/os-release'))) throw new Error(`host ${name}'s root is not mounted at ${root}`);
  for (const path of hostPaths) {
    const inRoot = resolve(root, `.${path}`);
    if (!path.startsWith('/') || !inRoot.startsWith(`${root}/`)) throw new Error(`'${path}' is not an absolute path inside host ${name}`);
    rmSync(inRoot, { recursive: true, force: true });
  }
}

/** Boots a stopped host again on its own root (as it was when it stopped); returns once systemd runs and SSH answers. */
export async function startHost(inventoryDir: string, name: string): Promise<{ seconds: number }> {
  const inventory = loadInventory(inventoryDir);
  const host = inventory.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`unknown host '${name}'`);
  const ready = readReady();
  if (!ready) throw new Error('the lab is not up (npm run lab -- up)');
  if (findNspawn(name) !== undefined) throw new Error(`host ${name} is running already`);
  const started = performance.now();
  const settings = labSettings(inventory);
  const nspawnPid = boot(host, settings.capabilities);
  const booted = await waitBooted(name, nspawnPid, settings.bootTimeoutMs);
  if (booted.state !== 'running') {
    throw new Error(`${name}: systemd state ${booted.state}${booted.failed ? `; failed units: ${booted.failed.replace(/\n/g, ', ')}` : ''}`);
  }
  await waitForSsh(host, settings.bootTimeoutMs);
  writeReady({ ...ready, hosts: { ...ready.hosts, [name]: { nspawnPid } } });
  return { seconds: secondsSince(started) };
}
