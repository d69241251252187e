import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory } from './lab.ts';
import { renderSvg } from '../lib/chromium.ts';
import { CONTROLLER, formatReport, judge, planProbes, probeAgain, type Declared, type MatrixReport, type Probe } from './zone-matrix.ts';
import { zoneMatrixSvg } from './zone-matrix-svg.ts';

const inventory = loadInventory(defaultInventory);
const PROXY = 3143;
const declared: Declared[] = [
  // ext -> the VIP on the gateways (gw1 holds it)
  ...['gw1', 'gw2'].map((host) => ({ host, owner: 'nginx', name: 'https', proto: 'tcp', port: '443', to: ['10.90.20.100'], sources: [{ address: '10.90.10.0/24', zone: 'ext' }] })),
  { host: 'db1', owner: 'etcd', name: 'peers', proto: 'tcp', port: '2379-2380', to: [], sources: [{ address: '10.90.40.12', zone: 'data' }] },
  { host: 'gw1', owner: 'keepalived', name: 'vrrp', proto: 'vrrp', port: null, to: [], sources: [{ address: '10.90.20.12', zone: 'dmz' }] },
];
const { probes, ports, notProbed } = planProbes(inventory, declared, { aptProxyPort: PROXY, extraAddresses: new Map([['gw1', ['10.90.20.100']]]) });
const find = (from: string, address: string, port: number, proto = 'tcp') =>
  probes.find((p) => p.from === from && p.address === address && p.port === port && p.proto === proto);
const keyOf = (p: { from: string; address: string; port: number; proto: string }): string => `${p.from} ${p.address}:${p.port}${p.proto === 'tcp' ? '' : `/${p.proto}`}`;

describe('zone-matrix plan', () => {
  it('probes every declared TCP port (both ends of a range), SSH and one undeclared port', () => {
    assert.deepEqual(ports, [9, 22, 443, 2379, 2380]);
    assert.deepEqual(notProbed, ['keepalived/vrrp on gw1 (vrrp)']);
  });

  it('expects open exactly what a rule allows, for its sources and destination addresses', () => {
    assert.equal(find('client', '10.90.20.100', 443)?.expect, 'open');
    assert.equal(find('client', '10.90.20.100', 443)?.because, 'nginx/https');
    assert.equal(find('client', '10.90.20.11', 443)?.expect, 'blocked', 'the rule is for the VIP, not the host address');
    assert.equal(find('app1', '10.90.20.100', 443)?.expect, 'blocked', 'app is not the ext zone');
    assert.equal(find('db2', '10.90.40.11', 2380)?.expect, 'open');
    assert.equal(find('db3', '10.90.40.11', 2380)?.expect, 'blocked', 'db3 is not a declared source');
    assert.equal(find('db2', '10.90.40.11', 9)?.expect, 'blocked');
  });

  it('covers the management network both ways', () => {
    const db1 = inventory.hosts.find((h) => h.name === 'db1');
    assert.ok(db1);
    assert.equal(find(CONTROLLER, db1.mgmtAddress, 22)?.expect, 'open');
    assert.equal(find(CONTROLLER, db1.mgmtAddress, 443)?.expect, 'blocked');
    assert.equal(find('db2', db1.mgmtAddress, 22)?.expect, 'blocked');
    assert.equal(find('db1', inventory.mgmt.controller, PROXY)?.expect, 'open');
    assert.equal(find('db1', inventory.mgmt.controller, 22)?.expect, 'blocked');
  });

  it('asks the time source for the time from every host, and every other host too (they serve none)', () => {
    assert.deepEqual(inventory.timeSources, [inventory.mgmt.controller]);
    const toSource = probes.filter((p) => p.proto === 'ntp' && p.to === CONTROLLER);
    assert.equal(toSource.length, inventory.hosts.length);
    assert.ok(toSource.every((p) => p.expect === 'open' && p.port === 123 && p.because === 'time source (network_time_sources)'));
    assert.equal(find('db1', '10.90.40.12', 123, 'ntp')?.expect, 'blocked');
    assert.equal(probes.filter((p) => p.proto === 'ntp' && p.expect === 'blocked').length, inventory.hosts.length * (inventory.hosts.length - 1));

    // a time source outside the lab is never sent anything; a controller that is none is probed as closed
    const outside = planProbes({ ...inventory, timeSources: ['192.0.2.123'] }, declared, { aptProxyPort: PROXY });
    assert.ok(outside.notProbed.includes('time source 192.0.2.123 (outside the lab)'));
    assert.ok(!outside.probes.some((p) => p.address === '192.0.2.123'));
    assert.equal(outside.probes.find((p) => p.proto === 'ntp' && p.from === 'db1' && p.to === CONTROLLER)?.expect, 'blocked');
  });

  it('judges: open where expected, blocked (timeout, refused, unreachable, closed) where forbidden; anything else is a mismatch', () => {
    const outcomes = new Map<string, string>();
    for (const p of probes) outcomes.set(keyOf(p), p.expect === 'open' ? 'open' : 'timeout');
    const clean = judge(probes, outcomes, notProbed, ports, 1);
    assert.equal(clean.mismatches.length, 0);
    assert.deepEqual(clean.ntp, { open: inventory.hosts.length, blocked: inventory.hosts.length * (inventory.hosts.length - 1), mismatched: 0 });
    assert.equal(clean.checked, probes.length);
    assert.equal(clean.allowedOpen + clean.forbiddenBlocked, probes.length);

    // a connect() that returned without a connection is no flow through
    const mgmt = find('db2', '10.90.0.51', 22);
    assert.equal(mgmt?.expect, 'blocked');
    outcomes.set('db2 10.90.0.51:22', 'closed');
    assert.equal(judge(probes, outcomes, notProbed, ports, 1).forbiddenBlocked, clean.forbiddenBlocked);

    outcomes.set('client 10.90.40.11:2379', 'open');
    outcomes.set('db2 10.90.40.11:2380', 'refused');
    outcomes.set('db2 10.90.40.11:2379', 'closed');
    outcomes.set('db2 10.90.0.1:123/ntp', 'timeout');
    outcomes.set('db2 10.90.40.11:123/ntp', 'open');
    const bad = judge(probes, outcomes, notProbed, ports, 1);
    assert.deepEqual(bad.mismatches.map((m) => `${keyOf(m)} ${m.expect} got ${m.got}${m.acceptedBy ? ` (${m.acceptedBy})` : ''}`).sort(), [
      'client 10.90.40.11:2379 blocked got open',
      'db2 10.90.0.1:123/ntp open got timeout',
      'db2 10.90.40.11:123/ntp blocked got open (an NTP server answered)',
      'db2 10.90.40.11:2379 open got closed',
      'db2 10.90.40.11:2380 open got refused',
    ]);
    assert.equal(bad.ntp.mismatched, 2);
    assert.equal(bad.byZones['ext -> data']?.mismatched, 1);
  });

  it('says who answered a forbidden flow that connected: the check\'s own listener (from which address), or something else', () => {
    const outcomes = new Map<string, string>();
    for (const p of probes) outcomes.set(keyOf(p), p.expect === 'open' ? 'open' : 'timeout');
    outcomes.set('client 10.90.40.11:2379', 'open');
    outcomes.set('client 10.90.40.11:9', 'open');
    const accepted = new Map([['db1 10.90.40.11:2379', ['10.90.10.11']]]);
    const report = judge(probes, outcomes, notProbed, ports, 1, accepted);
    assert.deepEqual(report.mismatches.map((m) => `${m.address}:${m.port} ${m.acceptedBy ?? '-'}`).sort(), [
      '10.90.40.11:2379 the check\'s listener on db1 accepted it, from 10.90.10.11',
      '10.90.40.11:9 no listener of the check accepted it (something else answered)',
    ]);
  });
  it('probes again, alone, only the allowed flows the crowd left unproven (timeout, closed); its mismatches head the report', () => {
    const outcomes = new Map<string, string>();
    for (const p of probes) outcomes.set(keyOf(p), p.expect === 'open' ? 'open' : 'timeout');
    assert.deepEqual(probeAgain(probes, outcomes), []);
    outcomes.set('db2 10.90.40.11:2379', 'timeout'); // allowed: proves nothing yet
    outcomes.set('db2 10.90.40.11:2380', 'closed'); // allowed: the kernel ended the attempt unanswered
    outcomes.set('client 10.90.20.100:443', 'refused'); // allowed: an answer, and a mismatch as it is
    outcomes.set('client 10.90.40.11:2379', 'open'); // forbidden and connected: a finding as it is
    assert.deepEqual(probeAgain(probes, outcomes).map(keyOf).sort(), ['db2 10.90.40.11:2379', 'db2 10.90.40.11:2380']);

    const report = judge(probes, outcomes, notProbed, ports, 1, undefined, { probes: 2, open: 0 });
    const lines = formatReport(report).split('\n');
    assert.match(lines[3] ?? '', /mismatches: +4$/);
    assert.ok(lines.slice(4, 8).every((l) => l.startsWith('  MISMATCH ')), lines.join('\n'));
    assert.match(lines[8] ?? '', /probed again alone \(10 s\): 2, of which 0 connected/);
  });
});

describe('zone-matrix picture', () => {
  const report: MatrixReport = {
    checked: 120, allowedOpen: 7, forbiddenBlocked: 112, ports: [22, 443, 5432], seconds: 41.2, notProbed: [], probedAgain: { probes: 0, open: 0 },
    mismatches: [{ ...(probes[0] as Probe), got: 'open' }],
    byZones: { 'ext -> dmz': { open: 2, blocked: 10, mismatched: 0 }, 'dmz -> app': { open: 5, blocked: 40, mismatched: 0 }, 'app -> dmz': { open: 0, blocked: 62, mismatched: 1 } },
    ntp: { open: 0, blocked: 0, mismatched: 0 },
  };

  it('a cell per source and destination zone, coloured by what the check found, in the design\'s zone order', () => {
    const svg = zoneMatrixSvg(report);
    assert.match(svg, /<rect class="open" data-zones="ext -&gt; dmz"/);
    assert.match(svg, /<rect class="open" data-zones="dmz -&gt; app"/);
    assert.match(svg, /<rect class="mismatched" data-zones="app -&gt; dmz"/);
    assert.match(svg, /<rect class="none" data-zones="ext -&gt; app"/, 'a pair the check did not probe');
    const heads = [...svg.matchAll(/text-anchor="middle" font-weight="bold">(\w+)</g)].map((m) => m[1]);
    assert.deepEqual(heads, ['dmz', 'app'], 'columns outside in');
  });

  it('renders in headless Chromium with its counts', () => {
    const r = renderSvg(zoneMatrixSvg(report));
    assert.equal(r.parseError, false);
    assert.ok(r.width > 300 && r.height > 150, `${String(r.width)} x ${String(r.height)}`);
    const texts = r.texts.join(' | ');
    for (const text of ['Zone matrix: 120 flows on 3 ports, 1 mismatch', '2 open', '40 blocked', '1 MISMATCHED', 'not probed']) assert.ok(texts.includes(text), `${text} in ${texts}`);
  });
});
