import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../http/problem.ts';
import { canonicalJson, createOrderBody, idempotencyKey, parseBody, requestFingerprint } from './schema.ts';

const order = {
  items: [{ productId: 'BOOK-0042', quantity: 2 }, { productId: 'MUG-0007', quantity: 1 }],
  shippingAddress: { name: "Zoë O'Brien", line1: '12 Main St., Flat #4', city: "L'Aquila", postcode: '67100', country: 'IT' },
  paymentToken: 'tok_approve_4242',
};

const problem = (fn: () => unknown): ApiError => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ApiError, String(error));
    return error;
  }
  assert.fail('no error');
};

describe('order request', () => {
  it('a valid order passes as it is', () => {
    assert.deepEqual(parseBody(createOrderBody, order), order);
  });

  it('every problem is named by its path', () => {
    const e = problem(() => parseBody(createOrderBody, { ...order, items: [{ productId: 'book 42', quantity: 0 }], paymentToken: 'card-1234', admin: true }));
    assert.equal(e.problem, 'validation-failed');
    const paths = (e.extensions['errors'] as { path: string }[]).map((x) => x.path).sort();
    assert.deepEqual(paths, ['', 'items.0.productId', 'items.0.quantity', 'paymentToken']);
  });

  it('the same product twice, no items, and a body that is no object are refused', () => {
    assert.match(problem(() => parseBody(createOrderBody, { ...order, items: [order.items[0], order.items[0]] })).detail, /each product once/);
    assert.match(problem(() => parseBody(createOrderBody, { ...order, items: [] })).detail, /items: /);
    assert.equal(problem(() => parseBody(createOrderBody, 'hello')).problem, 'validation-failed');
  });

  it('Idempotency-Key: required, one value, a sane shape', () => {
    assert.equal(idempotencyKey('6f1c3f0e-8d2b-4c55-9a51-2f5d0b7e9c11'), '6f1c3f0e-8d2b-4c55-9a51-2f5d0b7e9c11');
    assert.equal(problem(() => idempotencyKey(undefined)).problem, 'idempotency-key-required');
    assert.equal(problem(() => idempotencyKey(['a1234567', 'b1234567'])).problem, 'bad-request');
    assert.equal(problem(() => idempotencyKey('short')).problem, 'bad-request');
  });

  it('the fingerprint ignores key order and tells different bodies apart', () => {
    const reordered = { paymentToken: order.paymentToken, shippingAddress: { ...order.shippingAddress }, items: order.items };
    assert.equal(canonicalJson(reordered), canonicalJson(order));
    assert.equal(requestFingerprint('POST', '/api/v1/orders', reordered), requestFingerprint('POST', '/api/v1/orders', order));
    assert.notEqual(requestFingerprint('POST', '/api/v1/orders', { ...order, items: [{ productId: 'BOOK-0042', quantity: 3 }] }), requestFingerprint('POST', '/api/v1/orders', order));
  });
});
