// The data zone on the lab: etcd, PostgreSQL under Patroni and HAProxy refuse clients without a certificate of the
// kit's CA, a service's role is confined to its own data, Row Level Security hides other customers' rows, and the
// failover drills lose no acknowledged write. Runs inside lab.e2e.ts, on its lab.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { agent } from '../../drills/pg.ts';
import { join } from 'node:path';
import { stateDir } from '../state.ts';
import { assertOk, FULL_SUITE_ONLY, inventory, it, MINUTES, run, runDrillsTest } from './harness.ts';

interface Answer {
  rows?: Record<string, unknown>[];
  error?: string;
  code?: string | null;
}

const sql = (args: string[], statement: string): Promise<Answer> => agent<Answer>(inventory, 'app1', ['query', ...args, statement]);

/** An HTTPS request from inside a host's network namespace (node's https; the hosts have no curl). */
async function httpsFrom(host: string, url: string, options: { method?: string; cert?: string; body?: string; basicAuth?: string } = {}): Promise<{ status?: number; error?: string }> {
  const pki = join(stateDir, 'pki', 'lab');
  const script = `
    const https = require('node:https'); const fs = require('node:fs');
    const o = { method: ${JSON.stringify(options.method ?? 'GET')}, ca: fs.readFileSync('${pki}/trust-bundle.pem'), timeout: 3000 };
    ${options.cert ? `o.cert = fs.readFileSync('${options.cert}.crt'); o.key = fs.readFileSync('${options.cert}.key');` : ''}
    ${options.basicAuth ? `o.auth = ${JSON.stringify(options.basicAuth)};` : ''}
    const req = https.request(${JSON.stringify(url)}, o, (res) => { res.resume(); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode }))); });
    req.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(${JSON.stringify(options.body ?? '')});`;
  const result = await run('ip', ['netns', 'exec', host, process.execPath, '-e', script]);
  return JSON.parse(result.stdout) as { status?: number; error?: string };
}

export function dataZoneTests(): void {
  it('data zone: etcd, PostgreSQL and the Patroni REST API refuse clients without a valid certificate', async () => {
    const db1 = inventory.hosts.find((h) => h.name === 'db1');
    const app1 = inventory.hosts.find((h) => h.name === 'app1');
    assert.ok(db1 && app1);
    const client = (identity: string): string => join(stateDir, 'pki', 'lab', 'clients', identity, 'client');

    // etcd: TLS, and a client certificate required
    assert.equal((await httpsFrom('db1', `https://${db1.address}:2379/version`, { cert: client('patroni') })).status, 200);
    const etcdBare = await httpsFrom('db1', `https://${db1.address}:2379/version`);
    assert.equal(etcdBare.status, undefined, `etcd answered without a client certificate: ${JSON.stringify(etcdBare)}`);

    // Patroni REST API: mutual TLS for every request, health checks included
    assert.equal((await httpsFrom('app1', `https://${db1.address}:8008/health`, { cert: client('order-service') })).status, 200);
    const health = await httpsFrom('app1', `https://${db1.address}:8008/health`);
    assert.equal(health.status, undefined, `Patroni answered without a client certificate: ${JSON.stringify(health)}`);
    const patch = await httpsFrom('app1', `https://${db1.address}:8008/config`, { method: 'PATCH', body: '{"ttl": 99}' });
    assert.equal(patch.status, undefined, `PATCH /config without a certificate: ${JSON.stringify(patch)}`);
    const config = await agent<{ members?: unknown[] }>(inventory, 'app1', ['cluster']);
    assert.ok(config.members, 'the cluster still answers');

    // unsafe calls: only from the cluster's members, and with the password. The order service's certificate (which
    // it needs for PostgreSQL) could turn synchronous replication off before; now app1 is refused (403) with or
    // without the password, and a member without it gets 401
    const admin = `patroni-admin:${readFileSync(join(stateDir, 'secrets', 'patroni-restapi'), 'utf8').trim()}`;
    const fromApp = await httpsFrom('app1', `https://${db1.address}:8008/config`, { method: 'PATCH', cert: client('order-service'), body: '{"synchronous_mode": false}' });
    assert.equal(fromApp.status, 403, `PATCH /config from app1 with the order service's certificate: ${JSON.stringify(fromApp)}`);
    const fromAppWithPassword = await httpsFrom('app1', `https://${db1.address}:8008/config`, { method: 'PATCH', cert: client('order-service'), body: '{"synchronous_mode": false}', basicAuth: admin });
    assert.equal(fromAppWithPassword.status, 403, `PATCH /config from app1 with the password: ${JSON.stringify(fromAppWithPassword)}`);
    const restart = await httpsFrom('app1', `https://${db1.address}:8008/restart`, { method: 'POST', cert: client('order-service'), body: '{}' });
    assert.equal(restart.status, 403, `POST /restart from app1: ${JSON.stringify(restart)}`);
    const fromMemberNoPassword = await httpsFrom('db2', `https://${db1.address}:8008/config`, { method: 'PATCH', cert: client('patroni'), body: '{}' });
    assert.equal(fromMemberNoPassword.status, 401, `PATCH /config from a member without the password: ${JSON.stringify(fromMemberNoPassword)}`);
    const fromMember = await httpsFrom('db2', `https://${db1.address}:8008/config`, { method: 'PATCH', cert: client('patroni'), body: '{"ttl": 20}', basicAuth: admin }); // roles/patroni's ttl: no change
    assert.equal(fromMember.status, 200, `PATCH /config (ttl as it is) from a member with the password: ${JSON.stringify(fromMember)}`);
    const settings = await sql(['--identity', 'order-service', '--database', 'orders'], "SELECT current_setting('synchronous_standby_names') <> '' AS sync");
    assert.equal(settings.rows?.[0]?.['sync'], true, `synchronous replication is still on: ${JSON.stringify(settings)}`);

    // PostgreSQL: no certificate, a certificate of another service, or another service's database: refused
    const bare = await sql(['--no-cert', '--database', 'orders'], 'SELECT 1');
    assert.equal(bare.code, '28000', `no certificate: ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /certificate/);
    const wrongCert = await sql(['--identity', 'notification-service', '--database', 'orders'], 'SELECT 1');
    assert.equal(wrongCert.code, '28000', `notification-service to orders: ${JSON.stringify(wrongCert)}`);
    const otherDb = await sql(['--identity', 'order-service', '--database', 'notifications'], 'SELECT 1');
    assert.equal(otherDb.code, '28000', `order-service to notifications: ${JSON.stringify(otherDb)}`);
    const own = await sql(['--identity', 'order-service', '--database', 'orders'], 'SELECT current_user AS who, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    assert.deepEqual(own.rows, [{ who: 'order_service', ssl: true }]);
  });

  it('data zone: a service role cannot change the schema or bypass RLS; RLS hides other customers\' rows', async () => {
    const tag = Date.now().toString(36);
    const [alice, bob] = [`alice-${tag}`, `bob-${tag}`];
    const staff = ['--scope', 'staff'];
    const seeded = await sql(staff, `
      INSERT INTO oms.products (id, name, category, price_cents, stock) VALUES ('TEST-RLS', 'RLS test', 'test', 100, 1000)
        ON CONFLICT (id) DO NOTHING;
      INSERT INTO oms.orders (id, customer_id, status, total_cents, currency) VALUES
        (gen_random_uuid(), '${alice}', 'PENDING_PAYMENT', 100, 'EUR'), (gen_random_uuid(), '${bob}', 'PENDING_PAYMENT', 100, 'EUR')`);
    assert.equal(seeded.error, undefined, JSON.stringify(seeded));

    const asAlice = await sql(['--scope', 'customer', '--customer', alice], `SELECT customer_id FROM oms.orders WHERE customer_id IN ('${alice}', '${bob}')`);
    assert.deepEqual(asAlice.rows, [{ customer_id: alice }], 'alice sees her order only');
    const asNobody = await sql([], `SELECT count(*)::int AS n FROM oms.orders WHERE customer_id IN ('${alice}', '${bob}')`);
    assert.deepEqual(asNobody.rows, [{ n: 0 }], 'a transaction that says nobody sees nothing');
    const asStaff = await sql(staff, `SELECT count(*)::int AS n FROM oms.orders WHERE customer_id IN ('${alice}', '${bob}')`);
    assert.deepEqual(asStaff.rows, [{ n: 2 }]);
    const forBob = await sql(['--scope', 'customer', '--customer', alice],
      `INSERT INTO oms.orders (id, customer_id, status, total_cents, currency) VALUES (gen_random_uuid(), '${bob}', 'PENDING_PAYMENT', 1, 'EUR')`);
    assert.equal(forBob.code, '42501', `alice writing an order for bob: ${JSON.stringify(forBob)}`);
    const outbox = await sql(['--scope', 'customer', '--customer', alice], 'SELECT count(*) FROM oms.outbox');
    assert.deepEqual(outbox.rows, [{ count: '0' }], 'only the system scope reads the outbox');

    for (const statement of [
      'ALTER TABLE oms.orders DISABLE ROW LEVEL SECURITY',
      'CREATE TABLE oms.stolen (i int)',
      'DELETE FROM oms.orders',
      'TRUNCATE oms.orders',
      'DROP TABLE oms.orders',
      'SELECT * FROM oms_migrations.applied',
      'CREATE ROLE other',
    ]) {
      const answer = await sql(staff, statement);
      assert.equal(answer.code, '42501', `order_service ran: ${statement} -> ${JSON.stringify(answer)}`);
    }
    for (const statement of ['CREATE DATABASE other', 'ALTER SYSTEM SET fsync = off']) {
      const answer = await sql(['--autocommit'], statement);
      assert.equal(answer.code, '42501', `order_service ran: ${statement} -> ${JSON.stringify(answer)}`);
    }
  });

  it('data zone: PostgreSQL drills lose no acknowledged write, and the cluster is whole after each', { timeout: 30 * MINUTES }, async (t) => {
    const drills = ['pg-switchover', 'pg-primary-host-kill', 'pg-postgres-kill', 'pg-primary-partition', 'pg-sync-standby-then-primary', 'pg-primary-etcd-cutoff', 'etcd-member-kill'];
    await runDrillsTest(t, drills, 30 * MINUTES, ['pg-postgres-kill', 'pg-primary-partition', 'pg-sync-standby-then-primary', 'pg-primary-etcd-cutoff', 'etcd-member-kill']);
  });

  // a smoke run of the benchmark (its figures come from npm run bench -- db); in the full lab suite for npm test's budget
  it('bench -- db measures the order-creation transaction through HAProxy at rising concurrency', { timeout: 5 * MINUTES, skip: FULL_SUITE_ONLY }, async (t) => {
    const result = await run(process.execPath, ['--import', 'tsx', 'zx-scripts/bench/cli.ts', 'db', '--seconds', '1', '--json'], 5 * MINUTES);
    assertOk(result, 'npm run bench -- db');
    const report = JSON.parse(result.stdout) as { steps: { clients: number; tps: number; errors: number; transactions: number; ms: { p95: number } }[]; ceiling: { tps: number; clients: number; ms: { p95: number; p99: number } } };
    assert.deepEqual(report.steps.map((s) => s.clients), [1, 4, 8, 16, 32]);
    for (const step of report.steps) {
      assert.ok(step.transactions > 0 && step.errors === 0, `${step.clients} connections: ${JSON.stringify(step)}`);
    }
    t.diagnostic(`db ceiling (1 s steps, a smoke run: npm run bench -- db measures it): ${report.ceiling.tps} orders/s at ${report.ceiling.clients} connections, p95 ${report.ceiling.ms.p95} ms, p99 ${report.ceiling.ms.p99} ms`);
    const bad = await run(process.execPath, ['--import', 'tsx', 'zx-scripts/bench/cli.ts', 'db', '--seconds', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--seconds takes a whole number/);
  });
}
