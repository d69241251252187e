// The notification service against real PostgreSQL, Kafka and the mail sink on loopback: one email per event through
// duplicates, redeliveries, restarts, poison messages, provider failures and a crash.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { EVENT_TYPES } from '../src/events.ts';
import { SmtpProvider, type MailProvider } from '../src/mail/provider.ts';
import { DLT_TOPIC, orderEvent, RETRY_TOPIC, startNotificationHarness, TOPIC, type NotificationHarness, type TestEvent } from './harness.ts';

let h: NotificationHarness;

const emailsFor = (e: TestEvent): number => h.sink.store.withMessageId(`${e.id}@notifications.oms.example`).length;
const inbox = async (eventId: string): Promise<{ status: string; attempts: number } | undefined> => {
  const c = h.stack.postgres!.admin('notifications');
  await c.connect();
  try {
    const { rows } = await c.query<{ status: string; attempts: number }>('SELECT status, attempts FROM notify.inbox WHERE event_id = $1', [eventId]);
    return rows[0];
  } finally {
    await c.end();
  }
};
const delivered = (events: TestEvent[], timeoutMs?: number): Promise<void> =>
  h.waitFor(`${String(events.length)} emails`, () => events.every((e) => emailsFor(e) >= 1), timeoutMs);

describe('notification service (real PostgreSQL, Kafka and SMTP sink)', { timeout: 10 * 60_000 }, () => {
  before(async () => { h = await startNotificationHarness(); });
  after(async () => { await h.stop(); });

  it('sends one email per event type, with the Message-ID from the event id, and records it as sent', async () => {
    const orderId = crypto.randomUUID();
    const events = EVENT_TYPES.map((t) => orderEvent(t, orderId));
    await h.publish(events);
    await delivered(events);
    for (const e of events) {
      const [mail] = h.sink.store.withMessageId(`${e.id}@notifications.oms.example`);
      assert.equal(mail?.eventType, e.type);
      assert.equal(mail.orderId, orderId);
      assert.deepEqual(mail.to, ['ada@shop.example']);
      assert.match(mail.raw, /STARTTLS|Content-Type: multipart\/alternative/i);
      assert.deepEqual(await inbox(e.id), { status: 'SENT', attempts: 1 });
    }
    assert.equal(h.sink.store.forOrder(orderId).length, EVENT_TYPES.length);
  });

  it('logs the email with the id of the request that placed the order (the relay\'s request-id header)', async () => {
    const e = orderEvent();
    const requestId = `req-${crypto.randomUUID()}`;
    await h.publish([e], { 'request-id': requestId });
    await delivered([e]);
    const sent = h.logs.filter((l) => l['eventId'] === e.id && l['msg'] === 'email sent');
    assert.equal(sent.length, 1, JSON.stringify(sent));
    assert.equal(sent[0]?.['requestId'], requestId);
    const other = orderEvent();
    await h.publish([other]);
    await delivered([other]);
    assert.ok(h.logs.some((l) => l['eventId'] === other.id && l['msg'] === 'email sent' && !('requestId' in l)), 'an event without the header logs no request id');
  });

  it('sends nothing again for an event published three times, or redelivered from the start of the topic', async () => {
    const e = orderEvent();
    await h.publish([e, e, e]);
    await delivered([e]);
    await h.waitFor('the copies handled', async () => (await h.service.metrics.duplicates.get()).values[0]!.value >= 2);
    // every offset back to the beginning: the whole topic comes again
    await h.stopService();
    await h.admin.resetOffsets({ groupId: 'notification-service', topic: TOPIC, earliest: true });
    const before = h.sink.store.stats();
    await h.startService();
    const partitions = await h.admin.fetchTopicOffsets(TOPIC);
    await h.waitFor('the topic read again', async () => {
      const [group] = await h.admin.fetchOffsets({ groupId: 'notification-service', topics: [TOPIC] });
      // every partition with messages committed up to its end (an empty one has nothing to commit)
      return partitions.every((q) => q.high === q.low || group!.partitions.find((p) => p.partition === q.partition)?.offset === q.high);
    });
    assert.deepEqual(h.sink.store.stats(), before, 'no email sent again');
    assert.equal(emailsFor(e), 1);
  });

  it('parks poison messages in the dead-letter topic with the error, and goes on with the rest', async () => {
    const good = orderEvent();
    const unknownType = { ...orderEvent(), type: 'order.exploded' };
    await h.publish([{ raw: '{not json', key: good.data.orderId }, { raw: JSON.stringify(unknownType) }, good]);
    await delivered([good]);
    await h.waitFor('2 dead letters', async () => (await h.read(DLT_TOPIC)).filter((m) => m.headers['dlt-reason'] === 'unparseable').length >= 2);
    const dead = (await h.read(DLT_TOPIC)).filter((m) => m.headers['dlt-reason'] === 'unparseable');
    assert.ok(dead.some((m) => m.value === '{not json' && /not JSON/.test(m.headers['dlt-error'] ?? '') && m.headers['dlt-original-topic'] === TOPIC));
    assert.ok(dead.some((m) => /type/.test(m.headers['dlt-error'] ?? '')));
  });

  it('dead-letters an email the provider refuses for good (550), and records it', async () => {
    h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: ['@bounce.example'] });
    try {
      const e = orderEvent();
      e.data.customerEmail = 'nobody@bounce.example';
      await h.publish([e]);
      await h.waitFor('dead-lettered', async () => (await inbox(e.id))?.status === 'DEAD_LETTERED');
      const dead = (await h.read(DLT_TOPIC)).filter((m) => m.headers['event-id'] === e.id);
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.headers['dlt-reason'], 'permanent');
      assert.match(dead[0]!.headers['dlt-error'] ?? '', /550/);
      assert.equal(emailsFor(e), 0);
    } finally {
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
  });

  it('a provider outage pauses sending without losing events; all go out once when it is back', async () => {
    h.sink.setBehaviour({ mode: 'tempfail', delayMs: 0, rejectRecipients: [] });
    const events = Array.from({ length: 20 }, () => orderEvent());
    try {
      await h.publish(events);
      await h.waitFor('the breaker open', () => h.logs.some((l) => l.msg === 'partition paused' && l.why === 'the provider is down'));
      assert.ok((await h.service.metrics.retried.get()).values[0]!.value >= 1);
      assert.equal((await h.service.metrics.providerUp.get()).values[0]?.value, 0, 'the metrics say the provider is down');
      assert.equal(events.filter((e) => emailsFor(e) > 0).length, 0);
    } finally {
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
    await delivered(events, 60_000);
    assert.equal((await h.service.metrics.providerUp.get()).values[0]?.value, 1, 'the metrics say the provider is back');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // any second copy would have arrived by now
    assert.deepEqual(events.map(emailsFor), events.map(() => 1));
    assert.ok((await h.read(RETRY_TOPIC)).length >= 1, 'the failed sends went through the retry topic');
  });

  it('acceptance: N events with duplicates, a consumer crash mid-stream and a redelivery of everything: exactly N emails', async (t) => {
    const N = 300;
    const events = Array.from({ length: N }, () => orderEvent());
    const before = h.sink.store.stats();
    await h.stopService();
    // the service as a process, so that the crash is a real one (SIGKILL), with a provider slow enough to be mid-send
    h.sink.setBehaviour({ mode: 'accept', delayMs: 15, rejectRecipients: [] });
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('../src/main.ts', import.meta.url).pathname, h.configFile], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    try {
      await h.publish(events);
      await h.publish(events.filter((_, i) => i % 5 === 0)); // every fifth event a second time
      await h.waitFor('a third of the emails', () => events.filter((e) => emailsFor(e) > 0).length >= N / 3, 60_000);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
    const atCrash = events.filter((e) => emailsFor(e) > 0).length;
    await h.startService(); // takes over once the group notices the dead member (session timeout)
    await delivered(events, 120_000);
    // and everything once more from the start of the topic
    await h.stopService();
    await h.admin.resetOffsets({ groupId: 'notification-service', topic: TOPIC, earliest: true });
    await h.startService();
    const partitions = await h.admin.fetchTopicOffsets(TOPIC);
    await h.waitFor('the topic read again', async () => {
      const [group] = await h.admin.fetchOffsets({ groupId: 'notification-service', topics: [TOPIC] });
      return partitions.every((q) => q.high === q.low || group!.partitions.find((p) => p.partition === q.partition)?.offset === q.high);
    }, 120_000);
    const counts = events.map(emailsFor);
    const duplicates = counts.reduce((n, c) => n + Math.max(0, c - 1), 0);
    const missing = counts.filter((c) => c === 0).length;
    t.diagnostic(`N ${String(N)} events (${String(N / 5)} published twice), crash after ${String(atCrash)} emails, then redelivered from the start: ${String(h.sink.store.stats().messages - before.messages)} emails, duplicates ${String(duplicates)}, missing ${String(missing)}`);
    assert.equal(missing, 0);
    assert.equal(duplicates, 0);
    assert.equal(h.sink.store.stats().messages - before.messages, N);
  });

  it('an attempt that died mid-send: the provider is asked first; sent only if it never arrived', async () => {
    const arrived = orderEvent();
    const lost = orderEvent();
    // both as a consumer killed after claiming them leaves them: SENDING, attempt 1; only `arrived` reached the provider
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    try {
      for (const e of [arrived, lost]) {
        await c.query(`INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient) VALUES ($1, $2, $3, 'SENDING', 1, $4)`, [e.id, e.type, e.data.orderId, e.data.customerEmail]);
      }
    } finally {
      await c.end();
    }
    h.sink.store.add({ from: 'orders@oms.example', to: ['ada@shop.example'] }, `Message-ID: <${arrived.id}@notifications.oms.example>\r\nX-Oms-Order-Id: ${arrived.data.orderId}\r\n\r\nsent before the crash\r\n`);
    await h.publish([arrived, lost]);
    await delivered([lost]);
    await h.waitFor('both recorded as sent', async () => (await inbox(arrived.id))?.status === 'SENT' && (await inbox(lost.id))?.status === 'SENT');
    assert.equal(emailsFor(arrived), 1, 'not sent a second time');
    assert.equal(emailsFor(lost), 1);
    assert.ok(h.logs.some((l) => l.msg === 'an interrupted send had arrived; recorded as sent' && l.eventId === arrived.id));
  });

  it('after a restore of the database to a point in time: an event older than the restore is looked up first, one newer is not', async () => {
    const arrived = orderEvent(); // emailed by the system as it was before the restore, whose inbox row the restore discarded
    const never = orderEvent(); // never emailed: its email goes out now
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    let lookups = 0;
    const real = new SmtpProvider(h.config.smtp);
    const counting: MailProvider = {
      send: (email, hold) => real.send(email, hold),
      lookup: (messageId) => { lookups += 1; return real.lookup(messageId); },
      reachable: () => real.reachable(),
      close: () => { real.close(); },
    };
    try {
      // what ansible/restore.yml records once the restored cluster serves
      await c.query("INSERT INTO notify.restores (restored_at, target) VALUES (now() + interval '1 second', 'time 2026-12-05 06:21:24.602+00')");
      h.sink.store.add({ from: 'orders@oms.example', to: ['ada@shop.example'] }, `Message-ID: <${arrived.id}@notifications.oms.example>\r\nX-Oms-Order-Id: ${arrived.data.orderId}\r\n\r\nsent before the restore\r\n`);
      await h.restart(undefined, counting);
      await h.publish([arrived, never]);
      await delivered([never]);
      await h.waitFor('both recorded as sent', async () => (await inbox(arrived.id))?.status === 'SENT' && (await inbox(never.id))?.status === 'SENT');
      assert.equal(emailsFor(arrived), 1, 'not sent a second time');
      assert.equal(emailsFor(never), 1);
      assert.equal(lookups, 2, 'both older than the restore: the provider was asked for each');
      // an event of after the restore is sent without asking
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const newer = orderEvent();
      await h.publish([newer]);
      await delivered([newer]);
      assert.equal(emailsFor(newer), 1);
      assert.equal(lookups, 2, 'no lookup for an event newer than the restore');
    } finally {
      await c.query('DELETE FROM notify.restores');
      await c.end();
      await h.restart();
    }
  });

  it('orphaned sends (nobody took them over, their event will not come again): the sweep records those the provider has, and counts the rest', async () => {
    const arrived = orderEvent();
    const never = orderEvent();
    const recent = orderEvent(); // its lease ran out a moment ago: a redelivery may still take it over
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    try {
      const row = `INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient, owner, lease_until) VALUES ($1, $2, $3, 'SENDING', 1, $4, 'restored', now() - $5::interval)`;
      for (const [e, ago] of [[arrived, '1 hour'], [never, '1 hour'], [recent, '1 second']] as const) {
        await c.query(row, [e.id, e.type, e.data.orderId, e.data.customerEmail, ago]);
      }
      h.sink.store.add({ from: 'orders@oms.example', to: ['ada@shop.example'] }, `Message-ID: <${arrived.id}@notifications.oms.example>\r\nX-Oms-Order-Id: ${arrived.data.orderId}\r\n\r\nsent before the restore\r\n`);
      const swept = await h.service.sweepOrphans();
      assert.deepEqual(swept, { recorded: 1, left: 1 });
      assert.deepEqual(await inbox(arrived.id), { status: 'SENT', attempts: 1 });
      assert.deepEqual(await inbox(never.id), { status: 'SENDING', attempts: 1 }, 'not sent blindly: left to the operator');
      assert.deepEqual(await inbox(recent.id), { status: 'SENDING', attempts: 1 });
      assert.equal((await h.service.metrics.orphaned.get()).values[0]?.value, 1);
      assert.equal(emailsFor(arrived), 1);
      assert.equal(emailsFor(never), 0);
      assert.ok(h.logs.some((l) => String(l.msg).startsWith('an orphaned send never reached the provider') && l.eventId === never.id));
    } finally {
      await c.query('DELETE FROM notify.inbox WHERE event_id = ANY($1)', [[arrived.id, never.id, recent.id]]);
      await c.end();
    }
  });

  it('a claim whose commit hangs past the query timeout (no synchronous standby) is put back, not dead-lettered, and its email goes out once', async () => {
    const e = orderEvent();
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    try {
      // every commit now waits for a standby that does not exist, as on a restored leader before its standby streams
      await c.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
      await c.query('SELECT pg_reload_conf()');
      await h.publish([e]);
      await h.waitFor('a claim timed out and put back', () => Promise.resolve(h.logs.some((l) => l.eventId === e.id && l.msg === 'message put back: a dependency is away or the lease was lost' && JSON.stringify(l.err ?? {}).includes('Query read timeout'))), 60_000);
    } finally {
      await c.query('ALTER SYSTEM RESET synchronous_standby_names');
      await c.query('SELECT pg_reload_conf()');
      await c.end();
    }
    await delivered([e], 60_000);
    await h.waitFor('recorded as sent', async () => (await inbox(e.id))?.status === 'SENT');
    assert.equal(emailsFor(e), 1);
    assert.ok(!(await h.read(DLT_TOPIC)).some((m) => m.headers['event-id'] === e.id), 'not dead-lettered');
  });

  it('a consumer frozen mid-send (SIGSTOP) past its session timeout: the send is taken over once, and the frozen one completes nothing when it wakes', async (t) => {
    const events = Array.from({ length: 6 }, () => orderEvent());
    await h.stopService();
    // the provider holds every sender at MAIL FROM: a consumer that claimed an event has not sent a byte of it yet
    h.sink.setBehaviour({ mode: 'accept', delayMs: 0, envelopeDelayMs: 3000, rejectRecipients: [] });
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('../src/main.ts', import.meta.url).pathname, h.configFile], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'info' } });
    const childLog: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => { childLog.push(...d.split('\n').filter(Boolean)); });
    let frozenWith: string[] = [];
    try {
      await h.publish(events);
      await h.waitFor('the child mid-send', async () => (await Promise.all(events.map((e) => inbox(e.id)))).some((r) => r?.status === 'SENDING'), 60_000);
      child.kill('SIGSTOP');
      frozenWith = (await Promise.all(events.map(async (e) => ((await inbox(e.id))?.status === 'SENDING' ? e.id : '')))).filter(Boolean);
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
      // another consumer gets the partitions once the frozen one misses its session timeout, and takes the sends over
      await h.startService();
      await delivered(events, 90_000);
      child.kill('SIGCONT');
      // the woken consumer gets its answer to MAIL FROM now, but its lease ran out long ago
      await h.waitFor('the woken consumer to give its sends up', () => childLog.some((l) => l.includes('the lease was lost')), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 2000)); // any email it still completed would have arrived
    } finally {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await once(child, 'exit');
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
    const counts = events.map(emailsFor);
    t.diagnostic(`frozen with ${String(frozenWith.length)} sends claimed; emails per event: ${counts.join(' ')}`);
    assert.ok(frozenWith.length >= 1);
    assert.deepEqual(counts, events.map(() => 1), 'exactly one email per event');
    for (const e of events) assert.equal((await inbox(e.id))?.status, 'SENT');
  });

  it('an unexpected failure (a provider adapter that throws) goes to retry and does not stall the partition', async () => {
    const real = new SmtpProvider(h.config.smtp);
    const broken: MailProvider = {
      send: (email, hold) => real.send(email, hold),
      lookup: () => { throw new TypeError("Cannot read properties of undefined (reading 'count')"); },
      reachable: () => real.reachable(),
      close: () => { real.close(); },
    };
    const orderId = crypto.randomUUID();
    const interrupted = orderEvent('order.created', orderId);
    const next = orderEvent('order.confirmed', orderId); // same order: the same partition, behind it
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    try {
      // an attempt whose owner's lease ran out: the provider's lookup is asked first, and throws
      await c.query(`INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient, owner, lease_until) VALUES ($1, $2, $3, 'SENDING', 1, $4, 'gone', now() - interval '1 second')`, [interrupted.id, interrupted.type, orderId, interrupted.data.customerEmail]);
    } finally {
      await c.end();
    }
    await h.restart(undefined, broken);
    try {
      await h.publish([interrupted, next]);
      await delivered([interrupted, next]);
      assert.equal(emailsFor(interrupted), 1);
      assert.equal(emailsFor(next), 1);
      assert.deepEqual(await inbox(interrupted.id), { status: 'SENT', attempts: 2 });
      const errors = (await h.service.metrics.errors.get()).values.find((v) => v.labels.stage === 'lookup');
      assert.equal(errors?.value, 1);
      assert.ok((await h.read(RETRY_TOPIC)).some((m) => m.headers['event-id'] === interrupted.id && /unexpected failure \(lookup\)/.test(m.headers['last-error'] ?? '')));
    } finally {
      await h.restart();
    }
  });

  it('stopping finishes the message in hand: the email goes out and is recorded before the service ends', async () => {
    h.sink.setBehaviour({ mode: 'accept', delayMs: 1500, rejectRecipients: [] });
    const e = orderEvent();
    try {
      await h.publish([e]);
      await h.waitFor('the send under way', async () => (await inbox(e.id))?.status === 'SENDING');
      await h.stopService();
    } finally {
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
    assert.equal(emailsFor(e), 1);
    assert.equal((await inbox(e.id))?.status, 'SENT');
    assert.ok(h.logs.some((l) => l.msg === 'stopped'));
    await h.startService();
  });

  it('purges inbox rows of events sent or given up past their retention, and nothing else', async () => {
    const [old, oldDead, recent, sending] = [orderEvent(), orderEvent(), orderEvent(), orderEvent()];
    const c = h.stack.postgres!.admin('notifications');
    await c.connect();
    try {
      const row = `INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient, processed_at) VALUES ($1, 'order.created', $2, $3, 1, 'ada@shop.example', now() - make_interval(days => $4))`;
      await c.query(row, [old.id, old.data.orderId, 'SENT', 31]);
      await c.query(row, [oldDead.id, oldDead.data.orderId, 'DEAD_LETTERED', 40]);
      await c.query(row, [recent.id, recent.data.orderId, 'SENT', 29]);
      await c.query(row, [sending.id, sending.data.orderId, 'SENDING', 60]);
      const purged = await h.service.purge();
      assert.ok(purged >= 2, `purged ${String(purged)}`);
      const { rows } = await c.query<{ event_id: string }>('SELECT event_id FROM notify.inbox WHERE event_id = ANY($1)', [[old.id, oldDead.id, recent.id, sending.id]]);
      assert.deepEqual(rows.map((r) => r.event_id).sort(), [recent.id, sending.id].sort(), 'the recent row and the send in progress stay');
      assert.ok((await h.service.metrics.purged.get()).values[0]!.value >= 2);
    } finally {
      await c.end();
    }
  });

  it('reports readiness and metrics (sent, retried, dead-lettered, duplicates, lag, latency)', async () => {
    await h.waitFor('ready (in the consumer group, PostgreSQL answering)', async () => (await fetch(`${h.service.url}/readyz`)).status === 200);
    assert.equal((await fetch(`${h.service.url}/livez`)).status, 200);
    const e = orderEvent('order.shipped');
    await h.publish([e]);
    await delivered([e]);
    const text = await (await fetch(`${h.service.url}/metrics`)).text();
    for (const name of ['oms_notifications_sent_total{type="order.shipped"}', 'oms_notifications_retried_total', 'oms_notifications_dead_lettered_total', 'oms_notifications_duplicates_total', 'oms_notification_consumer_lag', 'oms_notification_latency_seconds_bucket', 'oms_notifications_provider_up 1']) {
      assert.ok(text.includes(name), name);
    }
    assert.equal((await fetch(`${h.service.url}/metrics`, { method: 'POST' })).status, 405);
  });

  it('refuses to start on a bad configuration or command line: exit 2, the problems named', async () => {
    const main = new URL('../src/main.ts', import.meta.url).pathname;
    const run = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMS_CONFIG: '' } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const [code] = await once(child, 'exit') as [number | null];
      return { code, stderr };
    };
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^usage: notification-service CONFIG\.json/);
    const bad = `${h.stack.dir}/bad-notification.json`;
    writeFileSync(bad, JSON.stringify({ ...h.config, http: { address: '0.0.0.0', port: 1 }, retry: { delaysMs: [], breakerThreshold: 0, probeEveryMs: 1 }, smtp: { ...h.config.smtp, from: 'not-an-address' } }));
    const refused = await run([bad]);
    assert.equal(refused.code, 2);
    for (const path of ['http: listening beyond loopback', 'retry.delaysMs', 'retry.breakerThreshold', 'retry.probeEveryMs', 'smtp.from']) assert.ok(refused.stderr.includes(path), `${path} in: ${refused.stderr}`);
    writeFileSync(bad, JSON.stringify({ ...h.config, inbox: { leaseMs: 7000, marginMs: 1000 } })); // the session timeout is 6 s
    const lease = await run([bad]);
    assert.equal(lease.code, 2);
    assert.match(lease.stderr, /inbox\.leaseMs: must be shorter than kafka\.sessionTimeoutMs/);
    writeFileSync(bad, JSON.stringify({ ...h.config, orphans: { afterMs: 8000, everyMs: 1000 } })); // session 6 s + lease 4 s
    const orphans = await run([bad]);
    assert.equal(orphans.code, 2);
    assert.match(orphans.stderr, /orphans\.afterMs: must be longer than kafka\.sessionTimeoutMs \+ inbox\.leaseMs/);
  });
});
