// Reads an Ansible YAML inventory of this kit (hosts.yml + group_vars/all) into a checked topology model.
// The lab engine builds hosts and networks from it; later the PKI and the firewall read it too.
//
// Supported inventory shape (a subset of Ansible's YAML inventory, the one the kit's inventories use):
//   all: { vars?, hosts?, children: { <group>: { vars?, hosts?: { <host>: <vars or null> }, children? } } }
// plus group_vars/all.yml or group_vars/all/*.yml, and host_vars/<host>.yml.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { containsHost, formatIPv4, overlaps, parseCidr, parseIPv4, type Cidr } from './ipv4.ts';

export interface Zone {
  readonly name: string;
  readonly subnet: Cidr;
  readonly router: string;
}

export interface InventoryHost {
  readonly name: string;
  readonly zone: string;
  /** address on its zone network */
  readonly address: string;
  /** address on the management network (ansible_host) */
  readonly mgmtAddress: string;
  /** every group the host belongs to, directly or through a parent group, `all` excluded */
  readonly groups: readonly string[];
  /**
   * lab only: extra addresses of the host on its zone network (lab_source_addresses: {first, count}), from which the
   * lab's client sends load, so per-address rate limits see many users as on the internet
   */
  readonly sourceAddresses: readonly string[];
  readonly vars: Readonly<Record<string, unknown>>;
}

export interface Inventory {
  readonly dir: string;
  readonly hosts: readonly InventoryHost[];
  readonly zones: readonly Zone[];
  readonly mgmt: { readonly subnet: Cidr; readonly controller: string };
  /** the NTP servers every host follows (network_time_sources; ansible/check-inventory.yml checks them) */
  readonly timeSources: readonly string[];
  readonly gatewayVip: string | undefined;
  /** the API's public name at the VIP (network_gateway_name), in the gateways' certificates */
  readonly gatewayName: string | undefined;
  readonly domain: string;
  /** variables of the `all` group (group_vars/all and all.vars) */
  readonly vars: Readonly<Record<string, unknown>>;
}

export interface InventoryProblem {
  /** the host concerned, when there is one */
  readonly host?: string;
  /** the variable or key concerned */
  readonly field: string;
  readonly message: string;
}

export class InventoryError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly InventoryProblem[],
  ) {
    super(
      `inventory ${source} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p.host ? `host ${p.host}, ` : ''}field ${p.field}: ${p.message}`).join('\n'),
    );
    this.name = 'InventoryError';
  }
}

/** Host names become network namespace names and interface names (`m-<host>`, at most 15 characters). */
const HOST_NAME = /^[a-z][a-z0-9-]{0,12}$/;
/** Names the lab engine uses for itself; a host may not take them. */
export const RESERVED_NAMES = new Set(['lab-router', 'localhost', 'all', 'ungrouped']);

type Vars = Record<string, unknown>;
interface RawHost {
  name: string;
  vars: Vars;
  definedIn: string[];
  groups: Set<string>;
}

export function loadInventory(dir: string): Inventory {
  const source = relative(process.cwd(), dir) || dir;
  const problems: InventoryProblem[] = [];
  const hostsFile = ['hosts.yml', 'hosts.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!hostsFile) {
    throw new InventoryError(source, [{ field: 'hosts.yml', message: `no hosts.yml in ${dir}` }]);
  }
  const root = readYaml(hostsFile, problems);
  const rawHosts = new Map<string, RawHost>();
  const allVars: Vars = {};
  if (root !== undefined) {
    if (!isRecord(root) || !isRecord(root['all'])) {
      problems.push({ field: 'all', message: `${relative(dir, hostsFile)} must have a top-level 'all' group` });
    } else {
      walkGroup('all', root['all'], [], rawHosts, allVars, problems);
    }
  }
  Object.assign(allVars, readVarsDir(join(dir, 'group_vars'), 'all', problems));
  for (const host of rawHosts.values()) {
    Object.assign(host.vars, readVarsDir(join(dir, 'host_vars'), host.name, problems));
  }
  if (problems.length > 0) throw new InventoryError(source, problems);
  const inventory = checkTopology(dir, [...rawHosts.values()], allVars, problems);
  if (problems.length > 0 || !inventory) throw new InventoryError(source, problems);
  return inventory;
}

function walkGroup(
  group: string,
  node: unknown,
  parents: string[],
  hosts: Map<string, RawHost>,
  allVars: Vars,
  problems: InventoryProblem[],
): void {
  if (node === null || node === undefined) return;
  if (!isRecord(node)) {
    problems.push({ field: `group ${group}`, message: 'must be a mapping with hosts, children or vars' });
    return;
  }
  const lineage = group === 'all' ? parents : [...parents, group];
  for (const key of Object.keys(node)) {
    if (!['hosts', 'children', 'vars'].includes(key)) {
      problems.push({ field: `group ${group}`, message: `unknown key '${key}' (expected hosts, children or vars)` });
    }
  }
  if (group === 'all' && isRecord(node['vars'])) Object.assign(allVars, node['vars']);
  const hostMap = node['hosts'];
  if (hostMap !== undefined && hostMap !== null) {
    if (!isRecord(hostMap)) {
      problems.push({ field: `group ${group}.hosts`, message: 'must be a mapping of host names' });
    } else {
      for (const [name, vars] of Object.entries(hostMap)) {
        addHost(name, vars, group, lineage, hosts, problems);
      }
    }
  }
  const children = node['children'];
  if (children !== undefined && children !== null) {
    if (!isRecord(children)) {
      problems.push({ field: `group ${group}.children`, message: 'must be a mapping of group names' });
    } else {
      for (const [child, childNode] of Object.entries(children)) {
        walkGroup(child, childNode, lineage, hosts, allVars, problems);
      }
    }
  }
}

function addHost(
  name: string,
  vars: unknown,
  group: string,
  lineage: string[],
  hosts: Map<string, RawHost>,
  problems: InventoryProblem[],
): void {
  if (!HOST_NAME.test(name) || RESERVED_NAMES.has(name)) {
    problems.push({
      host: name,
      field: 'name',
      message: RESERVED_NAMES.has(name)
        ? `'${name}' is reserved`
        : 'must be lower case letters, digits and dashes, start with a letter, at most 13 characters',
    });
  }
  const clash = [...hosts.keys()].find((other) => other !== name && other.toLowerCase() === name.toLowerCase());
  if (clash) {
    problems.push({ host: name, field: 'name', message: `duplicate name: '${clash}' differs only in case` });
  }
  if (vars !== null && vars !== undefined && !isRecord(vars)) {
    problems.push({ host: name, field: 'vars', message: `in group ${group}: host variables must be a mapping` });
    return;
  }
  const host = hosts.get(name) ?? { name, vars: {}, definedIn: [], groups: new Set<string>() };
  hosts.set(name, host);
  for (const g of lineage) host.groups.add(g);
  if (vars && Object.keys(vars).length > 0) {
    host.definedIn.push(group);
    if (host.definedIn.length > 1) {
      problems.push({
        host: name,
        field: 'name',
        message: `duplicate name: defined with variables in groups ${host.definedIn.join(' and ')}; define a host once and list it elsewhere without variables`,
      });
    }
    Object.assign(host.vars, vars);
  }
}

/** A host's lab_source_addresses ({first, count}): consecutive addresses inside its zone subnet. */
function checkSourceAddresses(host: RawHost, zone: Zone | undefined, problems: InventoryProblem[]): string[] {
  const value = host.vars['lab_source_addresses'];
  if (value === undefined) return [];
  const spec = value as { first?: unknown; count?: unknown };
  const first = typeof spec.first === 'string' ? parseIPv4(spec.first) : undefined;
  const count = spec.count;
  if (first === undefined || typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1024) {
    problems.push({ host: host.name, field: 'lab_source_addresses', message: `must be {first: IPv4 address, count: 1-1024}, got ${show(value)}` });
    return [];
  }
  const addresses = Array.from({ length: count }, (_, i) => first + i);
  const outside = addresses.find((a) => zone && !containsHost(zone.subnet, a));
  if (outside !== undefined && zone) {
    problems.push({ host: host.name, field: 'lab_source_addresses', message: `${formatIPv4(outside)} is outside the ${zone.name} zone subnet ${zone.subnet.text}` });
    return [];
  }
  return addresses.map(formatIPv4);
}

const DNS_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

function checkTopology(dir: string, raw: RawHost[], vars: Vars, problems: InventoryProblem[]): Inventory | undefined {
  const zones = checkZones(vars['network_zones'], problems);
  const mgmt = checkMgmt(vars['network_mgmt'], problems);
  const domain = typeof vars['network_domain'] === 'string' ? vars['network_domain'] : '';
  if (!DNS_NAME.test(domain)) {
    problems.push({ field: 'network_domain', message: `must be a DNS domain such as oms.example.com, got ${show(domain)}` });
  }
  if (mgmt) {
    for (const zone of zones) {
      if (overlaps(zone.subnet, mgmt.subnet)) {
        problems.push({ field: `network_zones.${zone.name}.subnet`, message: `${zone.subnet.text} overlaps the management subnet ${mgmt.subnet.text}` });
      }
    }
  }
  const owners = new Map<number, string>();
  const claim = (address: string, owner: string, problem: Omit<InventoryProblem, 'message'>): void => {
    const value = parseIPv4(address);
    if (value === undefined) return;
    const previous = owners.get(value);
    if (previous) problems.push({ ...problem, message: `duplicate address: ${address} is already used by ${previous}` });
    else owners.set(value, owner);
  };
  for (const zone of zones) claim(zone.router, `the ${zone.name} zone router`, { field: `network_zones.${zone.name}.router` });
  if (mgmt) claim(mgmt.controller, 'the controller', { field: 'network_mgmt.controller' });

  const gatewayVip = typeof vars['network_gateway_vip'] === 'string' ? vars['network_gateway_vip'] : undefined;
  const gatewayName = typeof vars['network_gateway_name'] === 'string' ? vars['network_gateway_name'] : undefined;
  const dmz = zones.find((z) => z.name === 'dmz');
  const hasGateways = raw.some((h) => h.groups.has('gateways'));
  if (hasGateways) {
    const vip = gatewayVip === undefined ? undefined : parseIPv4(gatewayVip);
    if (vip === undefined) {
      problems.push({ field: 'network_gateway_vip', message: `must be an IPv4 address in the dmz subnet, got ${show(gatewayVip)}` });
    } else if (!dmz || !containsHost(dmz.subnet, vip)) {
      problems.push({ field: 'network_gateway_vip', message: `${gatewayVip} is outside the dmz subnet ${dmz?.subnet.text ?? '(no dmz zone)'}` });
    } else {
      claim(gatewayVip ?? '', 'the gateway VIP', { field: 'network_gateway_vip' });
    }
    if (gatewayName === undefined || !DNS_NAME.test(gatewayName)) {
      problems.push({ field: 'network_gateway_name', message: `must be the API's DNS name at the VIP, such as api.example.com, got ${show(vars['network_gateway_name'])}` });
    }
  }

  const hosts: InventoryHost[] = [];
  for (const host of raw) {
    const zoneName = host.vars['zone'];
    const address = host.vars['address'];
    const mgmtAddress = host.vars['ansible_host'];
    let zone: Zone | undefined;
    if (zoneName === undefined) {
      problems.push({ host: host.name, field: 'zone', message: `host is in no zone (set zone to one of: ${zones.map((z) => z.name).join(', ')})` });
    } else {
      zone = zones.find((z) => z.name === zoneName);
      if (!zone) {
        problems.push({ host: host.name, field: 'zone', message: `unknown zone ${show(zoneName)} (known zones: ${zones.map((z) => z.name).join(', ')})` });
      }
    }
    const addressValue = typeof address === 'string' ? parseIPv4(address) : undefined;
    if (addressValue === undefined) {
      problems.push({ host: host.name, field: 'address', message: `must be an IPv4 address, got ${show(address)}` });
    } else if (zone && !containsHost(zone.subnet, addressValue)) {
      problems.push({ host: host.name, field: 'address', message: `${String(address)} is outside the ${zone.name} zone subnet ${zone.subnet.text}` });
    } else {
      claim(String(address), `host ${host.name} (address)`, { host: host.name, field: 'address' });
    }
    const mgmtValue = typeof mgmtAddress === 'string' ? parseIPv4(mgmtAddress) : undefined;
    if (mgmtValue === undefined) {
      problems.push({ host: host.name, field: 'ansible_host', message: `must be an IPv4 address on the management network, got ${show(mgmtAddress)}` });
    } else if (mgmt && !containsHost(mgmt.subnet, mgmtValue)) {
      problems.push({ host: host.name, field: 'ansible_host', message: `${String(mgmtAddress)} is outside the management subnet ${mgmt.subnet.text}` });
    } else {
      claim(String(mgmtAddress), `host ${host.name} (ansible_host)`, { host: host.name, field: 'ansible_host' });
    }
    const sourceAddresses = checkSourceAddresses(host, zone, problems);
    for (const a of sourceAddresses) claim(a, `host ${host.name} (lab_source_addresses)`, { host: host.name, field: 'lab_source_addresses' });
    hosts.push({
      name: host.name,
      zone: String(zoneName),
      address: String(address),
      mgmtAddress: String(mgmtAddress),
      groups: [...host.groups].sort(),
      sourceAddresses,
      vars: host.vars,
    });
  }
  if (hosts.length === 0) problems.push({ field: 'all', message: 'the inventory has no hosts' });
  const sources = vars['network_time_sources'];
  const timeSources = Array.isArray(sources) ? sources.filter((s): s is string => typeof s === 'string') : [];
  if (problems.length > 0 || !mgmt) return undefined;
  return { dir, hosts, zones, mgmt, timeSources, gatewayVip, gatewayName, domain, vars };
}

function checkZones(value: unknown, problems: InventoryProblem[]): Zone[] {
  if (!isRecord(value) || Object.keys(value).length === 0) {
    problems.push({ field: 'network_zones', message: 'must map each zone name to { subnet, router }' });
    return [];
  }
  const zones: Zone[] = [];
  for (const [name, spec] of Object.entries(value)) {
    const field = `network_zones.${name}`;
    if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
      problems.push({ field, message: 'a zone name is lower case letters and digits, at most 10 characters' });
      continue;
    }
    const subnet = isRecord(spec) && typeof spec['subnet'] === 'string' ? parseCidr(spec['subnet']) : undefined;
    const routerText = isRecord(spec) ? spec['router'] : undefined;
    const router = typeof routerText === 'string' ? parseIPv4(routerText) : undefined;
    if (!subnet) {
      problems.push({ field: `${field}.subnet`, message: `must be an IPv4 network such as 10.1.2.0/24, got ${show(isRecord(spec) ? spec['subnet'] : spec)}` });
      continue;
    }
    if (router === undefined || !containsHost(subnet, router)) {
      problems.push({ field: `${field}.router`, message: `must be an address inside ${subnet.text}, got ${show(routerText)}` });
      continue;
    }
    const clash = zones.find((z) => overlaps(z.subnet, subnet));
    if (clash) {
      problems.push({ field: `${field}.subnet`, message: `${subnet.text} overlaps zone ${clash.name} (${clash.subnet.text})` });
      continue;
    }
    zones.push({ name, subnet, router: String(routerText) });
  }
  return zones;
}

function checkMgmt(value: unknown, problems: InventoryProblem[]): Inventory['mgmt'] | undefined {
  const subnet = isRecord(value) && typeof value['subnet'] === 'string' ? parseCidr(value['subnet']) : undefined;
  const controller = isRecord(value) ? value['controller'] : undefined;
  if (!subnet) {
    problems.push({ field: 'network_mgmt.subnet', message: `must be an IPv4 network, got ${show(isRecord(value) ? value['subnet'] : value)}` });
    return undefined;
  }
  const controllerValue = typeof controller === 'string' ? parseIPv4(controller) : undefined;
  if (controllerValue === undefined || !containsHost(subnet, controllerValue)) {
    problems.push({ field: 'network_mgmt.controller', message: `must be an address inside ${subnet.text}, got ${show(controller)}` });
    return undefined;
  }
  return { subnet, controller: String(controller) };
}

/** Variables of one group or host: `<base>/<name>.yml` or every `*.yml` in `<base>/<name>/`, merged in name order. */
function readVarsDir(base: string, name: string, problems: InventoryProblem[]): Vars {
  const files: string[] = [];
  for (const ext of ['.yml', '.yaml']) {
    if (existsSync(join(base, name + ext))) files.push(join(base, name + ext));
  }
  const folder = join(base, name);
  if (existsSync(folder) && statSync(folder).isDirectory()) {
    for (const f of readdirSync(folder).sort()) {
      if (/\.ya?ml$/.test(f)) files.push(join(folder, f));
    }
  }
  const vars: Vars = {};
  for (const file of files) {
    const data = readYaml(file, problems);
    if (data === undefined || data === null) continue;
    if (!isRecord(data)) problems.push({ field: file, message: 'a vars file must be a mapping' });
    else Object.assign(vars, data);
  }
  return vars;
}

function readYaml(file: string, problems: InventoryProblem[]): unknown {
  let doc: Document;
  try {
    doc = parseDocument(readFileSync(file, 'utf8'), { uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    problems.push({ field: file, message: `cannot read: ${(err as Error).message}` });
    return undefined;
  }
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const line = error.linePos?.[0].line;
      const duplicate = /unique/i.test(error.message) ? findDuplicateKey(doc) : undefined;
      problems.push({
        ...(duplicate ? { host: duplicate } : {}),
        field: `${file}${line ? `:${line}` : ''}`,
        message: duplicate ? `duplicate name: '${duplicate}' appears twice in one mapping` : error.message.split('\n')[0] ?? error.message,
      });
    }
    return undefined;
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

/** The first key that appears twice in one mapping of the document (YAML's "keys must be unique" names no key). */
function findDuplicateKey(doc: Document): string | undefined {
  const visit = (node: unknown): string | undefined => {
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) return key;
        seen.add(key);
        const inner = visit(pair.value);
        if (inner) return inner;
      }
    } else if (isSeq(node)) {
      for (const item of node.items) {
        const inner = visit(item);
        if (inner) return inner;
      }
    }
    return undefined;
  };
  return visit(doc.contents);
}

function isRecord(value: unknown): value is Vars {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** Hosts of a group (direct or inherited membership), in inventory order. */
export function groupHosts(inventory: Inventory, group: string): InventoryHost[] {
  return inventory.hosts.filter((h) => h.groups.includes(group));
}
