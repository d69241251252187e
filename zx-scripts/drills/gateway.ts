// The gateway drills (the active gateway host stopped hard, Nginx killed on it, the standby gateway going away and
// coming back) on the lab, and the target they share: the users' order load (k6, loadtest/oms.js) over HTTPS from
// many internet addresses (the client host) at the virtual IP, through the gateway to the order service, each order
// with its own Idempotency-Key. Acknowledged = 201 Created came back; the audit finds every acknowledged key's order in PostgreSQL (the system of
// record, read on the Patroni leader). The measured time without writes is the time no order got through.
import type { Inventory } from '../lib/inventory.ts';
import { join } from 'node:path';
import { defaultInventory, killHost, repoRoot, startHost } from '../lab/lab.ts';
import { k6Load } from '../load/k6.ts';
import { auditEmails, sinkCount } from './mail.ts';
import type { Audit, Drill, DrillTarget, Load, Whole } from './framework.ts';
import { leader, running, sh } from './postgres.ts';
import { GATEWAY_VIP_MOVED, HOST_DOWN } from './monitoring.ts';

const gateways = (inventory: Inventory) => inventory.hosts.filter((h) => h.groups.includes('gateways'));

export interface GatewayState {
  host: string;
  running: boolean;
  /** holds the VIP */
  vip: boolean;
  nginx: string;
  keepalived: string;
  /** the gateway's own health check (what Keepalived runs) */
  healthy: boolean;
  /** VRRP state changes logged since the boot (oms-vrrp lines in the journal) */
  transitions: number;
}

/** Asks each gateway whether it holds the VIP, whether Nginx and Keepalived run, and how often its state changed. */
export async function gatewayStates(inventory: Inventory): Promise<GatewayState[]> {
  const vip = inventory.gatewayVip ?? '';
  return Promise.all(gateways(inventory).map(async (h): Promise<GatewayState> => {
    if (!running(h.name)) return { host: h.name, running: false, vip: false, nginx: 'down', keepalived: 'down', healthy: false, transitions: 0 };
    const out = await sh(h.name, [
      `ip -o -4 addr show to ${vip}/32 | wc -l`,
      'systemctl is-active nginx || true',
      'systemctl is-active keepalived || true',
      '/usr/local/libexec/oms/gateway-health && echo healthy || echo unhealthy',
      'journalctl -b -q -t oms-vrrp -o cat | wc -l',
    ].join('; '));
    const [holds = '0', nginx = '?', keepalived = '?', health = '', transitions = '0'] = out.trim().split('\n').map((l) => l.trim());
    return { host: h.name, running: true, vip: holds !== '0', nginx, keepalived, healthy: health === 'healthy', transitions: Number(transitions) };
  }));
}

/** What keeps the gateway pair from being whole (empty when it is), and the VIP's holder. */
export function gatewayProblems(states: GatewayState[]): { problems: string[]; holder?: string | undefined } {
  const problems: string[] = [];
  for (const s of states) {
    if (!s.running) problems.push(`${s.host} is not running`);
    else if (s.nginx !== 'active' || s.keepalived !== 'active') problems.push(`${s.host}: nginx ${s.nginx}, keepalived ${s.keepalived}`);
    else if (!s.healthy) problems.push(`${s.host}: health check fails`);
  }
  const holders = states.filter((s) => s.vip).map((s) => s.host);
  if (holders.length !== 1) problems.push(`${holders.length} gateways hold the VIP${holders.length ? ` (${holders.join(', ')})` : ''}`);
  return holders.length === 1 ? { problems, holder: holders[0] } : { problems };
}

/** Each gateway's VRRP state changes since its boot. */
export async function vrrpTransitions(inventory: Inventory): Promise<Map<string, number>> {
  return new Map((await gatewayStates(inventory)).map((s) => [s.host, s.transitions]));
}

/** A drill that leaves the gateways alone must not move the VIP: the gateways whose VRRP state changed since `before`. */
export async function vipMovedSince(inventory: Inventory, before: ReadonlyMap<string, number>): Promise<string[]> {
  const now = await vrrpTransitions(inventory);
  return [...now].filter(([host, n]) => n !== (before.get(host) ?? n)).map(([host, n]) =>
    `${host} changed its VRRP state ${String(n - (before.get(host) ?? n))} times during the drill: the VIP moved (every client connection to it was cut)`);
}

export async function vipHolder(inventory: Inventory): Promise<string> {
  const { problems, holder } = gatewayProblems(await gatewayStates(inventory));
  if (!holder) throw new Error(`no single VIP holder: ${problems.join('; ')}`);
  return holder;
}

/** Runs SQL on the Patroni leader as the superuser (Row Level Security aside); one line per row. */
async function onLeader(inventory: Inventory, sql: string, database: 'orders' | 'notifications' = 'orders'): Promise<string[]> {
  const out = await sh(await leader(inventory), `runuser -u postgres -- psql -d ${database} -AtX -c "${sql}"`);
  return out.split('\n').map((l) => l.trim()).filter(Boolean);
}

const runPattern = (runId: string): string => {
  if (!/^[a-z0-9-]+$/.test(runId)) throw new Error(`internal: run id ${runId}`);
  return `${runId}-%`;
};

/** The Idempotency-Keys of a run whose order is in PostgreSQL. */
export async function ordersOfRun(inventory: Inventory, runId: string): Promise<Set<string>> {
  return new Set(await onLeader(inventory, `SELECT k.key FROM oms.idempotency_keys k JOIN oms.orders o ON o.id = k.order_id WHERE k.key LIKE '${runPattern(runId)}'`));
}

/** When each order of a run was created (ms since the epoch), by order id. */
export async function orderTimesOfRun(inventory: Inventory, runId: string): Promise<Map<string, number>> {
  const rows = await onLeader(inventory, `SELECT o.id || ' ' || (extract(epoch FROM o.created_at) * 1000)::bigint FROM oms.orders o JOIN oms.idempotency_keys k ON k.order_id = o.id WHERE k.key LIKE '${runPattern(runId)}'`);
  return new Map(rows.map((r) => { const [id = '', ms = '0'] = r.split(' '); return [id, Number(ms)]; }));
}

/** The ids of every event (outbox) of a run's orders: each one must become exactly one email. */
export function eventsOfRun(inventory: Inventory, runId: string): Promise<string[]> {
  return onLeader(inventory, `SELECT e.id FROM oms.outbox e JOIN oms.idempotency_keys k ON k.order_id = e.aggregate_id WHERE k.key LIKE '${runPattern(runId)}'`);
}

/** Sends of events received since `sinceMs` still in progress or waiting for a retry (the notification inbox). */
export async function sendsInFlight(inventory: Inventory, sinceMs: number): Promise<number> {
  const [count] = await onLeader(inventory, `SELECT count(*) FROM notify.inbox WHERE status IN ('SENDING', 'RETRYING') AND received_at >= to_timestamp(${String(Math.floor(sinceMs))} / 1000.0)`, 'notifications');
  return Number(count ?? 0);
}

/** Sends a host's notification service holds now (inbox rows in SENDING under its lease; owner = host/pid/...). */
export async function sendsHeldBy(inventory: Inventory, host: string): Promise<number> {
  if (!/^[a-z0-9-]+$/.test(host)) throw new Error(`internal: host ${host}`);
  const [count] = await onLeader(inventory, `SELECT count(*) FROM notify.inbox WHERE status = 'SENDING' AND owner LIKE '${host}/%' AND lease_until > now()`, 'notifications');
  return Number(count ?? 0);
}

/**
 * Orders at the VIP: the load, the gateways' health, and the audit of the three sources (orders acknowledged to the
 * client, orders in PostgreSQL, emails at the provider: exactly one per event of the run's orders).
 */
export function gatewayTarget(inventory: Inventory): DrillTarget {
  const emailsBefore = new Map<string, number>();
  const startedAt = new Map<string, number>();
  return {
    async startLoad(runId: string): Promise<Load> {
      startedAt.set(runId, Date.now());
      emailsBefore.set(runId, await sinkCount(inventory));
      return k6Load(inventory, runId, join(repoRoot, 'reports', 'load', runId));
    },
    async whole(): Promise<Whole> {
      try {
        const states = await gatewayStates(inventory);
        const { problems, holder } = gatewayProblems(states);
        if (problems.length > 0) return { whole: false, detail: problems.join('; ') };
        return { whole: true, detail: `${holder ?? '?'} holds the VIP; ${states.map((s) => s.host).join(' and ')} run Nginx and Keepalived, both healthy` };
      } catch (error) {
        return { whole: false, detail: `gateways: ${error instanceof Error ? error.message : String(error)}` };
      }
    },
    async audit(runId: string): Promise<Audit> {
      const present = await ordersOfRun(inventory, runId);
      const emails = await auditEmails(inventory, emailsBefore.get(runId) ?? 0, () => eventsOfRun(inventory, runId), () => sendsInFlight(inventory, startedAt.get(runId) ?? 0));
      return { present, figures: emails.figures, problems: emails.problems };
    },
  };
}

interface Victim {
  host: string;
  /** the VIP's holder when the drill began, and its VRRP state changes until then */
  holder: string;
  transitions: Map<string, number>;
}

/**
 * What the time without orders includes besides the fault: the users' own spacing. The lab's users place about 10
 * orders a second at moments of their own, so a drill's minutes already hold gaps with no fault at all: 0.4-0.8 s in
 * the gateway and services drills, and up to 1.1 s under a Kafka broker's kill, which orders never wait for.
 */
export const USERS_SPACING = "the users' own spacing between orders (up to 1.1 s seen with nothing in their way, at the lab's 10 orders/s)";

export function gatewayDrills(inventory: Inventory, inventoryDir = defaultInventory): Drill<Victim>[] {
  const TAKEOVER = 'VRRPv3 master-down time: 3 x advert_int 0.2 s + skew (about 0.72 s), then gratuitous ARP';
  const prepare = (victimIsHolder: boolean) => async (): Promise<Victim> => {
    const states = await gatewayStates(inventory);
    const { holder, problems } = gatewayProblems(states);
    if (!holder) throw new Error(`no single VIP holder: ${problems.join('; ')}`);
    const other = states.find((s) => s.host !== holder)?.host;
    if (!other) throw new Error('no second gateway');
    return { host: victimIsHolder ? holder : other, holder, transitions: new Map(states.map((s) => [s.host, s.transitions])) };
  };
  /** the VIP moved to the other gateway, and the victim came back as its backup */
  const vipMoved = async (v: Victim): Promise<string[]> => {
    const holder = await vipHolder(inventory);
    return holder === v.holder ? [`${v.holder} holds the VIP again: it did not move, or it moved back (flapping)`] : [];
  };
  return [
    {
      name: 'gateway-host-stop',
      description: 'power cut of the gateway holding the VIP (every process killed at once), then it boots again',
      alerts: [HOST_DOWN],
      goal: { seconds: 2, boundBy: `${TAKEOVER}; ${USERS_SPACING}` },
      prepare: prepare(true),
      async fault(v) {
        await killHost(inventoryDir, v.host);
        return `power cut of ${v.host} (holding the VIP)`;
      },
      async heal(v) {
        const { seconds } = await startHost(inventoryDir, v.host);
        return `${v.host} booted again (${seconds} s); it must come back as the backup`;
      },
      after: vipMoved,
    },
    {
      name: 'gateway-nginx-kill',
      description: 'SIGKILL of every Nginx process on the gateway holding the VIP (the host and Keepalived stay up)',
      // systemd restarts Nginx within a second and the host stays up: only the VIP's move tells the on-call
      alerts: [GATEWAY_VIP_MOVED],
      goal: { seconds: 2, boundBy: `nginx.service's ExecStopPost flips the track file; Keepalived (inotify) goes to FAULT and its priority-0 advert hands the VIP over within the skew; ${USERS_SPACING}` },
      prepare: prepare(true),
      async fault(v) {
        await sh(v.host, 'systemctl kill --signal=KILL nginx');
        return `SIGKILL of every nginx process on ${v.host}`;
      },
      async heal(v) {
        // systemd restarts Nginx by itself (Restart=on-failure); nothing to do but wait for it
        for (let i = 0; i < 30 && (await sh(v.host, 'systemctl is-active nginx || true')).trim() !== 'active'; i++) await new Promise((r) => setTimeout(r, 500));
        return `systemd restarted nginx on ${v.host} (Restart=on-failure); it must stay the backup`;
      },
      after: vipMoved,
    },
    {
      name: 'gateway-standby-return',
      description: 'power cut of the standby gateway for 5 s, then it boots again: the VIP must not move at all',
      goal: { seconds: 1.5, boundBy: `nothing: the standby carries no traffic, and nopreempt keeps it from taking the VIP when it returns; ${USERS_SPACING}` },
      // the users feel nothing, so the on-call must hear of it
      alerts: [HOST_DOWN],
      prepare: prepare(false),
      async fault(v) {
        await killHost(inventoryDir, v.host);
        await new Promise((r) => setTimeout(r, 5000));
        return `power cut of the standby ${v.host}, kept down 5 s`;
      },
      async heal(v) {
        const { seconds } = await startHost(inventoryDir, v.host);
        return `${v.host} booted again (${seconds} s)`;
      },
      async after(v) {
        const states = await gatewayStates(inventory);
        const holder = states.find((s) => s.vip)?.host;
        const problems: string[] = [];
        if (holder !== v.holder) problems.push(`the VIP moved from ${v.holder} to ${holder ?? 'nobody'} although only the standby went away`);
        const flaps = (states.find((s) => s.host === v.holder)?.transitions ?? 0) - (v.transitions.get(v.holder) ?? 0);
        if (flaps !== 0) problems.push(`${v.holder} changed its VRRP state ${String(flaps)} times while the standby came back (flapping)`);
        return problems;
      },
    },
  ];
}
