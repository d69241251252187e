// The notification service against real PostgreSQL, Kafka and the mail sink on loopback: one email per event through
// duplicates, redeliveries, restarts, poison messages, provider failures and a crash.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_TYPES } from '../src/events.ts';
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
      assert.equal(events.filter((e) => emailsFor(e) > 0).length, 0);
    } finally {
      h.sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
    await delivered(events, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // any second copy would have arrived by now
    assert.deepEqual(events.map(emailsFor), events.map(() => 1));
    assert.ok((await h.read(RETRY_TOPIC)).length >= 1, 'the failed sends went through the retry topic');
  });
});
