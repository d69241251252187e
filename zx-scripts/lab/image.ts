// The cached Debian base image every lab host boots from (read-only lower layer of each host's overlay).
// Built once with debootstrap, keyed by suite, mirror and package list; a build killed half-way never
// becomes the cache because the finished tree is renamed into place last.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import { paths } from './state.ts';

/** Bump when the steps below change what ends up in the image. */
const RECIPE = 2;

export interface ImageSpec {
  suite: string;
  mirror: string;
  packages: string[];
}

export function imageDir(spec: ImageSpec): string {
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, ...spec, packages: [...spec.packages].sort() }))
    .digest('hex')
    .slice(0, 12);
  return join(paths.images, `debian-${spec.suite}-${key}`);
}

export async function ensureImage(spec: ImageSpec, log: (line: string) => void): Promise<{ dir: string; built: boolean }> {
  const dir = imageDir(spec);
  const marker = `${dir}.complete`;
  if (existsSync(marker)) return { dir, built: false };
  mkdirSync(paths.images, { recursive: true });
  for (const stale of readdirSync(paths.images).filter((d) => d.endsWith('.partial'))) {
    rmSync(join(paths.images, stale), { recursive: true, force: true });
  }
  const partial = `${dir}.partial`;
  log(`building the ${spec.suite} base image with debootstrap (about 80 s, once): ${dir}`);
  await $`debootstrap --variant=minbase --include=${spec.packages.join(',')} ${spec.suite} ${partial} ${spec.mirror}`.quiet();
  // Per-host identity is made at boot time (hosts.ts): no shared host keys, machine id or resolver.
  await $`sh -c ${'rm -f "$1"/etc/ssh/ssh_host_* "$1"/var/lib/dbus/machine-id "$1"/etc/resolv.conf && : > "$1"/etc/machine-id'} _ ${partial}`;
  // Hosts fetch fresh package lists through the controller's proxy; stale lists from build time would mislead apt.
  await $`sh -c ${'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb'} _ ${partial}`;
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  writeFileSync(marker, new Date().toISOString() + '\n');
  return { dir, built: true };
}
