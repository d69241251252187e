import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadInventory } from '../lib/inventory.ts';
import { containsHost, parseCidr, parseIPv4 } from '../lib/ipv4.ts';
import { MGMT_BRIDGE, ROUTER_NS, controllerRuleset, networkPlan } from './network.ts';

const inventory = loadInventory(join(resolve(import.meta.dirname, '../..'), 'inventories/lab'));
const plan = networkPlan(inventory);
const labSubnets = [inventory.mgmt.subnet, ...inventory.zones.map((z) => z.subnet)];
const inLab = (address: string): boolean => {
  const value = parseIPv4(address.split('/')[0] ?? '');
  return value !== undefined && labSubnets.some((s) => containsHost(s, value));
};

describe('the lab network plan', () => {
  it('creates one namespace per host, named after it, plus the zone router', () => {
    const created = plan.flatMap((s) => (s.creates?.kind === 'netns' ? [s.creates.name] : []));
    assert.deepEqual(created, [ROUTER_NS, ...inventory.hosts.map((h) => h.name)]);
  });

  it('journals every namespace and every link of the controller before the command that creates it', () => {
    for (const step of plan) {
      const [, sub, verb, name] = step.cmd;
      if (sub === 'netns' && verb === 'add') assert.deepEqual(step.creates, { kind: 'netns', name });
      if (sub === 'link' && verb === 'add') assert.deepEqual(step.creates, { kind: 'link', name }, step.cmd.join(' '));
    }
  });

  it('adds addresses and routes only inside the lab subnets', () => {
    for (const step of plan) {
      const cmd = step.cmd.join(' ');
      const addr = / addr add (\S+) /.exec(cmd);
      if (addr) assert.ok(inLab(addr[1] ?? ''), `address outside the lab: ${cmd}`);
      if (cmd.includes(' route ')) {
        const via = / via (\S+) /.exec(cmd);
        assert.ok(via && inventory.zones.some((z) => z.router === via[1]), `a route not via a zone router: ${cmd}`);
        assert.match(cmd, /^ip -n \S+ route add default via \S+ dev eth0$/, 'routes are set inside hosts only');
        assert.ok(!cmd.startsWith(`ip -n ${ROUTER_NS}`), 'the zone router gets no default route: zone traffic cannot leave the lab');
      }
    }
  });

  it('gives each host eth0 on its zone bridge and mgmt0 on the management bridge', () => {
    for (const host of inventory.hosts) {
      const cmds = plan.map((s) => s.cmd.join(' '));
      assert.ok(cmds.includes(`ip -n ${ROUTER_NS} link set z-${host.name} master br-${host.zone} up`));
      assert.ok(cmds.includes(`ip link set m-${host.name} master ${MGMT_BRIDGE} up`));
      assert.ok(cmds.includes(`bridge link set dev m-${host.name} isolated on`), 'hosts cannot reach each other over management');
      const zone = inventory.zones.find((z) => z.name === host.zone);
      assert.ok(cmds.includes(`ip -n ${host.name} addr add ${host.address}/${zone?.subnet.prefix ?? 0} dev eth0`));
    }
  });

  it('keeps interface names within the kernel limit of 15 characters', () => {
    for (const step of plan) {
      for (const [i, word] of step.cmd.entries()) {
        if (['add', 'name', 'set'].includes(step.cmd[i - 1] ?? '') && !word.includes('/') && !word.includes('.')) {
          assert.ok(word.length <= 15, `interface name too long: ${word}`);
        }
      }
    }
  });

  it('lets hosts reach only the package proxy and the time source on the controller, and forwards nothing from the management bridge', () => {
    const rules = controllerRuleset(inventory, 3143);
    const controller = inventory.mgmt.controller.replace(/\./g, '\\.');
    assert.match(rules, new RegExp(`iifname "${MGMT_BRIDGE}" ip daddr ${controller} tcp dport 3143 accept`));
    assert.match(rules, new RegExp(`iifname "${MGMT_BRIDGE}" ip daddr ${controller} udp dport 123 accept`));
    const noTime = controllerRuleset({ ...inventory, timeSources: ['192.0.2.123'] }, 3143);
    assert.doesNotMatch(noTime, /udp dport/, 'a controller that is no time source opens no NTP port');
    assert.match(rules, new RegExp(`iifname "${MGMT_BRIDGE}" drop\\n  \\}`));
    assert.match(rules, new RegExp(`chain forward \\{[^}]*iifname "${MGMT_BRIDGE}" drop[^}]*oifname "${MGMT_BRIDGE}" drop`));
  });
});

describe('IPv4 helpers', () => {
  it('parse networks and reject host bits', () => {
    assert.equal(parseCidr('10.90.0.0/24')?.prefix, 24);
    assert.equal(parseCidr('10.90.0.1/24'), undefined);
    assert.equal(parseCidr('10.90.0.0/33'), undefined);
    assert.equal(parseIPv4('10.90.0.256'), undefined);
    assert.equal(parseIPv4('010.1.1.1'), undefined);
  });
});
