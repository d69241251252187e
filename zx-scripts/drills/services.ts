// The services' drills on the lab, under the order load at the VIP (gateway.ts's target: orders acknowledged, orders
// in PostgreSQL, exactly one email per event at the provider): an app host's power cut, the email provider refusing
// mail for a minute, the notification service frozen mid-send, and a rolling deploy of both services.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { defaultInventory, killHost, repoRoot, runPlaybook, startHost } from '../lab/lab.ts';
import type { Drill, DrillTarget, Whole } from './framework.ts';
import { gatewayTarget, sendsHeldBy, USERS_SPACING, vipMovedSince, vrrpTransitions } from './gateway.ts';
import { NORMAL } from '@oms/mail-sink/behaviour';
import { sinkApi, sinkCount } from './mail.ts';
import { running, sh } from './postgres.ts';
import { EMAILS_NOT_SENT, EXPORTER_HUNG, HOST_DOWN } from './monitoring.ts';

/** The loopback /readyz of each service on an app host (roles/order_service, roles/notification_service). */
const READY = { 'order-service': 9101, 'notification-service': 9102 } as const;

/** What keeps the app hosts' services from serving (empty when both run and say they are ready on every host). */
export async function servicesProblems(inventory: Inventory): Promise<string[]> {
  const apps = inventory.hosts.filter((h) => h.groups.includes('app_servers'));
  const problems = await Promise.all(apps.map(async (h): Promise<string[]> => {
    if (!running(h.name)) return [`${h.name} is not running`];
    const checks = Object.entries(READY).map(([service, port]) =>
      `python3 -c "import urllib.request as u; print('${service}', u.urlopen('http://127.0.0.1:${String(port)}/readyz', timeout=2).status)" 2>/dev/null || echo '${service} not-ready'`);
    const out = await sh(h.name, checks.join('; ')).catch((error: unknown) => `${h.name}: ${String(error)}`);
    return out.trim().split('\n').filter((l) => !l.endsWith(' 200')).map((l) => `${h.name}: ${l}`);
  }));
  return problems.flat();
}

/** Outbox events not yet published to Kafka (the order-services' own gauge; the largest, as each relay reports it). */
async function outboxBacklog(inventory: Inventory): Promise<number> {
  const apps = inventory.hosts.filter((h) => h.groups.includes('app_servers') && running(h.name));
  const port = String(READY['order-service']);
  const backlogs = await Promise.all(apps.map(async (h) => {
    const out = await sh(h.name, `python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:${port}/metrics', timeout=2).read().decode())" 2>/dev/null || true`);
    const value = /^oms_outbox_backlog (\d+)/m.exec(out)?.[1];
    return value === undefined ? 0 : Number(value);
  }));
  return Math.max(0, ...backlogs);
}

/**
 * Waits until the order pipeline is idle: every outbox event published, and the provider accepting no more email
 * over `quietMs` (the notification-services caught up). What a benchmark step waits for so it measures the stack,
 * not the backlog of the step before. Returns how long it waited; throws after `timeoutMs`.
 */
export async function waitPipelineIdle(inventory: Inventory, timeoutMs = 600_000, quietMs = 3000): Promise<number> {
  const started = Date.now();
  let emails = await sinkCount(inventory);
  for (;;) {
    await sleep(quietMs);
    const [backlog, now] = await Promise.all([outboxBacklog(inventory), sinkCount(inventory)]);
    if (backlog === 0 && now === emails) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`the order pipeline is still busy after ${String(Math.round(timeoutMs / 1000))} s: ${String(backlog)} events in the outbox, ${String(now - emails)} emails in the last ${String(quietMs / 1000)} s`);
    emails = now;
  }
}

/** The gateways' target, whole only when the services are ready too. */
export function servicesTarget(inventory: Inventory): DrillTarget {
  const gateway = gatewayTarget(inventory);
  return {
    ...gateway,
    async whole(): Promise<Whole> {
      const [g, problems] = await Promise.all([gateway.whole(), servicesProblems(inventory)]);
      if (!g.whole || problems.length > 0) return { whole: false, detail: [...(g.whole ? [] : [g.detail]), ...problems].join('; ') };
      return { whole: true, detail: `${g.detail}; order-service and notification-service ready on every app host` };
    },
  };
}

/**
 * A deploy of the app hosts' services (their migrations first), with extra variables; its output goes to stderr (the
 * drills' stdout may be JSON).
 */
async function deployApps(inventoryDir: string, extra: string[]): Promise<void> {
  const code = await runPlaybook(inventoryDir, join(repoRoot, 'ansible/deploy-services.yml'), ['--limit', 'postgres,app_servers', ...extra], true);
  if (code !== 0) throw new Error(`deploy-services.yml --limit postgres,app_servers ${extra.join(' ')} failed (exit ${String(code)})`);
}

/** A services drill's victim, and the gateways' VRRP state changes before it (none of these drills may move the VIP). */
interface Victim {
  host: string;
  vrrp: Map<string, number>;
  /** sends the victim held when it was frozen (notification-pause) */
  held?: number;
}

/** How long notification-pause keeps the service frozen: past the lab's session timeout (15 s) and lease (10 s). */
const FROZEN_MS = 30_000;

export function servicesDrills(inventory: Inventory, inventoryDir = defaultInventory): Drill<Victim>[] {
  const apps = inventory.hosts.filter((h) => h.groups.includes('app_servers')).map((h) => h.name);
  const first = apps[0] ?? 'app1';
  const victim = (host: string) => async (): Promise<Victim> => ({ host, vrrp: await vrrpTransitions(inventory) });
  const vipStayed = (v: Victim): Promise<string[]> => vipMovedSince(inventory, v.vrrp);
  return [
    {
      name: 'app-host-kill',
      description: `power cut of an app host (${first}: its order-service and notification-service die at once), then it boots again`,
      alerts: [HOST_DOWN],
      goal: { seconds: 3.5, boundBy: `the gateways' proxy_connect_timeout (2 s) to the dead host, then the other host (a POST not yet sent is passed on); ${USERS_SPACING}` },
      prepare: victim(first),
      after: vipStayed,
      async fault(v) {
        await killHost(inventoryDir, v.host);
        return `power cut of ${v.host}`;
      },
      async heal(v) {
        const { seconds } = await startHost(inventoryDir, v.host);
        return `${v.host} booted again (${seconds} s); its services start by themselves`;
      },
    },
    {
      name: 'mail-provider-outage',
      description: 'the email provider answers every message with 451 (try later) for a minute (longer if EmailsNotSent has not reached the on-call yet), then accepts again',
      alerts: [EMAILS_NOT_SENT],
      goal: { seconds: 1.5, boundBy: `nothing: orders never wait for email (events wait in Kafka and the retry topic); ${USERS_SPACING}` },
      prepare: victim('mail-sink'),
      after: vipStayed,
      async fault() {
        // the shop's provider fails; the operator's alert relay (the same sink on the lab) goes on taking the on-call's mail
        await sinkApi(inventory, '/behaviour', { ...NORMAL, mode: 'tempfail', accounts: ['notification-service'] });
        await sleep(60_000);
        return 'the mail sink answered 451 to every message of notification-service for 60 s';
      },
      async heal() {
        await sinkApi(inventory, '/behaviour', NORMAL);
        return 'the mail sink accepts again; the breaker\'s probe finds it and sending resumes';
      },
    },
    {
      name: 'notification-pause',
      description: `the notification service on ${first} frozen (SIGSTOP) mid-send for longer than its consumer session, then woken (SIGCONT)`,
      // the other host's service takes its partitions over and nothing is late: a hung process shows only as its
      // metrics endpoint not answering
      alerts: [EXPORTER_HUNG],
      goal: { seconds: 1.5, boundBy: `nothing: orders never wait for email (events wait in Kafka); ${USERS_SPACING}` },
      prepare: victim(first),
      async after(v) {
        // frozen with nothing in hand, the drill would prove nothing about a send taken over
        return [...(v.held === 0 ? [`${v.host}'s notification service held no send when it was frozen`] : []), ...(await vipStayed(v))];
      },
      async fault(v) {
        // the provider takes 2 s to accept each sender's envelope: the service always has sends under way, none of
        // them past its first byte, which a woken consumer would otherwise go on to complete
        await sinkApi(inventory, '/behaviour', { ...NORMAL, envelopeDelayMs: 2000 });
        try {
          await sleep(4000);
          await sh(v.host, 'systemctl kill --signal=STOP notification-service');
          v.held = await sendsHeldBy(inventory, v.host);
        } finally {
          await sinkApi(inventory, '/behaviour', NORMAL);
        }
        await sleep(FROZEN_MS);
        return `notification-service on ${v.host} frozen (SIGSTOP) holding ${String(v.held)} sends, for ${String(FROZEN_MS / 1000)} s: past its session timeout (15 s) and lease (10 s)`;
      },
      async heal(v) {
        await sh(v.host, 'systemctl kill --signal=CONT notification-service');
        return `notification-service on ${v.host} woken (SIGCONT): it must complete none of the sends it held, and rejoin`;
      },
    },
    {
      name: 'app-rolling-deploy',
      description: 'a configuration change deployed (deploy-services.yml: one app host at a time, drained at the gateways), then deployed back',
      quiet: 'a planned deploy: one app host at a time, drained at the gateways first and back only once ready',
      goal: { seconds: 2.5, boundBy: `a host is out of the upstream before its services restart, and back only once ready; but each gateway reload closes the users' idle connections and all of them reconnect (TLS) at once, about 1 s on the lab's 2 CPUs; ${USERS_SPACING}` },
      prepare: victim(apps.join(',')),
      after: vipStayed,
      async fault() {
        await deployApps(inventoryDir, ['-e', JSON.stringify({ order_service_drain_seconds: 11, notification_service_kafka_concurrency: 4 })]);
        return 'deploy-services.yml with a changed configuration: both services restarted on every app host, one host at a time';
      },
      async heal() {
        await deployApps(inventoryDir, []);
        return 'the inventory\'s configuration deployed back the same way';
      },
    },
  ];
}
