// The PostgreSQL drills (Patroni, etcd, HAProxy) on the lab, and the target they share: order-creation
// transactions from app1 through its HAProxy, the cluster's health from Patroni, etcd and both HAProxies.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { findNspawn, hostInit, inHost } from '../lab/hosts.ts';
import { defaultInventory, killHost, startHost } from '../lab/lab.ts';
import type { Drill, DrillTarget, Load, Whole } from './framework.ts';
import { agentLoad, PG_AGENT } from './agent.ts';
import { agent } from './pg.ts';
import { ETCD_MEMBER_NO_LEADER, EXPORTER_DOWN, HOST_DOWN, POSTGRES_LEADER_CHANGED, POSTGRES_RESTARTED } from './monitoring.ts';

const LOAD_HOST = 'app1';
const PATRONI = 'patronictl -c /etc/patroni/config.yml';
export const ETCDCTL = 'ETCDCTL_API=3 etcdctl --cacert /etc/oms/pki/ca-bundle.pem --cert /etc/oms/pki/host.crt --key /etc/oms/pki/host.key';

interface Member {
  name: string;
  role: string;
  state: string;
  timeline?: number;
  lag?: number | string;
}

/** Runs a shell command in a lab host; throws with its output when it fails. */
export async function sh(host: string, script: string): Promise<string> {
  const nspawn = findNspawn(host);
  const init = nspawn === undefined ? undefined : hostInit(nspawn);
  if (init === undefined) throw new Error(`${host} is not running`);
  const result = await inHost(init, ['sh', '-c', script]);
  if (result.exitCode !== 0) throw new Error(`${host}: ${script}: ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

export const running = (host: string): boolean => findNspawn(host) !== undefined;

export async function patroniMembers(inventory: Inventory): Promise<Member[]> {
  const cluster = await agent<{ members?: Member[]; error?: string }>(inventory, LOAD_HOST, ['cluster']);
  if (!cluster.members) throw new Error(`Patroni cluster unreadable: ${cluster.error ?? 'no members'}`);
  return cluster.members;
}

export async function leader(inventory: Inventory): Promise<string> {
  const found = (await patroniMembers(inventory)).find((m) => m.role === 'leader');
  if (!found) throw new Error('the Patroni cluster has no leader');
  return found.name;
}

async function etcdHealth(inventory: Inventory): Promise<string[]> {
  const members = inventory.hosts.filter((h) => h.groups.includes('etcd'));
  const from = members.find((m) => running(m.name));
  if (!from) return ['no etcd member runs'];
  const endpoints = members.map((m) => `https://${m.address}:2379`).join(',');
  const out = await sh(from.name, `${ETCDCTL} --endpoints ${endpoints} endpoint health 2>&1 || true`);
  return out.split('\n').filter((l) => l.trim() && !l.includes('is healthy'));
}

async function haproxyLeaders(inventory: Inventory): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>();
  for (const host of inventory.hosts.filter((h) => h.groups.includes('haproxy'))) {
    const out = await sh(host.name, "echo 'show servers state postgres_rw' | socat stdio /run/haproxy/admin.sock");
    // columns: be_id be_name srv_id srv_name srv_addr srv_op_state(2 = up) ...
    const up = out.split('\n').map((l) => l.split(' ')).filter((c) => c[5] === '2').map((c) => c[3] ?? '');
    result.set(host.name, up);
  }
  return result;
}

export function postgresTarget(inventory: Inventory): DrillTarget {
  const postgresHosts = inventory.hosts.filter((h) => h.groups.includes('postgres')).map((h) => h.name);
  return {
    startLoad(runId: string): Promise<Load> {
      // Each write is a whole order (create-order.ts): its two events go through Kafka to the notification service and
      // the mail sink like any order's. 4 writers every 60 ms make about 45 orders/s on the lab (90 events/s), under
      // what the notification pipeline sends (about 150 events/s): at 20 ms the drills' own orders outran it, the
      // emails were still catching up minutes after a long drill, and the drills waited for them (or gave up)
      return Promise.resolve(agentLoad(PG_AGENT, inventory, LOAD_HOST, ['load', '--run', runId, '--writers', '4', '--interval-ms', '60']));
    },

    async whole(): Promise<Whole> {
      const missing: string[] = [];
      let picture = '';
      try {
        const members = await patroniMembers(inventory);
        const lead = members.filter((m) => m.role === 'leader' && m.state === 'running');
        // a replica counts once it streams from the leader on the leader's timeline: a demoted primary first runs
        // on its old timeline, then Patroni stops it for pg_rewind ('running' alone is not yet whole)
        const replicas = members.filter((m) => m.role !== 'leader' && m.state === 'streaming' && m.timeline === lead[0]?.timeline);
        const sync = members.filter(acknowledges);
        if (lead.length !== 1) missing.push(`${lead.length} running leaders`);
        if (replicas.length !== postgresHosts.length - 1) missing.push(`${replicas.length} of ${postgresHosts.length - 1} replicas streaming on the leader's timeline`);
        if (postgresHosts.length > 1 && sync.length < 1) missing.push('no synchronous standby');
        picture = members.map((m) => `${m.name} ${m.role} ${m.state} TL${m.timeline ?? '?'}`).join(', ');
        const leaderName = lead[0]?.name;
        for (const [host, up] of await haproxyLeaders(inventory)) {
          if (up.length !== 1 || up[0] !== leaderName) missing.push(`HAProxy on ${host} sends writes to [${up.join(', ')}], not to the leader ${leaderName ?? '-'}`);
        }
      } catch (error) {
        missing.push(error instanceof Error ? error.message : String(error));
      }
      const etcd = await etcdHealth(inventory);
      if (etcd.length > 0) missing.push(`etcd: ${etcd.join('; ')}`);
      return { whole: missing.length === 0, detail: missing.length === 0 ? `${picture}; etcd 3/3 healthy; HAProxy -> leader` : missing.join('; ') };
    },

    async audit(runId: string, ids: string[]) {
      const found = await agent<{ present: string[] }>(inventory, LOAD_HOST, ['audit', '--run', runId], JSON.stringify({ ids }));
      return { present: new Set(found.present) };
    },
  };
}

/** The old primary must be back as a replica (streaming) on the same timeline as the leader. */
async function rejoined(inventory: Inventory, oldPrimary: string): Promise<string[]> {
  const members = await patroniMembers(inventory);
  const old = members.find((m) => m.name === oldPrimary);
  const lead = members.find((m) => m.role === 'leader');
  if (!old) return [`${oldPrimary} is not a member any more`];
  if (old.role === 'leader') return [];
  if (old.state !== 'streaming') return [`${oldPrimary} is ${old.state}, not a streaming replica`];
  if (lead && old.timeline !== lead.timeline) return [`${oldPrimary} is on timeline ${old.timeline ?? '?'}, the leader on ${lead.timeline ?? '?'}`];
  return [];
}

/**
 * A replica whose flush a commit can wait for: 'sync_standby' (synchronous_mode on, FIRST 1) or 'quorum_standby'
 * (synchronous_mode quorum, ANY 1 of the replicas).
 */
function acknowledges(m: { role: string }): boolean {
  return m.role === 'sync_standby' || m.role === 'quorum_standby';
}

interface Victim {
  primary: string;
  candidate: string;
  /** a member that is neither (the third), if any */
  other?: string;
}

async function victims(inventory: Inventory): Promise<Victim> {
  const members = await patroniMembers(inventory);
  const primary = members.find((m) => m.role === 'leader')?.name;
  const candidate = members.find(acknowledges)?.name;
  if (!primary || !candidate) throw new Error(`need a leader and a synchronous standby: ${JSON.stringify(members)}`);
  const other = members.find((m) => m.name !== primary && m.name !== candidate)?.name;
  return { primary, candidate, ...(other === undefined ? {} : { other }) };
}

/** Waits until `host` is a synchronous standby (Patroni names the remaining replica when one is gone). */
async function waitSyncStandby(inventory: Inventory, host: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const members = await patroniMembers(inventory).catch(() => []);
    if (members.some((m) => m.name === host && acknowledges(m))) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${host} did not become the synchronous standby within ${String(timeoutMs / 1000)} s: ${JSON.stringify(members)}`);
    await sleep(250);
  }
}

/** nftables on `host`: nothing to or from etcd's client and peer ports of the other etcd members. */
const ETCD_CUTOFF_TABLE = 'oms_drill_etcd_cutoff';
function etcdCutoff(inventory: Inventory, host: string): string {
  const others = inventory.hosts.filter((h) => h.groups.includes('etcd') && h.name !== host).map((h) => h.address).join(', ');
  return `nft -f - <<'EOF'
table inet ${ETCD_CUTOFF_TABLE} {
  chain input { type filter hook input priority -10; ip saddr { ${others} } tcp dport { 2379, 2380 } drop; ip saddr { ${others} } tcp sport { 2379, 2380 } drop; }
  chain output { type filter hook output priority -10; ip daddr { ${others} } tcp dport { 2379, 2380 } drop; ip daddr { ${others} } tcp sport { 2379, 2380 } drop; }
}
EOF`;
}

export function postgresDrills(inventory: Inventory, inventoryDir = defaultInventory): Drill<Victim>[] {
  const prepare = (): Promise<Victim> => victims(inventory);
  const rejoin = (v: Victim): Promise<string[]> => rejoined(inventory, v.primary);
  return [
    {
      name: 'pg-switchover',
      description: 'planned switchover of the Patroni leader to a synchronous (quorum) standby',
      // planned, and still the on-call hears of it: a primary that moves for any reason is worth a look
      alerts: [POSTGRES_LEADER_CHANGED],
      // The sum of its steps, as the members' logs show them (a 7.3 s run on the lab, 2026-12-07): the old leader's
      // checkpoint and fast shutdown (0.5-1 s), the candidate taking the leader key in its next HA loop (up to
      // loop_wait, 3 s) and promoting (about 1 s), then strict mode commits nothing until a standby streams from the
      // new leader: the other replica re-points in its own next HA loop (up to 3 s) and restarts streaming on the new
      // timeline (1-2 s), plus the HAProxy check (1 s). 8 s left out the candidate's loop and the timeline switch, and
      // a CI run measured 9.4 s.
      goal: { seconds: 11, boundBy: 'the demote (checkpoint, fast shutdown), the candidate\'s next HA loop (loop_wait 3 s) and its promotion, then the other replica\'s next HA loop (3 s) and its streaming on the new timeline (strict mode commits nothing before), plus the HAProxy check (inter 1 s, rise 1)' },
      prepare,
      async fault(v) {
        await sh(v.primary, `${PATRONI} switchover --leader ${v.primary} --candidate ${v.candidate} --force`);
        return `patronictl switchover ${v.primary} -> ${v.candidate}`;
      },
      heal: () => Promise.resolve('nothing to heal'),
      after: rejoin,
    },
    {
      name: 'pg-primary-host-kill',
      description: 'the primary host loses power (every process of it killed at once), then boots again',
      alerts: [HOST_DOWN],
      goal: { seconds: 30, boundBy: 'Patroni ttl 20 s (the dead leader key expires) + loop_wait 3 s + promotion + HAProxy check' },
      prepare,
      async fault(v) {
        await killHost(inventoryDir, v.primary);
        return `power cut of ${v.primary} (the primary)`;
      },
      async heal(v) {
        const { seconds } = await startHost(inventoryDir, v.primary);
        return `${v.primary} booted again (${seconds} s)`;
      },
      after: rejoin,
    },
    {
      name: 'pg-postgres-kill',
      description: 'SIGKILL of the PostgreSQL postmaster on the primary (Patroni and the host stay up)',
      // Patroni restarts it within seconds and no failover happens: only the restart tells the on-call of the crash
      alerts: [POSTGRES_RESTARTED],
      goal: { seconds: 15, boundBy: "Patroni's loop_wait 3 s (it notices and restarts PostgreSQL) + crash recovery" },
      prepare,
      async fault(v) {
        const pid = (await sh(v.primary, 'head -n 1 /var/lib/postgresql/15/oms/postmaster.pid')).trim();
        await sh(v.primary, `kill -KILL ${pid}`);
        return `kill -KILL ${pid} (postmaster) on ${v.primary}`;
      },
      heal: () => Promise.resolve('nothing to heal: Patroni restarts PostgreSQL'),
      after: rejoin,
    },
    {
      name: 'pg-primary-partition',
      description: 'the primary cut off from every other host by nftables (only the controller still reaches it)',
      alerts: [HOST_DOWN],
      goal: { seconds: 30, boundBy: "Patroni ttl 20 s (renewed by a new etcd leader when the cut-off host held etcd's: about 2 s more) + the leader race's 2 s REST timeout to the cut-off member + promotion + HAProxy check; the cut-off primary demotes itself after retry_timeout 5 s" },
      prepare,
      async fault(v) {
        const controller = inventory.mgmt.controller;
        await sh(v.primary, `nft -f - <<'EOF'
table inet oms_drill_partition {
  chain input { type filter hook input priority -10; policy drop; iif "lo" accept; ip saddr ${controller} accept; }
  chain output { type filter hook output priority -10; policy drop; oif "lo" accept; ip daddr ${controller} accept; }
}
EOF`);
        return `nftables partition of ${v.primary}: drops everything but loopback and the controller`;
      },
      async heal(v) {
        await sh(v.primary, 'nft delete table inet oms_drill_partition');
        return `partition of ${v.primary} removed`;
      },
      after: rejoin,
    },
    {
      name: 'pg-sync-standby-then-primary',
      description: 'power cut of a synchronous standby, then of the primary: the third member must have every acknowledged write',
      // the promotion comes up to the goal's 35 s after the fault began (the standby's loss, then the primary's ttl)
      alerts: [HOST_DOWN, { ...POSTGRES_LEADER_CHANGED, fires: POSTGRES_LEADER_CHANGED.fires + 35 }],
      goal: { seconds: 35, boundBy: "the primary's loss: Patroni ttl 20 s + the leader race's 2 s REST timeout to the dead primary + promotion + one HA loop (loop_wait 3 s: the new leader's quorum still names the dead replica until then) + HAProxy check, while the first victim boots and rejoins as the new leader's standby (strict mode commits nothing without one); the standby's loss costs nothing (ANY 1: the third member's flush is enough)" },
      prepare,
      async fault(v) {
        if (!v.other) throw new Error('this drill needs a third PostgreSQL member');
        await killHost(inventoryDir, v.candidate);
        // strict quorum mode: the primary acknowledges nothing alone; the third member alone acknowledges now
        const moved = await waitSyncStandby(inventory, v.other, 30_000);
        await sleep(3000); // writes go on with the third member as the standby
        await killHost(inventoryDir, v.primary);
        // the third member, promoted, has no standby left: strict mode holds its commits until one is back
        const { seconds } = await startHost(inventoryDir, v.candidate);
        return `power cut of ${v.candidate} (synchronous standby): ${v.other} acknowledging after ${String(Math.round(moved / 100) / 10)} s; ` +
          `3 s later power cut of ${v.primary} (primary); ${v.candidate} booted again (${seconds} s) to be the new leader's standby`;
      },
      async heal(v) {
        const { seconds } = await startHost(inventoryDir, v.primary);
        return `${v.primary} booted again (${seconds} s)`;
      },
      after: async (v) => [...(await rejoined(inventory, v.primary)), ...(await rejoined(inventory, v.candidate))],
    },
    {
      name: 'pg-primary-etcd-cutoff',
      description: 'the primary cut off from etcd only (its own etcd member from the others, itself from their client ports); PostgreSQL and the REST API still reach every member',
      goal: { seconds: 30, boundBy: "failsafe_mode: the primary keeps running while every member answers its REST API; else Patroni ttl 20 s + loop_wait 3 s + promotion + HAProxy check" },
      // the users feel nothing (failsafe_mode), so the on-call must: the cut-off member's etcd has no leader
      alerts: [ETCD_MEMBER_NO_LEADER],
      prepare,
      async fault(v) {
        await sh(v.primary, etcdCutoff(inventory, v.primary));
        await sleep(30_000); // past ttl: the leader key has expired in the etcd majority
        const lead = (await patroniMembers(inventory).catch(() => [])).find((m) => m.role === 'leader')?.name ?? 'none';
        return `nftables on ${v.primary} (the primary) drop etcd's ports 2379 and 2380 to and from the other members, for 30 s; leader key in etcd then: ${lead}`;
      },
      async heal(v) {
        await sh(v.primary, `nft delete table inet ${ETCD_CUTOFF_TABLE}`);
        return `etcd cut-off of ${v.primary} removed`;
      },
      // failsafe_mode: every member still answered the primary's REST API, so it must have stayed the primary
      async after(v) {
        const lead = (await patroniMembers(inventory)).find((m) => m.role === 'leader')?.name;
        return lead === v.primary ? [] : [`failsafe_mode did not keep ${v.primary} the primary (the leader is ${lead ?? 'none'})`];
      },
    },
    {
      name: 'etcd-member-kill',
      description: 'SIGKILL of the etcd leader member; PostgreSQL must keep taking writes',
      alerts: [EXPORTER_DOWN],
      goal: { seconds: 5, boundBy: 'etcd election timeout 1 s; Patroni keeps its leader key with 2 of 3 members' },
      prepare,
      async fault() {
        const etcdHosts = inventory.hosts.filter((h) => h.groups.includes('etcd'));
        const endpoints = etcdHosts.map((m) => `https://${m.address}:2379`).join(',');
        const table = await sh(etcdHosts[0]?.name ?? 'db1', `${ETCDCTL} --endpoints ${endpoints} endpoint status -w json`);
        const statuses = JSON.parse(table) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
        const lead = statuses.find((s) => s.Status.header.member_id === s.Status.leader);
        const host = etcdHosts.find((h) => lead?.Endpoint.includes(`//${h.address}:`));
        if (!host) throw new Error('no etcd leader found');
        await sh(host.name, 'systemctl kill --signal=KILL etcd && systemctl stop etcd');
        await sleep(5000);
        return `SIGKILL of etcd on ${host.name} (the etcd leader), kept down 5 s`;
      },
      async heal() {
        const etcdHosts = inventory.hosts.filter((h) => h.groups.includes('etcd'));
        for (const h of etcdHosts) await sh(h.name, 'systemctl start etcd');
        return 'etcd started again';
      },
    },
  ];
}
