// The central journal on the lab: every watched host's journal reaches the log host (roles/journal_upload ->
// roles/journal_remote on mon1) over mutual TLS 1.3; the request id of one order placed at the VIP is found there in
// the gateway's access log, the order service's log and the notification service's email log; PostgreSQL's schema and
// role changes are there as pgaudit logged them on the leader; the receiver refuses a client without a certificate; and with the log host away
// nothing stops: the upload catches up when it is back. Runs inside lab.e2e.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GATEWAY_AGENT, runAgent } from '../../drills/agent.ts';
import type { Answer } from '../../drills/gateway-agent.ts';
import { leader, running } from '../../drills/postgres.ts';
import { clientAddresses } from '../../load/addresses.ts';
import { assertOk, inHost, inventory, it } from './harness.ts';
import { secondsSince } from '../../lib/stats.ts';

const LOG_HOST = inventory.hosts.find((h) => h.groups.includes('monitoring'))?.name ?? 'mon1';
const DIR = '/var/log/journal/remote';
const unwatched = ['clients'];
const watched = (): string[] => inventory.hosts.filter((h) => !h.groups.some((g) => unwatched.includes(g)) && running(h.name)).map((h) => h.name);
const apps = inventory.hosts.filter((h) => h.groups.includes('app_servers')).map((h) => h.name);
const gateways = inventory.hosts.filter((h) => h.groups.includes('gateways')).map((h) => h.name);

interface Entry { _HOSTNAME?: string; MESSAGE?: string; SYSLOG_IDENTIFIER?: string; _SYSTEMD_UNIT?: string }

/** The entries on the log host whose message holds the text. */
async function onLogHost(text: string): Promise<Entry[]> {
  const r = await inHost(LOG_HOST, 'journalctl', `--directory=${DIR}`, '--no-pager', '-o', 'json', '--output-fields=_HOSTNAME,MESSAGE,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT', '--grep', text);
  // journalctl exits 1 when nothing matches
  if (r.code !== 0 && r.stdout.trim() === '') return [];
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Entry);
}

/** Polls the log host until found(entries) holds; returns the entries and the seconds it took. */
async function awaitOnLogHost(text: string, found: (entries: Entry[]) => boolean, timeoutMs: number): Promise<{ entries: Entry[]; seconds: number | null }> {
  const started = Date.now();
  for (;;) {
    const entries = await onLogHost(text);
    if (found(entries)) return { entries, seconds: secondsSince(started, Date.now()) };
    if (Date.now() - started > timeoutMs) return { entries, seconds: null };
    await sleep(2000);
  }
}

/** A GET of the catalog at the VIP from the client host, with the given request id. */
async function request(requestId: string): Promise<Answer & { error?: string }> {
  const from = clientAddresses(inventory).users[0] ?? '';
  return runAgent(GATEWAY_AGENT, inventory, 'client', ['probe', '--path', '/api/v1/products', '--from', from, '--header', `X-Request-Id: ${requestId}`]);
}

/** One paid order at the VIP from the client host, with the given request id. */
async function order(requestId: string): Promise<Answer> {
  return runAgent<Answer>(GATEWAY_AGENT, inventory, 'client', ['order', '--subject', 'e2e-journal', '--header', `X-Request-Id: ${requestId}`]);
}

const hostsOf = (entries: Entry[]): Set<string> => new Set(entries.map((e) => e._HOSTNAME ?? '?'));

export function journalTests(): void {
  it('journal: every watched host ships its journal to the log host; one order\'s request id is there from the gateway, the order service and the notification service', async (t) => {
    const mark = `oms-e2e-journal-${randomUUID().slice(0, 8)}`;
    const hosts = watched();
    await Promise.all(hosts.map(async (h) => { assertOk(await inHost(h, 'logger', '-t', 'oms-e2e', `${mark} from ${h}`), `logger on ${h}`); }));
    const marks = await awaitOnLogHost(mark, (entries) => hosts.every((h) => hostsOf(entries).has(h)), 90_000);
    assert.deepEqual(hosts.filter((h) => !hostsOf(marks.entries).has(h)), [], `hosts whose journal did not reach ${LOG_HOST} within 90 s`);

    const requestId = `e2e-journal-${randomUUID().slice(0, 8)}`;
    const answer = await order(requestId);
    assert.equal(answer.status, 201, `an order at the VIP: ${String(answer.status)} ${answer.body}`);
    assert.equal(answer.headers['x-request-id'], requestId, 'the gateway kept the request id');
    // the gateway's access line, the order service's request line, and the emails of the order's events (created,
    // confirmed) that the notification service logged with the request that made them
    const seen = await awaitOnLogHost(requestId, (entries) =>
      entries.some((e) => gateways.includes(e._HOSTNAME ?? '') && e.SYSLOG_IDENTIFIER === 'nginx_access') &&
      entries.some((e) => apps.includes(e._HOSTNAME ?? '') && e._SYSTEMD_UNIT === 'order-service.service') &&
      entries.filter((e) => apps.includes(e._HOSTNAME ?? '') && e._SYSTEMD_UNIT === 'notification-service.service' && (e.MESSAGE ?? '').includes('email sent')).length >= 2, 60_000);
    const where = seen.entries.map((e) => `${e._HOSTNAME ?? '?'}/${e.SYSLOG_IDENTIFIER ?? e._SYSTEMD_UNIT ?? '?'}`);
    assert.notEqual(seen.seconds, null, `request ${requestId} on ${LOG_HOST}: found only ${where.join(', ') || 'nothing'}`);
    t.diagnostic(`${String(hosts.length)} hosts' marks on ${LOG_HOST} within ${String(marks.seconds)} s; request ${requestId} from ${[...new Set(where)].join(', ')} within ${String(seen.seconds)} s`);
  });

  it('journal: PostgreSQL\'s schema and role changes are audited (pgaudit) and reach the log host', async (t) => {
    const db = await leader(inventory);
    const id = `oms_e2e_audit_${randomUUID().slice(0, 8)}`;
    const statements = [`CREATE TABLE ${id} (x int)`, `DROP TABLE ${id}`, `CREATE ROLE ${id} NOLOGIN`,
      `GRANT CONNECT ON DATABASE orders TO ${id}`, `REVOKE CONNECT ON DATABASE orders FROM ${id}`, `DROP ROLE ${id}`];
    // one statement at a time, as an operator types them: each is one audit line
    for (const sql of statements) assertOk(await inHost(db, 'runuser', '-u', 'postgres', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', 'orders', '-c', sql), sql);
    const seen = await awaitOnLogHost(id, (entries) => entries.filter((e) => (e.MESSAGE ?? '').includes('AUDIT: SESSION')).length >= statements.length, 60_000);
    const audit = seen.entries.filter((e) => e._HOSTNAME === db && e._SYSTEMD_UNIT === 'patroni.service' && (e.MESSAGE ?? '').includes('AUDIT: SESSION'));
    // "AUDIT: SESSION,<statement>,<substatement>,<class>,<command>,..."
    const logged = audit.map((e) => /AUDIT: SESSION,\d+,\d+,(\w+),([A-Z ]+),/.exec(e.MESSAGE ?? '')).map((m) => `${m?.[1] ?? '?'} ${m?.[2] ?? '?'}`);
    assert.deepEqual(logged, ['DDL CREATE TABLE', 'DDL DROP TABLE', 'ROLE CREATE ROLE', 'ROLE GRANT', 'ROLE REVOKE', 'ROLE DROP ROLE'],
      `the audit lines of ${id} from ${db} on ${LOG_HOST}`);
    const dml = await onLogHost('AUDIT: SESSION,[0-9]+,[0-9]+,(READ|WRITE)');
    assert.deepEqual(dml.map((e) => e.MESSAGE).slice(0, 3), [], 'reads and writes are not audited (pgaudit.log is ddl, role): the orders would flood it');
    t.diagnostic(`${String(logged.length)} audit lines from ${db} (${logged.join(', ')}) on ${LOG_HOST} within ${String(seen.seconds)} s`);
  });

  it('journal: the receiver asks for a certificate of the kit\'s CA; with the log host away nothing stops, and the upload catches up', async (t) => {
    const app = apps[0] ?? 'app1';
    const url = `https://${LOG_HOST}.${inventory.domain}:19532/upload`;
    const bare = await inHost(app, 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', '/etc/oms/pki/ca-bundle.pem', '-X', 'POST', url);
    assert.notEqual(bare.code, 0, `a client without a certificate got an answer: ${bare.stdout}`);

    // the front is the log host's only door: with it stopped, every upload fails
    assertOk(await inHost(LOG_HOST, 'systemctl', 'stop', 'stunnel@journal-remote'), 'stopping the receiver\'s front');
    const mark = `oms-e2e-away-${randomUUID().slice(0, 8)}`;
    let healedAt = 0;
    try {
      const requestId = `e2e-away-${randomUUID().slice(0, 8)}`;
      const answer = await request(requestId);
      assert.equal(answer.status, 200, `the catalog at the VIP while the log host is away: ${String(answer.status)} ${answer.error ?? ''}`);
      assertOk(await inHost(app, 'logger', '-t', 'oms-e2e', `${mark} ${requestId}`), `logger on ${app}`);
      // longer than the upload's retry (10 s): it has failed and is waiting to try again
      await sleep(15_000);
      assert.deepEqual(await onLogHost(mark), [], 'an entry reached the log host while its front was stopped');
      const upload = await inHost(app, 'systemctl', 'is-enabled', 'systemd-journal-upload');
      assert.equal(upload.stdout.trim(), 'enabled');
    } finally {
      assertOk(await inHost(LOG_HOST, 'systemctl', 'start', 'stunnel@journal-remote'), 'starting the receiver\'s front again');
      healedAt = Date.now();
    }
    const back = await awaitOnLogHost(mark, (entries) => entries.some((e) => e._HOSTNAME === app), 60_000);
    assert.notEqual(back.seconds, null, `what ${app} logged while the log host was away did not reach it within 60 s of its return`);
    t.diagnostic(`with the log host's front stopped for 15 s the VIP answered; ${app}'s entries of that time reached ${LOG_HOST} ${String(secondsSince(healedAt, Date.now()))} s after it was back (polled every 2 s)`);
  });
}
