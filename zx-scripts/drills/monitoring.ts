// The monitoring host (roles/prometheus) as the tests and drills see it: Prometheus' and Alertmanager's APIs, asked
// from the controller inside the monitoring host's network namespace with the `prometheus` client certificate (both
// answer only to a certificate of the kit's CA, and the firewall lets only the monitoring hosts reach them), and the
// alerts that reached the on-call's mailbox at the lab's mail sink.
import { join } from 'node:path';
import { $ } from 'zx';
import type { Inventory } from '../lib/inventory.ts';
import { stateDir } from '../lab/state.ts';
import type { AlertInbox, ExpectedAlert } from './framework.ts';
import { sinkCount, sinkMessagesAfter, type SinkMessage } from './mail.ts';
import { portSetting } from '../lib/settings.ts';

export const PROMETHEUS_PORT = portSetting('prometheus', 'prometheus_port');
export const ALERTMANAGER_PORT = portSetting('prometheus', 'prometheus_alertmanager_port');
/** The on-call's address in the lab inventory (group_vars/all/monitoring.yml). */
export const ON_CALL = 'on-call@oms.lab';

export function monitoringHost(inventory: Inventory): { name: string; address: string; fqdn: string } {
  const host = inventory.hosts.find((h) => h.groups.includes('monitoring'));
  if (!host) throw new Error('the inventory has no host in group monitoring');
  return { name: host.name, address: host.address, fqdn: `${host.name}.${inventory.domain}` };
}

/** curl from inside the monitoring host's namespace with the lab PKI's prometheus identity; its exit code and output. */
export async function curlFromMonitoring(inventory: Inventory, url: string, opts: { clientCert?: boolean; extra?: string[] } = {}):
Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const host = monitoringHost(inventory);
  const pki = join(stateDir, 'pki', 'lab');
  const cert = opts.clientCert === false ? [] : [
    '--cert', join(pki, 'clients', 'prometheus', 'client.crt'), '--key', join(pki, 'clients', 'prometheus', 'client.key')];
  const resolve = inventory.hosts.flatMap((h) => ['--resolve', `${h.name}.${inventory.domain}:${new URL(url).port}:${h.address}`]);
  const args = ['--silent', '--show-error', '--fail-with-body', '--max-time', '10', '--cacert', join(pki, 'trust-bundle.pem'),
    ...cert, ...resolve, ...(opts.extra ?? []), url];
  const r = await $`ip netns exec ${host.name} curl ${args}`.nothrow().quiet();
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function api<T>(inventory: Inventory, port: number, path: string, extra?: string[]): Promise<T> {
  const url = `https://${monitoringHost(inventory).fqdn}:${String(port)}${path}`;
  const r = await curlFromMonitoring(inventory, url, extra === undefined ? {} : { extra });
  if (r.exitCode !== 0) throw new Error(`${url}: ${(r.stderr || r.stdout).trim()}`);
  // Alertmanager answers a POST with an empty body
  return (r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout)) as T;
}

/** A console page (roles/prometheus/files/consoles/UID.html) as Prometheus on the monitoring host renders it now. */
export async function consolePage(inventory: Inventory, uid: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return curlFromMonitoring(inventory, `https://${monitoringHost(inventory).fqdn}:${String(PROMETHEUS_PORT)}/consoles/${uid}.html`);
}

export interface Target {
  labels: { job: string; instance: string };
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** Prometheus' active scrape targets. */
export async function targets(inventory: Inventory): Promise<Target[]> {
  return (await api<{ data: { activeTargets: Target[] } }>(inventory, PROMETHEUS_PORT, '/api/v1/targets?state=active')).data.activeTargets;
}

export interface PromAlert { labels: Record<string, string>; state: 'pending' | 'firing'; activeAt: string }

/** The alerts Prometheus holds now (pending or firing). */
export async function promAlerts(inventory: Inventory): Promise<PromAlert[]> {
  return (await api<{ data: { alerts: PromAlert[] } }>(inventory, PROMETHEUS_PORT, '/api/v1/alerts')).data.alerts;
}

/**
 * Every alert that was pending or firing at some evaluation since `from` (seconds since the epoch; Prometheus'
 * ALERTS series, sampled every 15 s): "alertname instance state" lines, and the seconds the range covers.
 */
export async function alertsSince(inventory: Inventory, from: number): Promise<{ alerts: string[]; seconds: number }> {
  const to = Date.now() / 1000;
  const query = `/api/v1/query_range?query=ALERTS&start=${from.toFixed(3)}&end=${to.toFixed(3)}&step=15`;
  const range = await api<{ data: { result: { metric: Record<string, string> }[] } }>(inventory, PROMETHEUS_PORT, query);
  const alerts = range.data.result.map(({ metric }) => `${metric.alertname ?? ''} ${metric.instance ?? ''} ${metric.alertstate ?? ''}`);
  return { alerts: [...new Set(alerts)].sort(), seconds: to - from };
}

export interface Sample { metric: Record<string, string>; value: number }

/** A PromQL expression evaluated now: its series (labels and value). */
export async function instantQuery(inventory: Inventory, expr: string): Promise<Sample[]> {
  const query = `/api/v1/query?query=${encodeURIComponent(expr)}`;
  const result = await api<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(inventory, PROMETHEUS_PORT, query);
  return result.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** When Prometheus started (seconds since the epoch): the start of its memory of alerts. */
export async function prometheusStart(inventory: Inventory): Promise<number> {
  const value = (await instantQuery(inventory, 'min(process_start_time_seconds{job="prometheus"})'))[0]?.value;
  if (value === undefined) throw new Error('Prometheus reports no start time of its own');
  return value;
}

/** The names of the alerting rules Prometheus has loaded. */
export async function loadedAlertRules(inventory: Inventory): Promise<string[]> {
  const rules = await api<{ data: { groups: { rules: { name: string; type: string }[] }[] } }>(inventory, PROMETHEUS_PORT, '/api/v1/rules?type=alert');
  return rules.data.groups.flatMap((g) => g.rules.map((r) => r.name));
}

/** Hands Alertmanager an alert, as Prometheus does (POST /api/v2/alerts). */
export async function postAlert(inventory: Inventory, labels: Record<string, string>, annotations: Record<string, string>, endsAt?: Date): Promise<void> {
  const body = [{ labels, annotations, startsAt: new Date().toISOString(), ...(endsAt ? { endsAt: endsAt.toISOString() } : {}) }];
  await api<unknown>(inventory, ALERTMANAGER_PORT, '/api/v2/alerts',
    ['--request', 'POST', '--header', 'content-type: application/json', '--data', JSON.stringify(body)]);
}

export interface AlertMail { at: Date; status: 'firing' | 'resolved'; alertname: string; subject: string }

/**
 * The alert mails that reached the on-call at the sink after its message `after`: Alertmanager's subject is
 * "[FIRING:n] <alertname> ..." or "[RESOLVED] <alertname> ...", one mail per alert name (routes group by it).
 */
export async function alertMailsAfter(inventory: Inventory, after: number): Promise<AlertMail[]> {
  const mails = (await sinkMessagesAfter(inventory, after)).filter((m: SinkMessage) => m.to.includes(ON_CALL));
  return mails.flatMap((m) => {
    const match = /^\[(FIRING|RESOLVED)(?::\d+)?\]\s+(\S+)/.exec(m.subject ?? '');
    return match ? [{ at: new Date(m.at), status: match[1] === 'FIRING' ? 'firing' as const : 'resolved' as const, alertname: match[2] ?? '', subject: m.subject ?? '' }] : [];
  });
}

interface ManagedAlert { labels: Record<string, string>; status: { state: string; inhibitedBy: string[]; silencedBy: string[] }; endsAt: string }

/**
 * Where these alerts stand between the rule and the mail: Prometheus' pending or firing alerts of these names, the
 * alert manager's active or suppressed ones, and the scrape targets that fail now (with their error). An alert whose
 * mail never came is then seen as still firing at the rule (the target still fails), held by the alert manager, or
 * gone from both (the mail was lost on its way).
 */
export async function alertState(inventory: Inventory, names: readonly string[]): Promise<string> {
  const named = (labels: Record<string, string>): boolean => names.includes(labels['alertname'] ?? '');
  const where = (labels: Record<string, string>): string => `${labels['alertname'] ?? '?'}{${labels['instance'] ?? labels['job'] ?? ''}}`;
  const prom = (await promAlerts(inventory)).filter((a) => named(a.labels)).map((a) => `${where(a.labels)} ${a.state} since ${a.activeAt}`);
  const managed = (await api<ManagedAlert[]>(inventory, ALERTMANAGER_PORT, '/api/v2/alerts')).filter((a) => named(a.labels))
    .map((a) => `${where(a.labels)} ${a.status.state}${a.status.inhibitedBy.length > 0 ? ' (inhibited)' : ''}${a.status.silencedBy.length > 0 ? ' (silenced)' : ''} until ${a.endsAt}`);
  const failing = (await targets(inventory)).filter((t) => t.health !== 'up').map((t) => `${t.labels.job}/${t.labels.instance}: ${t.lastError || t.health}`);
  return `Prometheus: ${prom.join(', ') || 'none pending or firing'}; Alertmanager: ${managed.join(', ') || 'none'}; targets down: ${failing.join(', ') || 'none'}`;
}

/** The on-call's mailbox at the lab's mail sink, as the drill framework reads it; none without a monitoring host. */
export function onCallInbox(inventory: Inventory): AlertInbox | undefined {
  const has = (group: string): boolean => inventory.hosts.some((h) => h.groups.includes(group));
  if (!has('monitoring') || !has('mail_sink')) return undefined;
  return {
    mark: () => sinkCount(inventory),
    mails: (after) => alertMailsAfter(inventory, after),
    explain: (names) => alertState(inventory, names),
    // the lab's two CPUs miss the order SLO under the drills' load (docs/monitoring.md): making the order path
    // cheaper is issue 31's; until then a planned operation is not failed for the burn alerts
    underLoad: ['OrderSLOFastBurn', 'OrderSLOSlowBurn'],
  };
}

/*
 * The bounds the drills give their alerts, from the lab's monitoring settings (inventories/lab/group_vars/all/
 * monitoring.yml: scrapes and rule evaluations every 5 s, Alertmanager's group_wait 5 s and group_interval 10 s):
 * - firing: the rule's `for` + one scrape (5 s) + one evaluation (5 s) + group_wait (5 s), then the mail; 15 s more for
 *   a lab whose two cores are busy with the drill;
 * - resolved: the component back + one scrape + one evaluation + group_interval (10 s), then the mail, counted from
 *   the heal (a host's boot, ~10 s, included), with the same 15 s more.
 */
const expected = (name: string, forSeconds: number): ExpectedAlert => ({ name, fires: forSeconds + 5 + 5 + 5 + 15, resolves: 10 + 5 + 5 + 10 + 15 });
/** HostDown (for 30 s): a host that lost power or was cut off from the monitoring host. */
export const HOST_DOWN = expected('HostDown', 30);
/** ExporterDown (for 30 s): a component's metrics endpoint gone while its host answers. */
export const EXPORTER_DOWN = expected('ExporterDown', 30);
/** ExporterDown for a hung component: its endpoint accepts the scrape and fails it only at the scrape timeout (5 s). */
export const EXPORTER_HUNG = expected('ExporterDown', 30 + 5);
/** RedisDown (for 15 s): a Redis server its exporter cannot reach (the process killed or hung). */
export const REDIS_DOWN = expected('RedisDown', 15);
/** EtcdNoQuorum (for 15 s): fewer etcd members with a leader than a majority. */
export const ETCD_NO_QUORUM = expected('EtcdNoQuorum', 15);
/** EmailsNotSent: sends retried and none accepted over a 1 min window, for 30 s: 90 s of the provider refusing. */
export const EMAILS_NOT_SENT = expected('EmailsNotSent', 90);
/**
 * WalArchivingFailing (for 2 min): the primary's last archive attempt failed and none succeeded since. pgBackRest's
 * asynchronous archive-push reports a failure once its archive-timeout (60 s) has passed without the push; the lab's
 * database hosts read their archiver every 15 s (pgbackrest_metrics_archiver_every); the resolution waits for the
 * repository host's boot (about 10 s) and the queue's push as well.
 */
const archiving = expected('WalArchivingFailing', 60 + 15 + 120);
export const WAL_ARCHIVING_FAILING: ExpectedAlert = { ...archiving, resolves: archiving.resolves + 15 };
/** EtcdMemberNoLeader (for 30 s): an etcd member that answers but is cut off from the others. */
export const ETCD_MEMBER_NO_LEADER = expected('EtcdMemberNoLeader', 30);

/*
 * An alert that marks a change rather than a state (no `for`; its rule compares with a minute ago): it fires within
 * a scrape, an evaluation and group_wait of the change, and ends by itself a minute after it, whatever the heal does;
 * counted from the heal (the change came before it), the minute + an evaluation + group_interval, then the mail.
 */
const changed = (name: string): ExpectedAlert => ({ name, fires: 5 + 5 + 5 + 15, resolves: 60 + 5 + 10 + 15 });
/** PostgresLeaderChanged: another member promoted (the timeline moved on). */
export const POSTGRES_LEADER_CHANGED = changed('PostgresLeaderChanged');
/** PostgresRestarted: a member's postmaster started again (a crash Patroni restarted). */
export const POSTGRES_RESTARTED = changed('PostgresRestarted');
/** GatewayVipMoved: the virtual IP came to or left a gateway. */
export const GATEWAY_VIP_MOVED = changed('GatewayVipMoved');
