// The lab's networks, derived from the inventory only:
//   - one bridge per zone, inside the zone router's namespace (`lab-router`), which routes between zones;
//     its firewall policy is the firewall role's business, routing works from the start;
//   - a management bridge in the controller's namespace, carrying the controller's address; each host has a
//     `mgmt0` leg on an isolated port of it (hosts reach the controller, not each other) and nothing is
//     forwarded to or from it, so lab traffic cannot reach the uplink;
//   - one network namespace per host, named after it, with `eth0` on its zone bridge (default route via the
//     zone router) and `mgmt0` on the management bridge.
// Nothing here adds a route outside the lab's own subnets.
import type { Inventory } from '../lib/inventory.ts';
import type { Resource } from './state.ts';
import { NTP_PORT, controllerServesTime } from './time-source.ts';

export const ROUTER_NS = 'lab-router';
export const MGMT_BRIDGE = 'omslab-mgmt';
export const NFT_TABLE = 'omslab';

export interface NetworkStep {
  /** journaled before the command runs, when the command creates something */
  creates?: Resource;
  cmd: string[];
}

export const zoneBridge = (zone: string): string => `br-${zone}`;
const prefixOf = (inventory: Inventory, zone: string): number =>
  inventory.zones.find((z) => z.name === zone)?.subnet.prefix ?? 24;

/**
 * The controller-side isolation table: hosts may reach the controller's package proxy, and its time source when the
 * inventory makes it one (network_time_sources), and nothing is forwarded.
 */
export function controllerRuleset(inventory: Inventory, aptProxyPort: number): string {
  return `table inet ${NFT_TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "${MGMT_BRIDGE}" ct state established,related accept
    iifname "${MGMT_BRIDGE}" ip daddr ${inventory.mgmt.controller} tcp dport ${aptProxyPort} accept
${controllerServesTime(inventory) ? `    iifname "${MGMT_BRIDGE}" ip daddr ${inventory.mgmt.controller} udp dport ${NTP_PORT} accept
` : ''}    iifname "${MGMT_BRIDGE}" icmp type echo-request accept
    iifname "${MGMT_BRIDGE}" drop
  }
  chain forward {
    type filter hook forward priority -10; policy accept;
    iifname "${MGMT_BRIDGE}" drop
    oifname "${MGMT_BRIDGE}" drop
  }
}
`;
}

export function networkPlan(inventory: Inventory): NetworkStep[] {
  const steps: NetworkStep[] = [];
  const router = ['ip', '-n', ROUTER_NS];
  const mgmtPrefix = inventory.mgmt.subnet.prefix;

  steps.push({ creates: { kind: 'link', name: MGMT_BRIDGE }, cmd: ['ip', 'link', 'add', MGMT_BRIDGE, 'type', 'bridge'] });
  steps.push({ cmd: ['ip', 'addr', 'add', `${inventory.mgmt.controller}/${mgmtPrefix}`, 'dev', MGMT_BRIDGE] });
  steps.push({ cmd: ['ip', 'link', 'set', MGMT_BRIDGE, 'up'] });

  steps.push({ creates: { kind: 'netns', name: ROUTER_NS }, cmd: ['ip', 'netns', 'add', ROUTER_NS] });
  steps.push({ cmd: [...router, 'link', 'set', 'lo', 'up'] });
  steps.push({ cmd: ['ip', 'netns', 'exec', ROUTER_NS, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'] });
  // Traffic inside a zone is switched by its bridge, as by a zone switch: it must not pass the router's firewall.
  // Where br_netfilter is loaded (it is on these machines), bridged IPv4 would otherwise go through the router's
  // forward chain and be dropped there. The setting is per network namespace; the machine's own is left alone.
  steps.push({
    cmd: ['ip', 'netns', 'exec', ROUTER_NS, 'sh', '-c',
      'for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables /proc/sys/net/bridge/bridge-nf-call-arptables; do [ ! -e "$f" ] || echo 0 > "$f"; done'],
  });
  for (const zone of inventory.zones) {
    const bridge = zoneBridge(zone.name);
    steps.push({ cmd: [...router, 'link', 'add', bridge, 'type', 'bridge'] });
    steps.push({ cmd: [...router, 'addr', 'add', `${zone.router}/${zone.subnet.prefix}`, 'dev', bridge] });
    steps.push({ cmd: [...router, 'link', 'set', bridge, 'up'] });
  }

  for (const host of inventory.hosts) {
    const ns = ['ip', '-n', host.name];
    const zone = inventory.zones.find((z) => z.name === host.zone);
    steps.push({ creates: { kind: 'netns', name: host.name }, cmd: ['ip', 'netns', 'add', host.name] });
    steps.push({ cmd: [...ns, 'link', 'set', 'lo', 'up'] });
    // zone leg: eth0 in the host, z-<host> on the zone bridge in the router namespace
    steps.push({ cmd: [...router, 'link', 'add', `z-${host.name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name] });
    steps.push({ cmd: [...router, 'link', 'set', `z-${host.name}`, 'master', zoneBridge(host.zone), 'up'] });
    steps.push({ cmd: [...ns, 'addr', 'add', `${host.address}/${prefixOf(inventory, host.zone)}`, 'dev', 'eth0'] });
    steps.push({ cmd: [...ns, 'link', 'set', 'eth0', 'up'] });
    if (zone) steps.push({ cmd: [...ns, 'route', 'add', 'default', 'via', zone.router, 'dev', 'eth0'] });
    // the many users a load comes from (lab_source_addresses); /32 each, so they add no routes
    if (host.sourceAddresses.length > 0) {
      steps.push({ cmd: ['ip', 'netns', 'exec', host.name, 'sh', '-c', host.sourceAddresses.map((a) => `ip addr add ${a}/32 dev eth0`).join(' && ')] });
    }
    // management leg: mgmt0 in the host, m-<host> on the management bridge of the controller (no route beyond it)
    // journaled on its own: deleting the host's namespace frees this end only asynchronously, later
    steps.push({
      creates: { kind: 'link', name: `m-${host.name}` },
      cmd: ['ip', 'link', 'add', `m-${host.name}`, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', host.name],
    });
    steps.push({ cmd: ['ip', 'link', 'set', `m-${host.name}`, 'master', MGMT_BRIDGE, 'up'] });
    // isolated ports talk only to the controller, never to each other: management is not a path between hosts
    steps.push({ cmd: ['bridge', 'link', 'set', 'dev', `m-${host.name}`, 'isolated', 'on'] });
    steps.push({ cmd: [...ns, 'addr', 'add', `${host.mgmtAddress}/${mgmtPrefix}`, 'dev', 'mgmt0'] });
    steps.push({ cmd: [...ns, 'link', 'set', 'mgmt0', 'up'] });
  }
  return steps;
}
