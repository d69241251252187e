import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ORDER_STATUSES, RELEASES_STOCK, transition } from './state-machine.ts';

describe('order state machine', () => {
  it('the happy path: payment confirms, staff ship and deliver', () => {
    assert.deepEqual(transition('PENDING_PAYMENT', 'CONFIRMED', 'system'), { ok: true });
    assert.deepEqual(transition('CONFIRMED', 'SHIPPED', 'staff'), { ok: true });
    assert.deepEqual(transition('SHIPPED', 'DELIVERED', 'staff'), { ok: true });
  });

  it('a customer may cancel before shipping, never after, and never ship', () => {
    assert.deepEqual(transition('PENDING_PAYMENT', 'CANCELLED', 'customer'), { ok: true });
    assert.deepEqual(transition('CONFIRMED', 'CANCELLED', 'customer'), { ok: true });
    assert.deepEqual(transition('SHIPPED', 'CANCELLED', 'customer'),
      { ok: false, reason: 'not_allowed', detail: 'an order in SHIPPED cannot become CANCELLED (it can become DELIVERED)' });
    assert.deepEqual(transition('CONFIRMED', 'SHIPPED', 'customer'), { ok: false, reason: 'forbidden', detail: 'CONFIRMED -> SHIPPED is for staff, not customer' });
  });

  it('only the service decides a payment; final statuses stay final', () => {
    assert.equal(transition('PENDING_PAYMENT', 'CONFIRMED', 'staff').ok, false);
    for (const final of ['PAYMENT_FAILED', 'CANCELLED', 'DELIVERED'] as const) {
      for (const to of ORDER_STATUSES) {
        const check = transition(final, to, 'staff');
        assert.ok(!check.ok && check.detail.endsWith('(it is final)'), `${final} -> ${to}`);
      }
    }
  });

  it('allows the moves oms.settle_order makes in the database, and only it releases stock of the two', () => {
    // migrations/0004_order_functions.sql: PENDING_PAYMENT -> CONFIRMED (approved) or PAYMENT_FAILED (declined, stock
    // back), by the system; this table must keep allowing exactly that for the function to stay right
    assert.deepEqual(transition('PENDING_PAYMENT', 'CONFIRMED', 'system'), { ok: true });
    assert.deepEqual(transition('PENDING_PAYMENT', 'PAYMENT_FAILED', 'system'), { ok: true });
    assert.equal(RELEASES_STOCK.has('PAYMENT_FAILED'), true);
    assert.equal(RELEASES_STOCK.has('CONFIRMED'), false);
  });
});
