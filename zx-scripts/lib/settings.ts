// The kit's settings as its tools outside Ansible need them (the drills' agents, the lab's commands): a port, a name,
// read where Ansible reads it, so that it is said once. The value is the inventory's (a host's own variables, then the
// `all` group's) or else the role's default (roles/<role>/defaults/main.yml). Only literal values: a default that is
// a Jinja expression is Ansible's to resolve, and asking for it here is an error naming it.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Inventory, InventoryHost } from './inventory.ts';

const ROLES = resolve(dirname(fileURLToPath(import.meta.url)), '../../roles');
const defaultsCache = new Map<string, Record<string, unknown>>();

/** A role's defaults/main.yml, parsed (read once). */
export function roleDefaults(role: string, rolesDir = ROLES): Record<string, unknown> {
  const path = join(rolesDir, role, 'defaults', 'main.yml');
  let defaults = defaultsCache.get(path);
  if (defaults === undefined) {
    defaults = (parse(readFileSync(path, 'utf8')) ?? {}) as Record<string, unknown>;
    defaultsCache.set(path, defaults);
  }
  return defaults;
}

export class SettingError extends Error {
  override name = 'SettingError';
}

/** A literal setting: the host's variable, the inventory's `all` variable, or the role's default, in that order. */
export function setting(role: string, name: string, options: { inventory?: Inventory; host?: InventoryHost; rolesDir?: string } = {}): string | number | boolean {
  const value = options.host?.vars[name] ?? options.inventory?.vars[name] ?? roleDefaults(role, options.rolesDir)[name];
  if (value === undefined) throw new SettingError(`${name}: neither the inventory nor roles/${role}/defaults/main.yml sets it`);
  if (typeof value === 'string' && value.includes('{{')) throw new SettingError(`${name}: '${value}' is a Jinja expression; only Ansible resolves it`);
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw new SettingError(`${name}: not a single value (${JSON.stringify(value)})`);
  return value;
}

/** A setting that must be a TCP port. */
export function portSetting(role: string, name: string, options: Parameters<typeof setting>[2] = {}): number {
  const value = Number(setting(role, name, options));
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new SettingError(`${name}: not a TCP port (${String(setting(role, name, options))})`);
  return value;
}
