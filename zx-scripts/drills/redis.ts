// The Redis drills (the master killed, paused, a replica killed) on the lab, and the target they share: ioredis
// clients in Sentinel mode on app1 writing keys with ids, each write confirmed by a replica (WAIT 1); the audit reads
// them back from the master Sentinel names afterwards. Redis is a cache, never the system of record; the drills
// measure how long the cache tier takes writes nowhere, and prove the topology heals (the old master back as a replica).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { agentLoad, REDIS_AGENT, REDIS_MASTER_NAME } from './agent.ts';
import type { Drill, DrillTarget, Load, Whole } from './framework.ts';
import { running, sh } from './postgres.ts';
import { REDIS_DOWN } from './monitoring.ts';

const LOAD_HOST = 'app1';

const redisHosts = (inventory: Inventory) => inventory.hosts.filter((h) => h.groups.includes('redis'));
const sentinelHosts = (inventory: Inventory) => inventory.hosts.filter((h) => h.groups.includes('redis_sentinel'));

export interface RedisServer {
  host: string;
  /** master, slave, or "down: ..." */
  role: string;
  /** a master's replicas that are online; a replica's master address */
  onlineReplicas: string[];
  masterAddress?: string;
  linkUp?: boolean;
}

export interface Topology {
  servers: RedisServer[];
  /** each Sentinel's answer: the master address, and CKQUORUM's first word */
  sentinels: { host: string; master: string; quorum: string }[];
}

/** Asks every Redis server and every Sentinel, from one cache host (oms-redis-cli with that host's certificate). */
export async function redisTopology(inventory: Inventory, avoid: string[] = []): Promise<Topology> {
  const servers = redisHosts(inventory);
  const sentinels = sentinelHosts(inventory);
  const script = [
    ...servers.map((h) => `echo "== redis ${h.name}"; timeout 3 oms-redis-cli -h ${h.address} INFO replication 2>&1 | tr -d '\\r'`),
    ...sentinels.map((h) => `echo "== sentinel ${h.name}"; timeout 3 oms-redis-cli --sentinel -h ${h.address} SENTINEL get-master-addr-by-name ${REDIS_MASTER_NAME} 2>&1 | head -1; timeout 3 oms-redis-cli --sentinel -h ${h.address} SENTINEL CKQUORUM ${REDIS_MASTER_NAME} 2>&1 | head -1`),
  ].join('; ');
  const on = servers.map((h) => h.name).find((name) => running(name) && !avoid.includes(name));
  if (!on) throw new Error('no cache host runs');
  return parseTopology(await sh(on, `${script}; true`));
}

/** Reads what redisTopology's script printed: "== redis HOST" + INFO replication, "== sentinel HOST" + two answers. */
export function parseTopology(out: string): Topology {
  const topology: Topology = { servers: [], sentinels: [] };
  for (const section of out.split('== ').filter((s) => s.trim())) {
    const [head = '', ...body] = section.split('\n');
    const [kind, host = '?'] = head.trim().split(' ');
    const lines = body.map((l) => l.trim()).filter(Boolean);
    if (kind === 'sentinel') {
      topology.sentinels.push({ host, master: lines[0] ?? '', quorum: (lines[1] ?? '').split(' ')[0] ?? '' });
      continue;
    }
    const info = new Map(lines.filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
    const role = info.get('role');
    if (role === undefined) {
      topology.servers.push({ host, role: `down: ${(lines[0] ?? 'no answer').slice(0, 80)}`, onlineReplicas: [] });
    } else if (role === 'master') {
      const online = [...info].filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online')).map(([, v]) => /ip=([^,]+)/.exec(v)?.[1] ?? '?');
      topology.servers.push({ host, role, onlineReplicas: online });
    } else {
      topology.servers.push({ host, role, onlineReplicas: [], masterAddress: info.get('master_host') ?? '', linkUp: info.get('master_link_status') === 'up' });
    }
  }
  return topology;
}

/** What keeps the topology from being whole (empty when it is), and the master's host. */
export function topologyProblems(inventory: Inventory, t: Topology): { problems: string[]; master?: string } {
  const problems: string[] = [];
  const byAddress = new Map(redisHosts(inventory).map((h) => [h.address, h.name]));
  const masters = t.servers.filter((s) => s.role === 'master');
  for (const s of t.servers.filter((x) => x.role.startsWith('down'))) problems.push(`${s.host} ${s.role}`);
  if (masters.length !== 1) {
    problems.push(`${masters.length} masters (${masters.map((m) => m.host).join(', ')})`);
    return { problems };
  }
  const master = masters[0];
  if (!master) return { problems };
  const masterAddress = redisHosts(inventory).find((h) => h.name === master.host)?.address ?? '?';
  for (const s of t.servers.filter((x) => x.role === 'slave')) {
    if (s.masterAddress !== masterAddress) problems.push(`${s.host} replicates ${s.masterAddress ?? '?'}, not the master ${master.host}`);
    else if (!s.linkUp) problems.push(`${s.host}: link to the master down`);
  }
  const expected = redisHosts(inventory).length - 1;
  if (master.onlineReplicas.length !== expected) problems.push(`${master.onlineReplicas.length} of ${expected} replicas online at ${master.host}`);
  for (const s of t.sentinels) {
    if (s.master !== masterAddress) problems.push(`Sentinel ${s.host} names ${byAddress.get(s.master) ?? (s.master || 'no master')}`);
    else if (s.quorum !== 'OK') problems.push(`Sentinel ${s.host}: CKQUORUM ${s.quorum || 'no answer'}`);
  }
  return { problems, master: master.host };
}

export async function redisMaster(inventory: Inventory): Promise<string> {
  const { problems, master } = topologyProblems(inventory, await redisTopology(inventory));
  if (!master) throw new Error(`no single Redis master: ${problems.join('; ')}`);
  return master;
}

export function redisTarget(inventory: Inventory): DrillTarget {
  const presentByRun = new Map<string, Set<string>>();
  return {
    startLoad(runId: string): Promise<Load> {
      return Promise.resolve(agentLoad(REDIS_AGENT, inventory, LOAD_HOST, ['load', '--run', runId, '--writers', '4', '--interval-ms', '20'], {
        graceMs: 60_000,
        onOther: (l) => { presentByRun.set(runId, new Set(l.ids ?? [])); },
        afterStop: () => { if (!presentByRun.has(runId)) throw new Error('the load ended without reporting what the master holds'); },
      }));
    },

    async whole(): Promise<Whole> {
      try {
        const t = await redisTopology(inventory);
        const { problems, master } = topologyProblems(inventory, t);
        if (problems.length > 0) return { whole: false, detail: problems.join('; ') };
        const replicas = t.servers.filter((s) => s.role === 'slave').map((s) => s.host);
        return { whole: true, detail: `master ${master ?? '?'}, replicas ${replicas.join(', ')} online, ${t.sentinels.length} Sentinels agree (CKQUORUM OK)` };
      } catch (error) {
        return { whole: false, detail: `Redis: ${error instanceof Error ? error.message : String(error)}` };
      }
    },

    audit(runId: string) {
      return Promise.resolve({ present: presentByRun.get(runId) ?? new Set<string>() });
    },
  };
}

interface Victim {
  host: string;
  /** the master when the drill began */
  master: string;
}

export function redisDrills(inventory: Inventory): Drill<Victim>[] {
  const FAILOVER = 'Sentinel down-after 2 s + up to 1 s to agree (ODOWN) + up to 1 s of random election delay + the promotion; clients reconnect on +switch-master';
  const signal = (sig: string) => async (v: Victim): Promise<void> => { await sh(v.host, `systemctl kill --signal=${sig} redis-server`); };
  /** the old master must be back as a replica, and another host the master */
  const masterMoved = async (v: Victim): Promise<string[]> => {
    const t = await redisTopology(inventory);
    const { master } = topologyProblems(inventory, t);
    const old = t.servers.find((s) => s.host === v.host);
    const problems: string[] = [];
    if (master === v.master) problems.push(`${v.master} is still the master: no failover happened`);
    if (old?.role !== 'slave' || !old.linkUp) problems.push(`the old master ${v.host} is ${old?.role ?? 'missing'}, not a replica with its link up`);
    return problems;
  };
  return [
    {
      name: 'redis-master-kill',
      description: 'SIGKILL of the Redis master, kept down until writes succeed again on the master Sentinel promotes',
      goal: { seconds: 5, boundBy: FAILOVER },
      alerts: [REDIS_DOWN],
      async prepare() {
        const master = await redisMaster(inventory);
        return { host: master, master };
      },
      async fault(v) {
        await sh(v.host, 'systemctl kill --signal=KILL redis-server; systemctl stop redis-server');
        return `SIGKILL of the Redis master on ${v.host}`;
      },
      async heal(v) {
        await sh(v.host, 'systemctl start redis-server');
        return `redis-server started again on ${v.host} (Sentinel turns it into a replica)`;
      },
      after: masterMoved,
    },
    {
      name: 'redis-master-pause',
      description: 'SIGSTOP of the Redis master (a hung process: its connections stay open), SIGCONT once writes succeed elsewhere',
      goal: { seconds: 6, boundBy: `${FAILOVER}; clients destroy a connection silent for 1 s (socketTimeout: a paused master's sockets never close)` },
      // a hung master fails the exporter's scrape of it (its TLS handshake waits 10 s) while the exporter answers for
      // the Sentinel: RedisDown, as for a dead one
      alerts: [REDIS_DOWN],
      async prepare() {
        const master = await redisMaster(inventory);
        return { host: master, master };
      },
      async fault(v) {
        await signal('STOP')(v);
        return `SIGSTOP of the Redis master on ${v.host}`;
      },
      async heal(v) {
        await signal('CONT')(v);
        return `SIGCONT on ${v.host}: it wakes as a master with no replicas (min-replicas-to-write refuses writes) until Sentinel demotes it`;
      },
      after: masterMoved,
    },
    {
      name: 'redis-replica-kill',
      description: 'SIGKILL of a Redis replica, kept down 5 s: the master keeps taking writes with its other replica',
      goal: { seconds: 1, boundBy: 'nothing waits for it: min-replicas-to-write 1 is met by the other replica, WAIT 1 as well' },
      // writes never notice, so the on-call must: the replica's exporter finds no Redis
      alerts: [REDIS_DOWN],
      async prepare() {
        const master = await redisMaster(inventory);
        const replica = redisHosts(inventory).map((h) => h.name).find((name) => name !== master);
        if (!replica) throw new Error('no replica to kill');
        return { host: replica, master };
      },
      async fault(v) {
        await sh(v.host, 'systemctl kill --signal=KILL redis-server; systemctl stop redis-server');
        await sleep(5000);
        return `SIGKILL of the Redis replica on ${v.host}, kept down 5 s`;
      },
      async heal(v) {
        await sh(v.host, 'systemctl start redis-server');
        return `redis-server started again on ${v.host}`;
      },
      async after(v) {
        const master = await redisMaster(inventory);
        return master === v.master ? [] : [`the master moved from ${v.master} to ${master} although only a replica died`];
      },
    },
  ];
}
