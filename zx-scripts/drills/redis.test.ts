// How the Redis drills read the cache tier: INFO replication and the Sentinels' answers into a topology, and what keeps
// that topology from being whole (the states a failover passes through), on the lab inventory's cache hosts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory } from '../lab/lab.ts';
import { parseTopology, topologyProblems } from './redis.ts';

const inventory = loadInventory(defaultInventory);

const master = (host: string, replicas: string[]) =>
  `== redis ${host}\n# Replication\nrole:master\nconnected_slaves:${replicas.length}\n` +
  replicas.map((ip, i) => `slave${i}:ip=${ip},port=6379,state=online,offset=100,lag=0\n`).join('');
const replica = (host: string, of: string, link = 'up') =>
  `== redis ${host}\n# Replication\nrole:slave\nmaster_host:${of}\nmaster_port:6379\nmaster_link_status:${link}\n`;
const sentinel = (host: string, names: string, quorum = 'OK 3 usable Sentinels. Quorum and failover authorization can be reached') =>
  `== sentinel ${host}\n${names}\n${quorum}\n`;
const sentinels = (names: string) => ['cache1', 'cache2', 'cache3'].map((h) => sentinel(h, names)).join('');

describe('redis topology', () => {
  it('a whole topology: one master, its replicas online and following it, every Sentinel naming it', () => {
    const t = parseTopology(master('cache2', ['10.90.30.21', '10.90.30.23']) + replica('cache1', '10.90.30.22') + replica('cache3', '10.90.30.22') + sentinels('10.90.30.22'));
    assert.deepEqual(t.servers.map((s) => `${s.host}:${s.role}`), ['cache2:master', 'cache1:slave', 'cache3:slave']);
    assert.deepEqual(topologyProblems(inventory, t), { problems: [], master: 'cache2' });
  });

  it('a killed master: down, no master, and what the Sentinels still say', () => {
    const t = parseTopology('== redis cache1\nCould not connect to Redis at 10.90.30.21:6379: Connection refused\n' +
      replica('cache2', '10.90.30.21', 'down') + replica('cache3', '10.90.30.21', 'down') + sentinels('10.90.30.21'));
    const { problems, master: m } = topologyProblems(inventory, t);
    assert.equal(m, undefined);
    assert.match(problems.join('; '), /cache1 down: Could not connect/);
    assert.match(problems.join('; '), /0 masters/);
  });

  it('a paused master woken after the failover: two masters until Sentinel demotes the old one', () => {
    const t = parseTopology(master('cache1', []) + master('cache3', ['10.90.30.22']) + replica('cache2', '10.90.30.23') + sentinels('10.90.30.23'));
    assert.match(topologyProblems(inventory, t).problems.join('; '), /2 masters \(cache1, cache3\)/);
  });

  it('the old master back but not yet following the new one, a Sentinel that disagrees, a lost quorum', () => {
    const t = parseTopology(master('cache3', ['10.90.30.22']) + replica('cache1', '10.90.30.21', 'down') + replica('cache2', '10.90.30.23') +
      sentinel('cache1', '10.90.30.21') + sentinel('cache2', '10.90.30.23', 'NOQUORUM 1 usable Sentinels.') + sentinel('cache3', '10.90.30.23'));
    const { problems, master: m } = topologyProblems(inventory, t);
    assert.equal(m, 'cache3');
    assert.deepEqual(problems, [
      'cache1 replicates 10.90.30.21, not the master cache3',
      '1 of 2 replicas online at cache3',
      'Sentinel cache1 names cache1',
      'Sentinel cache2: CKQUORUM NOQUORUM',
    ]);
  });
});
