// The services on the lab (roles/order_service, roles/notification_service, roles/mail_sink): releases under hardened
// units, and the mission's smoke test: an order placed at the virtual IP comes back as exactly one email per event at
// the provider. Runs inside lab.e2e.ts.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GATEWAY_AGENT, runAgent } from '../../drills/agent.ts';
import { renderedDom } from '../../lib/chromium.ts';
import type { Answer } from '../../drills/gateway-agent.ts';
import { emailsForOrder, type SinkMessage } from '../../drills/mail.ts';
import { DEFAULT_THRESHOLDS, DEFAULT_USERS, PACE } from '../../load/k6.ts';
import { repoRoot } from '../lab.ts';
import { LAB_IDP, labIdpKey } from '../catalog.ts';
import { keySetOf, mintToken } from '@oms/order-service/auth/jwt';
import { ALL_DRILLS, assertOk, bin, inHost, inventory, it, MINUTES, recap, run, runDrillsTest } from './harness.ts';

const apps = inventory.hosts.filter((h) => h.groups.includes('app_servers')).map((h) => h.name);
const sinkHost = inventory.hosts.find((h) => h.groups.includes('mail_sink'))?.name ?? 'client';

async function unit(host: string, service: string): Promise<Record<string, string>> {
  const r = await inHost(host, 'systemctl', 'show', service, '--property', 'ActiveState,User,ProtectSystem,ProtectHome,PrivateTmp,PrivateDevices,NoNewPrivileges,CapabilityBoundingSet,RestrictAddressFamilies,MemoryMax');
  assertOk(r, `systemctl show ${service} on ${host}`);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

export function servicesTests(): void {
  it('services: releases under hardened units, configuration readable by each service alone', async (t) => {
    const exposure: string[] = [];
    for (const [host, service] of [...apps.flatMap((h) => [[h, 'order-service'], [h, 'notification-service']]), [sinkHost, 'mail-sink']] as [string, string][]) {
      const u = await unit(host, service);
      assert.equal(u['ActiveState'], 'active', `${service} on ${host}`);
      assert.equal(u['User'], service, `${service} runs as its own user`);
      assert.equal(u['ProtectSystem'], 'strict');
      assert.equal(u['ProtectHome'], 'yes');
      assert.equal(u['PrivateTmp'], 'yes');
      assert.equal(u['NoNewPrivileges'], 'yes');
      assert.equal(u['RestrictAddressFamilies'], 'AF_INET AF_INET6 AF_UNIX');
      assert.equal(u['CapabilityBoundingSet'], service === 'mail-sink' ? 'cap_net_bind_service' : '', `${service}: capabilities`);

      const layout = await inHost(host, 'sh', '-c', [
        `readlink /opt/oms/${service}/current`,
        `stat -c '%U:%G %a' /etc/oms/${service}/config.json /opt/oms/${service}/current/src/main.js`,
        `runuser -u ${service} -- sh -c 'test -w /opt/oms/${service}/current/src/main.js && echo writable || echo read-only'`,
        `runuser -u nobody -- sh -c 'cat /etc/oms/${service}/config.json >/dev/null 2>&1 && echo readable || echo unreadable'`,
        `systemd-analyze security ${service} --no-pager 2>/dev/null | tail -n 1`,
      ].join('; '));
      assertOk(layout, `${service} on ${host}: its files`);
      const [link = '', config = '', code = '', own = '', other = '', score = ''] = layout.stdout.trim().split('\n');
      assert.match(link, new RegExp(`^releases/${service}-0\\.1\\.0-[0-9a-f]{12}$`), 'current points at a versioned release');
      assert.equal(config, `root:${service} 640`, 'the configuration (with its secrets) is readable by the service, writable by root');
      assert.equal(code, 'root:root 644');
      assert.equal(own, 'read-only', 'a service cannot change its own code');
      assert.equal(other, 'unreadable', 'another user cannot read the configuration');
      exposure.push(`${service}@${host}: ${score.replace(/^.*: /, '')}`);
    }
    t.diagnostic(`systemd-analyze security exposure: ${exposure.join('; ')}`);
  });

  it('services: retention settings from the inventory reach the services; an inbox that would not outlive the topic is refused before any host is touched', async () => {
    const config = JSON.parse((await inHost(apps[0] ?? 'app1', 'cat', '/etc/oms/notification-service/config.json')).stdout) as { retention?: { inboxDays?: number } };
    assert.equal(config.retention?.inboxDays, 30);
    const orders = JSON.parse((await inHost(apps[0] ?? 'app1', 'cat', '/etc/oms/order-service/config.json')).stdout) as { retention?: { outboxDays?: number; idempotencyKeyHours?: number } };
    assert.deepEqual(orders.retention, { outboxDays: 7, idempotencyKeyHours: 24 });
    const refused = await run(bin('ansible-playbook'), ['ansible/deploy-services.yml', '--limit', 'app_servers', '-e', 'notification_service_inbox_retention_days=5']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /notification_service_inbox_retention_days \(5 days\) must be longer than the retention of oms\.order-events \(7/);
    for (const [host, counts] of recap(refused.stdout)) assert.equal(counts.changed, 0, `${host} was changed`);
  });

  // The identity provider rotates its signing key: it publishes the new key beside the old, signs with the new one,
  // then withdraws the old. deploy-services.yml copies the key set; the order service reads it again (no restart)
  it('services: a rotated signing key of the identity provider is taken once published and the old one refused once withdrawn, with no restart', { timeout: 10 * MINUTES }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-e2e-jwks-'));
    const next = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const labPublic = createPublicKey(createPrivateKey(readFileSync(labIdpKey(), 'utf8'))).export({ type: 'spki', format: 'pem' }).toString();
    const token = (privateKeyPem: string): string => mintToken({ privateKeyPem, issuer: LAB_IDP.issuer, audience: LAB_IDP.audience, subject: 'e2e-rotation', role: 'customer', email: 'e2e-rotation@shop.example', ttlSeconds: 600 });
    const [oldToken, newToken] = [token(readFileSync(labIdpKey(), 'utf8')), token(next.privateKey)];
    const mainPids = async (): Promise<string[]> => Promise.all(apps.map(async (h) => (await inHost(h, 'systemctl', 'show', 'order-service', '--property', 'MainPID', '--value')).stdout.trim()));
    // the key set as a file on the controller, deployed the way an operator does after the provider's rotation
    const publish = async (name: string, keys: string[] | null): Promise<string> => {
      const file = join(dir, `${name}.jwks.json`);
      if (keys !== null) writeFileSync(file, keySetOf(keys));
      // null: the inventory's own key set (the lab's provider)
      const extra = keys === null ? [] : ['-e', JSON.stringify({ order_service_lab_idp_key: '', order_service_jwt_key_set_file: file })];
      const deployed = await run(bin('ansible-playbook'), ['ansible/deploy-services.yml', '--limit', 'app_servers', ...extra]);
      assertOk(deployed, `deploy-services.yml with the key set ${name}`);
      // the service looks at the file at most once a second
      await sleep(1500);
      return [...recap(deployed.stdout).entries()].map(([host, c]) => `${host} changed=${String(c.changed)}`).join(', ');
    };
    // a request through the VIP reaches either app host: several of each
    const statuses = async (bearer: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 6; i++) out.push((await runAgent<Answer>(GATEWAY_AGENT, inventory, 'client', ['probe', '--path', '/api/v1/orders', '--header', `authorization: Bearer ${bearer}`])).status);
      return out;
    };
    const before = await mainPids();
    try {
      assert.deepEqual(await statuses(newToken), [401, 401, 401, 401, 401, 401], 'a key not yet published');
      const both = await publish('both', [labPublic, next.publicKey]);
      assert.deepEqual(await statuses(newToken), [200, 200, 200, 200, 200, 200], 'the new key, published');
      assert.deepEqual(await statuses(oldToken), [200, 200, 200, 200, 200, 200], 'the old key, still published');
      const withdrawn = await publish('new-only', [next.publicKey]);
      assert.deepEqual(await statuses(oldToken), [401, 401, 401, 401, 401, 401], 'the old key, withdrawn');
      assert.deepEqual(await statuses(newToken), [200, 200, 200, 200, 200, 200], 'the new key');
      assert.deepEqual(await mainPids(), before, 'no order service restarted');
      t.diagnostic(`both keys published (${both}), then the old one withdrawn (${withdrawn}); order-service PIDs unchanged: ${before.join(', ')}`);
    } finally {
      await publish('the lab\'s own', null);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(await statuses(oldToken), [200, 200, 200, 200, 200, 200], 'the lab\'s own key set is back');
  });

  it('services: an order placed at the VIP becomes exactly one email per event at the provider', async (t) => {
    const placed = Date.now();
    const answer = await runAgent<Answer>(GATEWAY_AGENT, inventory, 'client', ['order', '--subject', 'e2e-shopper']);
    assert.equal(answer.status, 201, answer.body);
    const order = JSON.parse(answer.body) as { id: string; status: string; customerEmail: string };
    assert.equal(order.status, 'CONFIRMED', 'the simulated provider approved the payment');
    assert.equal(order.customerEmail, 'e2e-shopper@shop.example');

    // order.created and order.confirmed: one email each, to the customer
    let emails: SinkMessage[] = [];
    for (let i = 0; i < 120 && emails.length < 2; i++) {
      await sleep(500);
      emails = await emailsForOrder(inventory, order.id);
    }
    const lastAt = Math.max(...emails.map((e) => Date.parse(e.at)));
    assert.deepEqual(emails.map((e) => e.eventType).sort(), ['order.confirmed', 'order.created'], JSON.stringify(emails));
    assert.ok(emails.every((e) => e.to.join() === 'e2e-shopper@shop.example'), JSON.stringify(emails.map((e) => e.to)));
    await sleep(5000);
    assert.equal((await emailsForOrder(inventory, order.id)).length, 2, 'no email came twice');
    t.diagnostic(`order ${order.id} (request ${String(answer.headers['x-request-id'])}): 201 CONFIRMED; its 2 emails at the provider ${String(lastAt - placed)} ms after it was placed, none twice`);
  });

  // The run's thresholds are k6's (loadtest/oms.js): errors and latency. Errors fail this test. Latency is measured
  // and reported, not asserted: the lab's 16 hosts and k6 share 2 CPUs, and the same stack measured p95 90 ms on a quiet
  // machine and 300 ms on a busy one (CPU pressure in the report); latency targets are `bench -- stack`'s figures.
  it('load: a short k6 run of the shoppers at the VIP: no failed request or order, every scenario ran, latency thresholds reported', { timeout: 5 * MINUTES }, async (t) => {
    const r = await run(process.execPath, ['--import', 'tsx', 'zx-scripts/load/cli.ts', '--seconds', '30'], 4 * MINUTES);
    const dir = /reports: (\S+)\/report\.txt/.exec(r.stdout)?.[1];
    assert.ok(dir !== undefined, `no report: ${r.stdout}\n${r.stderr}`);
    const report = readFileSync(join(dir, 'report.txt'), 'utf8');
    t.diagnostic(`npm run load -- --seconds 30 (${dir.slice(repoRoot.length + 1)}):\n${report}`);
    assert.ok(r.code === 0 || r.code === 1, `npm run load: exit ${String(r.code)} (0: thresholds held, 1: one crossed)\n${r.stderr}`);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { metrics: Record<string, { values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> } | undefined> };
    const verdicts = (metric: string): Record<string, { ok: boolean }> => summary.metrics[metric]?.thresholds ?? {};
    for (const metric of ['http_req_failed', 'order_failed']) {
      assert.deepEqual(Object.keys(verdicts(metric)), [`rate<${String(DEFAULT_THRESHOLDS.failedRate)}`], `${metric}: its threshold`);
      assert.ok(Object.values(verdicts(metric)).every((v) => v.ok), `${metric} crossed its threshold:\n${report}`);
    }
    for (const metric of ['http_req_duration', 'order_ms']) assert.deepEqual(Object.keys(verdicts(metric)).sort(), [`p(95)<${String(DEFAULT_THRESHOLDS.p95Ms)}`, `p(99)<${String(DEFAULT_THRESHOLDS.p99Ms)}`], `${metric}: its thresholds`);
    assert.equal(r.code === 0, Object.values(summary.metrics).every((m) => Object.values(m?.thresholds ?? {}).every((v) => v.ok)), 'exit 0 exactly when every threshold held');
    // each ordering user orders once per pace after arriving within the first one: at least (30 s - pace) / pace each
    const least = DEFAULT_USERS.order * Math.floor((30 - PACE.order) / PACE.order);
    const acknowledged = summary.metrics['orders_acknowledged']?.values['count'] ?? 0;
    assert.ok(acknowledged >= least, `${String(acknowledged)} orders acknowledged in 30 s; ${String(DEFAULT_USERS.order)} users pacing ${String(PACE.order)} s place at least ${String(least)}`);
    assert.ok((summary.metrics['read_ms']?.values['count'] ?? 0) > 0 && (summary.metrics['browse_ms']?.values['count'] ?? 0) > 0, 'every scenario ran');
    assert.match(report, /^machine: CPU pressure \d+ %/m, 'the report says how busy the machine was');
    // k6's HTML report opens offline in a browser, with its chapters and the run's own metrics
    const dom = renderedDom(join(dir, 'report.html'));
    const headings = [...dom.matchAll(/<h2[^>]*>([^<]+)/g)].map((m) => m[1]?.trim());
    assert.deepEqual(['Overview', 'Timings', 'Summary'].filter((h) => !headings.includes(h)), [], `k6's report.html: its chapters (found ${headings.join(', ')})`);
    for (const metric of ['order_ms', 'orders_acknowledged']) assert.match(dom, new RegExp(`<td[^>]*>${metric}</td>`), `k6's report.html shows the shoppers' ${metric} in its summary table`);
  });

  it('services: drills under the order load (app host power cut, provider refusing mail for a minute, notification service frozen mid-send, rolling deploy): nothing lost, one email per event', { timeout: 30 * MINUTES }, async (t) => {
    const reports = await runDrillsTest(t, ['app-host-kill', 'mail-provider-outage', 'notification-pause', 'app-rolling-deploy'], 30 * MINUTES,
      ['mail-provider-outage', 'notification-pause', 'app-rolling-deploy']);
    for (const r of reports) {
      assert.equal(r.audit['missing'], 0, `${r.drill}: emails missing`);
      assert.equal(r.audit['duplicates'], 0, `${r.drill}: emails sent twice`);
    }
    // a rolling deploy drains each app host at the gateways before restarting it: no order may fail
    const deploy = reports.find((r) => r.drill === 'app-rolling-deploy');
    assert.ok(deploy ?? !ALL_DRILLS, 'the rolling deploy ran');
    if (deploy) assert.equal(deploy.writes.failed + deploy.writes.unknown, 0, `app-rolling-deploy: orders failed or unanswered during the deploy (${JSON.stringify(deploy.errors)})`);
  });
}
