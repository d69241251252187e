// The gateway drills (the active gateway host stopped hard, Nginx killed on it, the standby gateway going away and
// coming back) on the lab, and the target they share: HTTPS requests from many internet addresses (the client host)
// to the virtual IP, each a POST of a unique id that the upstream records before it answers 201. Acknowledged = a 201
// came back through the gateway; the audit finds every acknowledged id in the upstream's records. The measured time
// without writes is the time the VIP did not answer.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../lib/inventory.ts';
import { defaultInventory, killHost, startHost } from '../lab/lab.ts';
import { agentLoad, ensureUpstreamStub, GATEWAY_AGENT, upstreamRecords } from './agent.ts';
import type { Drill, DrillTarget, Load, Whole } from './framework.ts';
import { running, sh } from './postgres.ts';

const LOAD_HOST = 'client';
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

export async function vipHolder(inventory: Inventory): Promise<string> {
  const { problems, holder } = gatewayProblems(await gatewayStates(inventory));
  if (!holder) throw new Error(`no single VIP holder: ${problems.join('; ')}`);
  return holder;
}

/** Every id the upstream recorded for a run (all app hosts). */
function recorded(inventory: Inventory, runId: string): Set<string> {
  const ids = new Set<string>();
  const upstreams = inventory.hosts.filter((h) => h.groups.includes('app_servers'));
  for (const file of upstreams.map((h) => join(upstreamRecords(), `${h.name}.ids`)).filter(existsSync)) {
    for (const id of readFileSync(file, 'utf8').split('\n')) if (id.startsWith(`${runId}-`)) ids.add(id);
  }
  return ids;
}

export function gatewayTarget(inventory: Inventory): DrillTarget {
  return {
    async startLoad(runId: string): Promise<Load> {
      await ensureUpstreamStub(inventory);
      return agentLoad(GATEWAY_AGENT, inventory, LOAD_HOST, ['load', '--run', runId, '--workers', '8', '--interval-ms', '20']);
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
    audit(runId: string) {
      return Promise.resolve({ present: recorded(inventory, runId) });
    },
  };
}

interface Victim {
  host: string;
  /** the VIP's holder when the drill began, and its VRRP state changes until then */
  holder: string;
  transitions: Map<string, number>;
}

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
      goal: { seconds: 1, boundBy: TAKEOVER },
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
      goal: { seconds: 1, boundBy: "nginx.service's ExecStopPost flips the track file; Keepalived (inotify) goes to FAULT and its priority-0 advert hands the VIP over within the skew" },
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
      goal: { seconds: 0.5, boundBy: 'nothing: the standby carries no traffic, and nopreempt keeps it from taking the VIP when it returns' },
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
