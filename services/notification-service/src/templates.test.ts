import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EVENT_TYPES, messageIdFor, parseEvent, PoisonMessage, type OrderEvent } from './events.ts';
import { money, render } from './templates.ts';

const event = (type: OrderEvent['type'], productId = 'BOOK-0001'): OrderEvent => ({
  id: '5f0c6f1e-8d2b-4c31-9a57-0b1f2a3c4d5e', type, occurredAt: '2026-11-24T10:00:00.000Z',
  data: { orderId: '9a8b7c6d-1111-4222-8333-944455556666', customerId: 'cust-1', customerEmail: 'ada@shop.example', status: 'X', totalCents: 2598, currency: 'EUR', lines: [{ productId, quantity: 2, unitPriceCents: 1299 }] },
});

describe('notification emails', () => {
  it('renders every event type with its own subject, the order, its lines and total', () => {
    const subjects = new Set<string>();
    for (const type of EVENT_TYPES) {
      const email = render(event(type));
      subjects.add(email.subject);
      assert.match(email.subject, /9A8B7C6D/);
      assert.match(email.text, /2 x BOOK-0001/);
      assert.match(email.text, /Total: €25\.98/);
      assert.match(email.html, /<strong>€25\.98<\/strong>/);
    }
    assert.equal(subjects.size, EVENT_TYPES.length);
  });

  it('says only what happened: a cancellation promises a refund only if a payment was taken; the refund has its own email', () => {
    const cancelled = render(event('order.cancelled'));
    assert.doesNotMatch(cancelled.text, /is refunded|has been refunded|refunded to/);
    assert.match(cancelled.text, /If a payment was taken for it, we will refund it/);
    const refunded = render({ ...event('order.refunded'), data: { ...event('order.refunded').data, refundReference: 'sim_refund_9a8b' } });
    assert.match(refunded.subject, /refunded/);
    assert.match(refunded.text, /Refund reference: sim_refund_9a8b/);
    assert.match(refunded.html, /Refund reference: sim_refund_9a8b/);
  });

  it('escapes what comes from the event in the HTML part', () => {
    const email = render(event('order.created', '<script>x</script>'));
    assert.ok(!email.html.includes('<script>'));
    assert.match(email.html, /&lt;script&gt;/);
  });

  it('formats money by currency', () => {
    assert.equal(money(100_000, 'USD'), 'US$1,000.00');
    assert.equal(money(5, 'EUR'), '€0.05');
  });

  it('derives the same Message-ID from the same event', () => {
    assert.equal(messageIdFor('e-1', 'notifications.oms.example'), '<e-1@notifications.oms.example>');
  });

  it('parses an order event and names what is wrong with anything else', () => {
    assert.equal(parseEvent(Buffer.from(JSON.stringify(event('order.shipped')))).type, 'order.shipped');
    for (const [value, reason] of [
      [null, /empty/],
      [Buffer.from('{not json'), /not JSON/],
      [Buffer.from(JSON.stringify({ ...event('order.created'), type: 'order.exploded' })), /type/],
      [Buffer.from(JSON.stringify({ ...event('order.created'), data: { ...event('order.created').data, customerEmail: 'nobody' } })), /data\.customerEmail/],
      [Buffer.from(JSON.stringify({ ...event('order.created'), id: 'x' })), /id/],
    ] as const) {
      assert.throws(() => parseEvent(value), (e: unknown) => e instanceof PoisonMessage && reason.test(e.message));
    }
  });
});
