import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { InventoryError, groupHosts, loadInventory, type InventoryProblem } from './inventory.ts';

const repo = resolve(import.meta.dirname, '../..');
const labInventory = join(repo, 'inventories/lab');

/** A copy of the lab inventory with one text edit applied to one of its files. */
function editedInventory(file: string, from: string | RegExp, to: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oms-inv-'));
  cpSync(labInventory, dir, { recursive: true });
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  const edited = text.replace(from, to);
  assert.notEqual(edited, text, `the edit of ${file} must change something`);
  writeFileSync(path, edited);
  return dir;
}

function problemsOf(dir: string): InventoryProblem[] {
  try {
    loadInventory(dir);
  } catch (err) {
    assert.ok(err instanceof InventoryError, `expected an InventoryError, got ${String(err)}`);
    assert.ok(err.message.includes('field'), 'the message names the field');
    return [...err.problems];
  }
  assert.fail('the inventory was accepted');
}

describe('the lab inventory', () => {
  const inventory = loadInventory(labInventory);

  it('has every host of the architecture, each in its zone', () => {
    const byZone = (zone: string) => inventory.hosts.filter((h) => h.zone === zone).map((h) => h.name);
    assert.deepEqual(byZone('ext'), ['client']);
    assert.deepEqual(byZone('dmz'), ['gw1', 'gw2']);
    assert.deepEqual(byZone('app'), ['app1', 'app2', 'cache1', 'cache2', 'cache3']);
    assert.deepEqual(byZone('data'), ['db1', 'db2', 'db3', 'kafka1', 'kafka2', 'kafka3']);
    assert.deepEqual(byZone('ops'), ['backup1', 'mon1']);
    assert.equal(inventory.hosts.length, 16);
  });

  it('has the groups the roles target', () => {
    const names = (group: string) => groupHosts(inventory, group).map((h) => h.name);
    assert.deepEqual(names('gateways'), ['gw1', 'gw2']);
    assert.deepEqual(names('etcd'), ['db1', 'db2', 'db3']);
    assert.deepEqual(names('postgres'), ['db1', 'db2', 'db3']);
    assert.deepEqual(names('kafka'), ['kafka1', 'kafka2', 'kafka3']);
    assert.deepEqual(names('zookeeper'), ['kafka1', 'kafka2', 'kafka3']);
    assert.deepEqual(names('redis_sentinel'), ['cache1', 'cache2', 'cache3']);
    assert.deepEqual(names('backup'), ['backup1']);
    assert.deepEqual(names('monitoring'), ['mon1']);
    assert.equal(inventory.gatewayVip, '10.90.20.100');
  });

  it('reads the same hosts and groups as Ansible itself', () => {
    const exe = join(repo, '.toolchain/venv/bin/ansible-inventory');
    const listed = JSON.parse(execFileSync(exe, ['-i', labInventory, '--list'], { encoding: 'utf8' })) as Record<
      string,
      { hosts?: string[]; children?: string[] }
    > & { _meta: { hostvars: Record<string, { address: string; zone: string; ansible_host: string }> } };
    for (const host of inventory.hosts) {
      const vars = listed._meta.hostvars[host.name];
      assert.ok(vars, `ansible knows ${host.name}`);
      assert.equal(vars.address, host.address);
      assert.equal(vars.zone, host.zone);
      assert.equal(vars.ansible_host, host.mgmtAddress);
      for (const group of host.groups) assert.ok(listed[group]?.hosts?.includes(host.name), `${host.name} in ${group}`);
    }
  });
});

describe('a bad inventory is refused with the host and the field named', () => {
  const cases: { name: string; file: string; from: string | RegExp; to: string; host?: string; field: string; says: RegExp }[] = [
    {
      name: 'duplicate address',
      file: 'hosts.yml',
      from: 'gw2: {zone: dmz, address: 10.90.20.12',
      to: 'gw2: {zone: dmz, address: 10.90.20.11',
      host: 'gw2',
      field: 'address',
      says: /duplicate address: 10\.90\.20\.11 is already used by host gw1/,
    },
    {
      name: 'duplicate management address',
      file: 'hosts.yml',
      from: 'ansible_host: 10.90.0.22',
      to: 'ansible_host: 10.90.0.21',
      host: 'gw2',
      field: 'ansible_host',
      says: /already used by host gw1/,
    },
    {
      name: 'address outside its zone subnet',
      file: 'hosts.yml',
      from: 'db3: {zone: data, address: 10.90.40.13',
      to: 'db3: {zone: data, address: 10.90.30.13',
      host: 'db3',
      field: 'address',
      says: /outside the data zone subnet 10\.90\.40\.0\/24/,
    },
    {
      name: 'host in no zone',
      file: 'hosts.yml',
      from: 'app2: {zone: app, address',
      to: 'app2: {address',
      host: 'app2',
      field: 'zone',
      says: /in no zone/,
    },
    {
      name: 'unknown zone',
      file: 'hosts.yml',
      from: 'gw1: {zone: dmz,',
      to: 'gw1: {zone: dzm,',
      host: 'gw1',
      field: 'zone',
      says: /unknown zone "dzm" \(known zones: ext, dmz, app, data, ops\)/,
    },
    {
      name: 'duplicate name in one group',
      file: 'hosts.yml',
      from: '        cache3: {zone: app, address: 10.90.30.23, ansible_host: 10.90.0.43}',
      to: '        cache3: {zone: app, address: 10.90.30.23, ansible_host: 10.90.0.43}\n        cache2: {zone: app, address: 10.90.30.24, ansible_host: 10.90.0.44}',
      host: 'cache2',
      field: 'hosts.yml',
      says: /duplicate name: 'cache2' appears twice/,
    },
    {
      name: 'duplicate name across groups',
      file: 'hosts.yml',
      from: '    postgres:\n      hosts:\n        db1:',
      to: '    postgres:\n      hosts:\n        db1: {zone: data, address: 10.90.40.31, ansible_host: 10.90.0.71}',
      host: 'db1',
      field: 'name',
      says: /duplicate name: defined with variables in groups etcd and postgres/,
    },
    {
      name: 'names that differ only in case',
      file: 'hosts.yml',
      from: '        db3:\n    zookeeper',
      to: '        db3:\n        DB1:\n    zookeeper',
      host: 'DB1',
      field: 'name',
      says: /lower case/,
    },
    {
      name: 'management address outside the management subnet',
      file: 'hosts.yml',
      from: 'ansible_host: 10.90.0.10,',
      to: 'ansible_host: 192.168.7.10,',
      host: 'client',
      field: 'ansible_host',
      says: /outside the management subnet/,
    },
    {
      name: 'VIP outside the DMZ',
      file: 'group_vars/all/network.yml',
      from: 'network_gateway_vip: 10.90.20.100',
      to: 'network_gateway_vip: 10.90.30.100',
      field: 'network_gateway_vip',
      says: /outside the dmz subnet/,
    },
    {
      name: 'lab source addresses reaching outside the zone',
      file: 'hosts.yml',
      from: 'lab_source_addresses: {first: 10.90.10.50, count: 200}',
      to: 'lab_source_addresses: {first: 10.90.10.200, count: 100}',
      host: 'client',
      field: 'lab_source_addresses',
      says: /10\.90\.10\.255 is outside the ext zone subnet 10\.90\.10\.0\/24/,
    },
    {
      name: 'lab source addresses taken by a host',
      file: 'hosts.yml',
      from: 'lab_source_addresses: {first: 10.90.10.50, count: 200}',
      to: 'lab_source_addresses: {first: 10.90.10.5, count: 10}',
      host: 'client',
      field: 'lab_source_addresses',
      says: /duplicate address: 10\.90\.10\.10 is already used by host client \(address\)/,
    },
    {
      name: 'an API name that is no DNS name',
      file: 'group_vars/all/network.yml',
      from: 'network_gateway_name: api.oms.lab',
      to: 'network_gateway_name: "api oms"',
      field: 'network_gateway_name',
      says: /must be the API's DNS name at the VIP, such as api\.example\.com, got "api oms"/,
    },
    {
      name: 'overlapping zone subnets',
      file: 'group_vars/all/network.yml',
      from: 'subnet: 10.90.10.0/24',
      to: 'subnet: 10.90.0.0/16',
      field: 'network_zones.dmz.subnet',
      says: /10\.90\.20\.0\/24 overlaps zone ext \(10\.90\.0\.0\/16\)/,
    },
    {
      name: 'an address that is not one',
      file: 'hosts.yml',
      from: 'address: 10.90.40.21',
      to: 'address: 10.90.40.321',
      host: 'kafka1',
      field: 'address',
      says: /must be an IPv4 address/,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const problems = problemsOf(editedInventory(c.file, c.from, c.to));
      const match = problems.find((p) => c.says.test(p.message));
      assert.ok(match, `expected a problem matching ${String(c.says)}, got:\n${problems.map((p) => JSON.stringify(p)).join('\n')}`);
      if (c.host) assert.equal(match.host, c.host);
      assert.ok(match.field.includes(c.field), `field ${match.field} names ${c.field}`);
    });
  }

  it('a missing hosts.yml', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-inv-'));
    assert.throws(() => loadInventory(dir), /no hosts\.yml/);
  });
});
