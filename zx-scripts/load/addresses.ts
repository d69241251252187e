// The lab client's source addresses (lab_source_addresses), in two kinds: the users' (every test and the k6 users:
// the gateways' per-address rate limits apply to them) and the load-test network's (lab_load_test_network, exempt
// from those limits through nginx_gateway_rate_limit_exempt: what `npm run bench -- stack` sends from, to measure
// the stack behind the gateway rather than the limits).
import type { Inventory } from '../lib/inventory.ts';
import { contains, parseCidr, parseIPv4 } from '../lib/ipv4.ts';

export interface ClientAddresses {
  /** the client host's name (its network namespace) */
  host: string;
  users: string[];
  loadTest: string[];
}

export function clientAddresses(inventory: Inventory): ClientAddresses {
  const client = inventory.hosts.find((h) => h.groups.includes('clients'));
  if (!client) throw new Error('the inventory has no host in the clients group (where the load runs from)');
  const raw = inventory.vars['lab_load_test_network'];
  const network = typeof raw === 'string' ? parseCidr(raw) : undefined;
  if (raw !== undefined && network === undefined) throw new Error(`lab_load_test_network must be an IPv4 network (a.b.c.d/n), got ${JSON.stringify(raw)}`);
  const exempt = (a: string): boolean => network !== undefined && contains(network, parseIPv4(a) ?? -1);
  return { host: client.name, users: client.sourceAddresses.filter((a) => !exempt(a)), loadTest: client.sourceAddresses.filter(exempt) };
}
