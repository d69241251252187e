// The Vagrantfile against the lab inventory it is made from: Vagrant itself validates it and lists its machines
// (no VM is started: that needs KVM or VirtualBox), and the machines' networks and sizes are the inventory's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadInventory } from '@oms/zx-scripts/lib/inventory';

const repo = resolve(import.meta.dirname, '..');
const inventory = loadInventory(resolve(repo, 'inventories/lab'));
const settings = parse(readFileSync(resolve(repo, 'inventories/vagrant/group_vars/all/vagrant.yml'), 'utf8')) as {
  vagrant_resources: Record<string, { memory?: number; cpus?: number }>;
  vagrant_router_mgmt_address: string;
};

interface Machine {
  name: string;
  zone: string | null;
  memory: number;
  cpus: number;
  router: boolean;
  networks: { name: string; ip: string; mgmt: boolean }[];
  routes: { to: string; via: string }[];
}

// Vagrant's own environment: no VirtualBox here, so libvirt is the provider it validates against
const vagrantEnv = { ...process.env, VAGRANT_DEFAULT_PROVIDER: 'libvirt', VAGRANT_CHECKPOINT_DISABLE: '1' };
const vagrant = (...args: string[]): string =>
  execFileSync('vagrant', args, { cwd: repo, env: vagrantEnv, encoding: 'utf8', timeout: 120_000 });

const plan = JSON.parse(
  execFileSync('ruby', ['-r', './vagrant/topology', '-e', 'puts OmsTopology.load(".").to_json'], { cwd: repo, encoding: 'utf8' }),
) as { machines: Machine[]; controller: string };

describe('the Vagrantfile', () => {
  it('passes vagrant validate', () => {
    assert.match(vagrant('validate'), /Vagrantfile validated successfully/);
  });

  it('defines one VM per lab inventory host, and the zone router', () => {
    const names = vagrant('status', '--machine-readable')
      .split('\n')
      .map((line) => line.split(','))
      .filter((f) => f[2] === 'state')
      .map((f) => f[1]);
    assert.deepEqual(names, ['router', ...inventory.hosts.map((h) => h.name)]);
  });

  it("puts each VM on its zone's network at its address and on management at its ansible_host", () => {
    for (const host of inventory.hosts) {
      const machine = plan.machines.find((m) => m.name === host.name);
      assert.ok(machine, host.name);
      assert.equal(machine.zone, host.zone);
      assert.deepEqual(
        machine.networks.map((n) => [n.name, n.ip, n.mgmt]),
        [[`oms-${host.zone}`, host.address, false], ['oms-mgmt', host.mgmtAddress, true]],
      );
      // every other zone through its own zone's router
      const own = inventory.zones.find((z) => z.name === host.zone);
      assert.deepEqual(
        machine.routes,
        inventory.zones.filter((z) => z.name !== host.zone).map((z) => ({ to: z.subnet.text, via: own?.router })),
      );
    }
    assert.equal(plan.controller, inventory.mgmt.controller);
  });

  it("gives the router each zone's router address and a free management address", () => {
    const router = plan.machines.find((m) => m.router);
    assert.ok(router);
    assert.deepEqual(
      router.networks.filter((n) => !n.mgmt).map((n) => [n.name, n.ip]),
      inventory.zones.map((z) => [`oms-${z.name}`, z.router]),
    );
    const mgmt = router.networks.find((n) => n.mgmt)?.ip;
    assert.equal(mgmt, settings.vagrant_router_mgmt_address);
    assert.ok(!inventory.hosts.some((h) => h.mgmtAddress === mgmt) && mgmt !== inventory.mgmt.controller);
  });

  it('sizes each VM by the largest of its groups', () => {
    const resources = settings.vagrant_resources;
    for (const host of inventory.hosts) {
      const specs = [resources['default'], ...host.groups.map((g) => resources[g])].filter((s) => s !== undefined);
      const machine = plan.machines.find((m) => m.name === host.name);
      assert.ok(machine, host.name);
      assert.equal(machine.memory, Math.max(...specs.map((s) => s.memory ?? 0)), host.name);
      assert.equal(machine.cpus, Math.max(...specs.map((s) => s.cpus ?? 1)), host.name);
    }
  });

  it("writes provisioning scripts the shell parses, and a router boot policy nft accepts", () => {
    const ruby = (expr: string): string =>
      execFileSync('ruby', ['-r', './vagrant/topology', '-e', `t = OmsTopology.load("."); ${expr}`], { cwd: repo, encoding: 'utf8' });
    const router = ruby('puts OmsTopology.router_script(t.machines.find(&:router), t.router_interfaces)');
    const routes = ruby('puts OmsTopology.routes_script(t.machines.reject(&:router).first)');
    for (const script of [router, routes]) execFileSync('bash', ['-n'], { input: script });
    assert.match(router, /MACAddress=02:90:00:00:00:01\n\[Link\]\nName=zone-ext/);
    assert.match(routes, /ExecStart=\/sbin\/ip route replace 10\.90\.20\.0\/24 via 10\.90\.10\.1/);
    // nft -c only parses and checks: nothing is loaded
    execFileSync('nft', ['-c', '-f', '-'], { input: ruby('print OmsTopology::ROUTER_BOOT_POLICY') });
  });

  it('refuses a router management address a host already has, naming both', () => {
    const script = [
      'require "./vagrant/topology"',
      'inv = YAML.safe_load(File.read("inventories/lab/hosts.yml"))',
      'net = YAML.safe_load(File.read("inventories/lab/group_vars/all/network.yml"))',
      'set = YAML.safe_load(File.read("inventories/vagrant/group_vars/all/vagrant.yml"))',
      `set["vagrant_router_mgmt_address"] = ${JSON.stringify(inventory.hosts[0]?.mgmtAddress)}`,
      'begin; OmsTopology.build(inv, net, set); rescue OmsTopology::Error => e; puts e.message; end',
    ].join('; ');
    const out = execFileSync('ruby', ['-e', script], { cwd: repo, encoding: 'utf8' });
    assert.equal(
      out.trim(),
      `vagrant: vagrant_router_mgmt_address ${inventory.hosts[0]?.mgmtAddress} is already used by ${inventory.hosts[0]?.name}`,
    );
  });
});
