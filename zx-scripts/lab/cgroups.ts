// A cgroup of its own for each host. systemd-nspawn with --keep-unit runs the host in the cgroup of whoever
// started it, so without this every host's systemd would manage the SAME cgroup subtree and trip over the
// others' units (seen: systemd-remount-fs failing with 219/CGROUP on a random host).
// Hybrid layout (cgroup v1 name=systemd + v2 "unified", as on these machines) and pure v2 are both handled.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';
const GROUP = 'omslab';

/** The hierarchies systemd in a host uses: name=systemd (v1) and unified (v2), or the one v2 root. */
function hierarchies(): string[] {
  if (existsSync(join(ROOT, 'cgroup.controllers'))) return [ROOT];
  return ['systemd', 'unified'].map((h) => join(ROOT, h)).filter((dir) => existsSync(join(dir, 'cgroup.procs')));
}

/** Folders of the host's cgroup, one per hierarchy (created by ensureHostCgroups). */
export function hostCgroups(host: string): string[] {
  return hierarchies().map((h) => join(h, GROUP, host));
}

export function labCgroupRoots(): string[] {
  return hierarchies().map((h) => join(h, GROUP));
}

export function ensureHostCgroups(host: string): string[] {
  const dirs = hostCgroups(host);
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  return dirs;
}

/** Removes a cgroup folder and everything below it, deepest first (cgroups are removed with rmdir only). */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    const child = join(dir, entry);
    if (statSync(child).isDirectory()) removeCgroupTree(child);
  }
  rmdirSync(dir);
}
