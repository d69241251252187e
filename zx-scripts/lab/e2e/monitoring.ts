// Monitoring on the lab: Prometheus on mon1 scrapes every exporter over mutual TLS and every target is up; an exporter
// (each job's) refuses a scrape without a client certificate and is not reachable from other hosts; the kit's alert rules are
// loaded; an alert handed to Alertmanager reaches the on-call's mailbox at
// the mail sink; the dashboards render. Later (monitoringQuietTests, just before the first drill): the idle lab
// raised no alert for 10 minutes, then a certificate about to expire reaches the on-call, and (full suite) the users'
// plain load raises none. Runs inside lab.e2e.ts, on its lab.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupHosts } from '../../lib/inventory.ts';
import { labPki } from '../../drills/agent.ts';
import { sinkCount } from '../../drills/mail.ts';
import { alertMailsAfter, alertsSince, consolePage, curlFromMonitoring, instantQuery, loadedAlertRules, monitoringHost, postAlert, prometheusStart, targets, type Sample } from '../../drills/monitoring.ts';
import { parseDashboards } from '../../dashboards/dashboards.ts';
import { sh } from '../../drills/postgres.ts';
import { parse } from 'yaml';
import { $ } from 'zx';
import { DEFAULT_USERS, figure, loadConfig, runK6 } from '../../load/k6.ts';
import { repoRoot } from '../lab.ts';
import { FULL_SUITE_ONLY, inventory, it, MINUTES } from './harness.ts';
import { timeStamp } from '../../lib/run-id.ts';

const NODE_EXPORTER_PORT = 9100;
/** The hosts the monitoring watches: every host but the clients'. */
const watched = inventory.hosts.filter((h) => !h.groups.includes('clients')).map((h) => h.name);
const RULES_DIR = join(repoRoot, 'roles', 'prometheus', 'files', 'rules');

/** The names of the alerts in the kit's rule files. */
function alertsOf(): string[] {
  return readdirSync(RULES_DIR).filter((f) => f.endsWith('.yml')).flatMap((f) => {
    const doc = parse(readFileSync(join(RULES_DIR, f), 'utf8')) as { groups: { rules: { alert?: string }[] }[] };
    return doc.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert === undefined ? [] : [r.alert])));
  });
}

/** When the on-call's mail of that alert and status reached the sink (after mail number `after`); fails after 120 s. */
async function alertMailAt(after: number, alertname: string, status: 'firing' | 'resolved'): Promise<number> {
  for (let i = 0; i < 60; i++) {
    const mail = (await alertMailsAfter(inventory, after)).find((m) => m.alertname === alertname && m.status === status);
    if (mail) return mail.at.getTime();
    await sleep(2000);
  }
  return assert.fail(`no ${status} mail for ${alertname} reached the on-call within 120 s`);
}

export function monitoringTests(): void {
  it('monitoring: Prometheus scrapes every exporter over mutual TLS (all up), only it can, every alert rule loads', async (t) => {
    const expected = new Map<string, string[]>([
      ['node', watched],
      ['prometheus', groupHosts(inventory, 'monitoring').map((h) => h.name)],
      ['alertmanager', groupHosts(inventory, 'monitoring').map((h) => h.name)],
      ['patroni', groupHosts(inventory, 'postgres').map((h) => h.name)],
      ['etcd', groupHosts(inventory, 'etcd').map((h) => h.name)],
      ['nginx', groupHosts(inventory, 'gateways').map((h) => h.name)],
      ['haproxy', groupHosts(inventory, 'haproxy').map((h) => h.name)],
      ['redis', groupHosts(inventory, 'redis').map((h) => h.name)],
      ['sentinel', groupHosts(inventory, 'redis_sentinel').map((h) => h.name)],
      ['kafka', groupHosts(inventory, 'kafka').map((h) => h.name)],
      ['zookeeper', groupHosts(inventory, 'zookeeper').map((h) => h.name)],
      ['order-service', groupHosts(inventory, 'app_servers').map((h) => h.name)],
      ['notification-service', groupHosts(inventory, 'app_servers').map((h) => h.name)],
    ]);
    const want = [...expected].flatMap(([job, hosts]) => hosts.map((h) => `${job}/${h}`)).sort();
    // the first scrape of each target comes within a scrape interval (15 s) of Prometheus' start
    let found = await targets(inventory);
    for (let i = 0; i < 12 && found.some((x) => x.health !== 'up'); i++) {
      await sleep(5000);
      found = await targets(inventory);
    }
    assert.deepEqual(found.map((x) => `${x.labels.job}/${x.labels.instance}`).sort(), want, 'one target per exporter of the inventory');
    const down = found.filter((x) => x.health !== 'up').map((x) => `${x.labels.job}/${x.labels.instance}: ${x.lastError}`);
    assert.deepEqual(down, [], 'every target is up');
    assert.ok(found.every((x) => x.scrapeUrl.startsWith('https://')), 'every scrape is HTTPS');
    t.diagnostic(`${String(found.length)} targets up: ${[...expected].map(([job, hosts]) => `${job} ${String(hosts.length)}`).join(', ')}`);

    // without a client certificate, every exporter ends the handshake: one target of each job, at the URL
    // Prometheus scrapes
    const db = groupHosts(inventory, 'postgres')[0];
    assert.ok(db);
    for (const job of expected.keys()) {
      const target = found.find((x) => x.labels.job === job);
      assert.ok(target, job);
      const bare = await curlFromMonitoring(inventory, target.scrapeUrl, { clientCert: false });
      // TLS 1.3: the server checks the client's certificate after the client has finished its side of the
      // handshake, so curl sees the refusal as an alert, a reset or a closed socket depending on timing (exit 35,
      // 55, 56 or 16); Nginx (ssl_verify_client on) finishes the handshake and answers 400 instead (exit 22)
      const refused = [16, 35, 52, 55, 56].includes(bare.exitCode) || (bare.exitCode === 22 && /error: 400$/m.test(bare.stderr.trim()));
      assert.ok(refused, `${job}: a scrape of ${target.scrapeUrl} without a client certificate is refused (curl exit ${String(bare.exitCode)}): ${bare.stderr}`);
      assert.doesNotMatch(bare.stdout, /^# (HELP|TYPE) /m, `${job}: no metrics without a client certificate`);
    }
    // and from another zone's host, the exporter's port is not reachable at all (the firewall drops it)
    const app = groupHosts(inventory, 'app_servers')[0];
    assert.ok(app);
    const fromApp = await sh(app.name, `timeout 5 bash -c 'exec 3<>/dev/tcp/${db.address}/${String(NODE_EXPORTER_PORT)}' 2>&1 && echo open || echo blocked`);
    assert.equal(fromApp.trim().split('\n').pop(), 'blocked', `${app.name} -> ${db.name}:${String(NODE_EXPORTER_PORT)}: ${fromApp}`);

    // the exporters read what they watch, not only answer: every Redis and Sentinel logged in (the metrics ACL user
    // over TLS), one master, and each Sentinel monitors the one master name
    const byInstance = (samples: Sample[]): string[] => samples.map((x) => `${x.metric.instance ?? '?'}=${String(x.value)}`).sort();
    const redisUp = await instantQuery(inventory, 'redis_up');
    const redisHosts = groupHosts(inventory, 'redis').map((h) => h.name);
    const sentinelHosts = groupHosts(inventory, 'redis_sentinel').map((h) => h.name);
    assert.deepEqual(redisUp.map((x) => `${x.metric.job ?? '?'}/${x.metric.instance ?? '?'}=${String(x.value)}`).sort(),
      [...redisHosts.map((h) => `redis/${h}=1`), ...sentinelHosts.map((h) => `sentinel/${h}=1`)].sort(), 'every Redis and Sentinel answers its exporter');
    const masters = await instantQuery(inventory, 'redis_instance_info{job="redis",role="master"}');
    assert.equal(masters.length, 1, `one Redis master: ${byInstance(masters).join(', ')}`);
    const monitored = await instantQuery(inventory, 'redis_sentinel_masters{job="sentinel"}');
    assert.deepEqual(byInstance(monitored), sentinelHosts.map((h) => `${h}=1`).sort(), 'each Sentinel monitors one master');
    t.diagnostic(`Redis master ${masters[0]?.metric.instance ?? '?'}; ${String(redisHosts.length)} Redis and ${String(sentinelHosts.length)} Sentinels read by their exporters`);

    // Kafka and ZooKeeper, read inside their JVMs: one active controller, every partition replicated, one
    // ZooKeeper leader and the other members following
    const controllers = await instantQuery(inventory, 'kafka_controller_kafkacontroller_activecontrollercount{job="kafka"} == 1');
    assert.equal(controllers.length, 1, `one active Kafka controller: ${byInstance(controllers).join(', ')}`);
    const partitions = await instantQuery(inventory, 'kafka_server_replicamanager_partitioncount{job="kafka"}');
    assert.equal(partitions.length, groupHosts(inventory, 'kafka').length, 'every broker reports its partitions');
    assert.ok(partitions.every((x) => x.value > 0), `every broker holds partitions: ${byInstance(partitions).join(', ')}`);
    const urp = await instantQuery(inventory, 'sum(kafka_server_replicamanager_underreplicatedpartitions{job="kafka"})');
    assert.equal(urp[0]?.value, 0, 'no partition is under-replicated');
    const zk = await instantQuery(inventory, 'zookeeper_peer_state{job="zookeeper"}');
    const followers = groupHosts(inventory, 'zookeeper').length - 1;
    assert.deepEqual(zk.map((x) => x.metric.state ?? '?').sort(), [...Array<string>(followers).fill('following'), 'leading'], 'one ZooKeeper member leads, the others follow');
    t.diagnostic(`Kafka controller ${controllers[0]?.metric.instance ?? '?'}, partitions ${byInstance(partitions).join(' ')}; ZooKeeper leader ${zk.find((x) => x.metric.state === 'leading')?.metric.instance ?? '?'}`);

    // each app host's HAProxy sends writes to exactly one member, the leader
    const writers = await instantQuery(inventory, 'haproxy_backend_active_servers{job="haproxy",proxy="postgres_rw"}');
    assert.deepEqual(byInstance(writers), groupHosts(inventory, 'haproxy').map((h) => `${h.name}=1`).sort(), 'each HAProxy has the one leader in its read-write backend');

    // exactly one gateway holds the VIP
    const vip = await instantQuery(inventory, 'keepalived_vip_held');
    assert.equal(vip.filter((x) => x.value === 1).length, 1, `one gateway holds the VIP: ${byInstance(vip).join(', ')}`);
    // the gateway's metrics come from its access log: requests from the client host (the internet) show in them within
    // a scrape: a redirect (plain HTTP), an API answer and a 404 the gateway gives itself
    const gatewayVip = inventory.gatewayVip ?? '';
    const apiName = inventory.gatewayName ?? '';
    const bundle = join(labPki(), 'trust-bundle.pem');
    const total = 'sum(nginx_http_requests_total{job="nginx"})';
    const before = await instantQuery(inventory, total);
    for (const url of [`http://${gatewayVip}/api/v1/products`, `https://${apiName}/api/v1/products`, `https://${apiName}/no-such-page`]) {
      await $`ip netns exec client curl --silent --output /dev/null --cacert ${bundle} --resolve ${apiName}:443:${gatewayVip} ${url}`;
    }
    const counted = (samples: Sample[]): number => samples[0]?.value ?? 0;
    let requests = await instantQuery(inventory, total);
    for (let i = 0; i < 10 && counted(requests) < counted(before) + 3; i++) {
      await sleep(2000);
      requests = await instantQuery(inventory, total);
    }
    assert.ok(counted(requests) >= counted(before) + 3, `the gateways counted the 3 requests: ${String(counted(before))} before, ${String(counted(requests))} after`);
    // every request is in the latency histogram's buckets (+Inf) as in its count
    const unbucketed = await instantQuery(inventory, 'nginx_request_seconds_count != ignoring(le) nginx_request_seconds_bucket{le="+Inf"}');
    assert.deepEqual(byInstance(unbucketed), [], 'every request counted in the latency histogram is in its buckets');
    t.diagnostic(`VIP on ${vip.find((x) => x.value === 1)?.metric.instance ?? '?'}; the gateways counted ${String(Math.round(counted(requests) - counted(before)))} requests while the client sent 3`);

    const rules = (await loadedAlertRules(inventory)).sort();
    assert.deepEqual(rules, alertsOf().sort(), 'Prometheus loaded every alert rule of roles/prometheus/files/rules');
    // that none has fired since Prometheus started is checked once, over 10 idle minutes (monitoringQuietTests)
    // the figures of the monitoring host itself: its daemons' CPU and memory, and the series Prometheus holds
    const cpu = await instantQuery(inventory, 'sum by (job) (rate(process_cpu_seconds_total{job=~"prometheus|alertmanager"}[2m]))');
    const rss = await instantQuery(inventory, 'sum by (job) (process_resident_memory_bytes{job=~"prometheus|alertmanager"})');
    const series = await instantQuery(inventory, 'prometheus_tsdb_head_series{job="prometheus"}');
    const of = (samples: Sample[], job: string): number => samples.find((x) => x.metric.job === job)?.value ?? NaN;
    t.diagnostic(['prometheus', 'alertmanager'].map((job) => `${job} ${(of(cpu, job) * 100).toFixed(1)} % of a CPU, ${(of(rss, job) / 2 ** 20).toFixed(0)} MiB resident`).join('; ') +
      `; ${String(series[0]?.value ?? '?')} series in Prometheus' head`);
    t.diagnostic(`${String(rules.length)} alert rules loaded; monitoring host ${monitoringHost(inventory).name}`);
  });

  it('monitoring: an alert handed to Alertmanager reaches the on-call at the mail sink, and so does its resolution', { timeout: 3 * MINUTES }, async (t) => {
    const before = await sinkCount(inventory);
    const alertname = `OmsE2eRoute${String(Date.now())}`;
    const labels = { alertname, severity: 'warning', instance: 'e2e' };
    const annotations = { summary: 'the end-to-end test of the alert route', description: 'sent by zx-scripts/lab/e2e/monitoring.ts', runbook_url: 'docs/runbooks/alerts.md#alertsnotdelivered' };
    const sent = Date.now();
    await postAlert(inventory, labels, annotations);
    const waitFor = (status: 'firing' | 'resolved'): Promise<number> => alertMailAt(before, alertname, status);
    const fired = await waitFor('firing');
    await postAlert(inventory, labels, annotations, new Date());
    const resolved = await waitFor('resolved');
    t.diagnostic(`firing mail ${((fired - sent) / 1000).toFixed(1)} s after the alert, resolved mail ${((resolved - fired) / 1000).toFixed(1)} s later`);
  });

  it('monitoring: the dashboards\' console pages render on the monitoring host; the overview shows each cluster\'s leader', async (t) => {
    const dashboards = parseDashboards(readFileSync(join(repoRoot, 'dashboards', 'dashboards.yml'), 'utf8'));
    const panelsOf = (html: string): Map<string, string> => new Map(html.split('<section class="panel"').slice(1)
      .map((section) => [/<h2>(.*?)<\/h2>/.exec(section)?.[1] ?? '?', section]));
    for (const d of dashboards) {
      const page = await consolePage(inventory, d.uid);
      assert.equal(page.exitCode, 0, `${d.uid}: ${page.stderr} ${page.stdout.slice(0, 300)}`);
      assert.equal(panelsOf(page.stdout).size, d.panels.length, `${d.uid}: every panel rendered`);
      if (d.uid !== 'oms-overview') continue;
      const panels = panelsOf(page.stdout);
      // what the lab as provisioned must show: one leader or holder each (the order panels need orders)
      for (const title of ['PostgreSQL leader', 'Redis master', 'Kafka active controller', 'ZooKeeper leader', 'Gateway holding the VIP']) {
        const section = panels.get(title) ?? '';
        assert.equal((section.match(/<tr>/g) ?? []).length, 1, `${title}: one row: ${section}`);
        assert.doesNotMatch(section, /no data/, title);
      }
      assert.match(panels.get('Targets down') ?? '', /<td class="v">0<\/td>/, 'no target down');
      // a share of no requests is no figure: the standby gateway (no traffic) is left out, not shown as NaN
      const errors = panels.get('Server errors at the gateways (share of requests, 5 min)') ?? '';
      assert.doesNotMatch(errors, /NaN/, `the gateways' error share: ${errors}`);
      t.diagnostic(`${String(dashboards.length)} console pages; overview: ${['PostgreSQL leader', 'Redis master', 'Kafka active controller', 'ZooKeeper leader', 'Gateway holding the VIP']
        .map((title) => `${title} ${/<td>(\w+)<\/td>/.exec(panels.get(title) ?? '')?.[1] ?? '?'}`).join(', ')}`);
    }
  });
}

/*
 * After the tests that touch the lab without a fault (TLS, monitoring, journal) and before the first drill: the lab
 * must have raised no alert for 10 minutes. Then the tests that raise alerts on purpose.
 */
export function monitoringQuietTests(): void {
  // no false positive on an idle, healthy lab: from Prometheus' start (the end of site.yml) through the tests that
  // probe the lab without a fault, no alert fired; the test waits for what is missing of the 10 minutes. A pending
  // alert reaches no one: one scrape that times out (5 s on the lab) while Ansible runs on all 16 hosts at once makes
  // ExporterDown and HostDown pending on every host for an evaluation, as a CI run on a saturated machine showed;
  // those are reported, not failed
  const QUIET_MINUTES = 10;
  it(`monitoring: the idle lab raises no alert for ${String(QUIET_MINUTES)} minutes (from Prometheus' start to the first drill)`, { timeout: (QUIET_MINUTES + 2) * MINUTES }, async (t) => {
    const start = await prometheusStart(inventory);
    const missing = Math.max(0, start + QUIET_MINUTES * 60 - Date.now() / 1000);
    if (missing > 0) await sleep(missing * 1000);
    const quiet = await alertsSince(inventory, start);
    const minutes = (quiet.seconds / 60).toFixed(1);
    assert.ok(quiet.seconds >= QUIET_MINUTES * 60, `the window covers ${minutes} minutes`);
    assert.deepEqual(quiet.alerts.filter((a) => a.endsWith(' firing')), [], `alerts fired on the idle lab in the ${minutes} minutes since Prometheus started`);
    const pending = quiet.alerts.filter((a) => a.endsWith(' pending'));
    t.diagnostic(`no alert fired in the ${minutes} minutes since Prometheus started (${(missing / 60).toFixed(1)} of them waited for idle)${pending.length > 0 ? `; pending for a while: ${pending.join(', ')}` : ', none pending'}`);
  });

  it('monitoring: every host reports when each certificate it holds expires, as the controller issued it; one under 21 days reaches the on-call', { timeout: 5 * MINUTES }, async (t) => {
    const pki = labPki();
    const notAfter = (file: string): number => new Date(new X509Certificate(readFileSync(file)).validTo).getTime() / 1000;
    const hostCerts = await instantQuery(inventory, 'oms_certificate_not_after_seconds{file="/etc/oms/pki/host.crt"}');
    assert.deepEqual(hostCerts.map((x) => x.metric['instance']).sort(), [...watched].sort(), 'every host reports its own certificate');
    for (const x of hostCerts) {
      const host = x.metric['instance'] ?? '?';
      assert.equal(x.value, notAfter(join(pki, 'hosts', host, 'server.crt')), `${host}: the notAfter of the certificate the controller issued it`);
    }
    const caCerts = await instantQuery(inventory, 'oms_certificate_not_after_seconds{file="/etc/oms/pki/ca-bundle.pem"}');
    assert.deepEqual([...new Set(caCerts.map((x) => x.metric['instance']))].sort(), [...watched].sort(), 'every host reports its trust bundle');
    assert.ok(caCerts.every((x) => x.value === notAfter(join(pki, 'ca', 'ca.crt'))), 'the bundle holds the CA, with its notAfter');
    assert.deepEqual(await instantQuery(inventory, 'oms_certificate_read_errors'), [], 'no certificate file is unreadable');
    const age = await instantQuery(inventory, 'max(time() - oms_certificate_expiry_last_run_seconds)');
    assert.ok((age[0]?.value ?? Infinity) < 20 * 60, `every host read its certificates within 20 minutes: ${JSON.stringify(age)}`);

    // a certificate with 10 days left, put where the kit keeps certificates on one host: the warning reaches the
    // on-call at the next reading, and its resolution once the file is gone
    const host = groupHosts(inventory, 'app_servers')[0]?.name ?? 'app1';
    const file = '/etc/oms/pki/e2e-short-lived.crt';
    const before = await sinkCount(inventory);
    const read = 'systemctl start oms-cert-expiry.service';
    await sh(host, `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -out ${file} -days 10 -subj /CN=e2e-short-lived 2>/dev/null && ${read}`);
    const placed = Date.now();
    try {
      const waitFor = (status: 'firing' | 'resolved'): Promise<number> => alertMailAt(before, 'CertificateExpiringSoon', status);
      const fired = await waitFor('firing');
      await sh(host, `rm -f ${file} && ${read}`);
      const removed = Date.now();
      const resolved = await waitFor('resolved');
      t.diagnostic(`${String(hostCerts.length)} hosts report their certificate, ${String(caCerts.length)} CA certificates in their bundles, all as issued; ` +
        `a 10-day certificate on ${host}: CertificateExpiringSoon mailed ${((fired - placed) / 1000).toFixed(1)} s after it was read, resolved ${((resolved - removed) / 1000).toFixed(1)} s after it was removed`);
    } finally {
      await sh(host, `rm -f ${file} && ${read}`);
    }
  });

  // 10 minutes of the users' load (k6's shoppers at the VIP, the default mix) with no fault: no alert may fire, the SLO
  // burn alerts included. Full suite only: ten minutes of npm test's budget; `npm run test:lab:all` runs it. It is a
  // todo (run and reported, not failing the suite) while the lab misses the order SLO under this load: on 2026-12-07
  // OrderSLOFastBurn and OrderSLOSlowBurn fired (2.2 % of orders over 200 ms in 5 minutes, budget 0.1 %); making
  // the order path cheap enough is issue 31's
  const LOAD_MINUTES = 10;
  it(`monitoring: ${String(LOAD_MINUTES)} minutes of the users' plain load raise no alert`, {
    skip: FULL_SUITE_ONLY, todo: 'the lab misses the order SLO under the default load (issue 31)', timeout: (LOAD_MINUTES + 5) * MINUTES,
  }, async (t) => {
    const from = Date.now() / 1000;
    const run = `e2e-quiet-load-${timeStamp()}`;
    const config = loadConfig(inventory, { run, seconds: LOAD_MINUTES * 60, users: DEFAULT_USERS, thresholds: false, ackLog: false, outDir: join(repoRoot, 'reports', 'load', run) });
    const { code, summary } = await runK6(inventory, config, () => undefined);
    assert.equal(code, 0, `k6 exited with ${String(code)} (reports/load/${run})`);
    assert.ok(summary, 'k6 wrote its summary');
    // the evaluations that may still count the load's last minute: one rule interval and the longest `for` of the SLO
    // rules are not waited for; what fired during the load is what counts
    const seen = await alertsSince(inventory, from);
    const fired = seen.alerts.filter((a) => a.endsWith(' firing'));
    const pending = seen.alerts.filter((a) => a.endsWith(' pending'));
    const orders = figure(summary, 'orders_acknowledged', 'count');
    const p99 = figure(summary, 'order_ms', 'p(99)');
    t.diagnostic(`${String(LOAD_MINUTES)} min of load (reports/load/${run}): ${String(orders)} orders acknowledged, order p99 ${p99.toFixed(0)} ms; alerts fired: ${fired.join(', ') || 'none'}; pending for a while: ${pending.join(', ') || 'none'}`);
    assert.deepEqual(fired, [], `alerts fired under the users' plain load (${String(LOAD_MINUTES)} minutes, no fault)`);
  });
}
