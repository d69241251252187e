// The order service against real PostgreSQL, Redis (Sentinel mode) and Kafka on loopback: every rule of the API,
// idempotency races, overselling under concurrency, the bad-input list (4xx problem+json, database unchanged),
// Row Level Security, the payment outcomes and the recovery sweep, the outbox to Kafka (through a broker outage),
// the cache falling back to PostgreSQL while Redis is down, mutual TLS, and graceful shutdown.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { orderEventSchema } from '@oms/service-common/order-events';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { freePort } from '@oms/zx-scripts/testkit/daemon';
import { migrate, serviceDatabases } from '@oms/zx-scripts/testkit/postgres';
import { createLogger } from '@oms/service-common/logger';
import { compareIds } from '../src/db/create-order.ts';
import { moveOrder } from '../src/orders/repository.ts';
import { createOrderBody, parseBody, requestFingerprint } from '../src/orders/schema.ts';
import { startService } from '../src/service.ts';
import { newKey, orderBody, startHarness, writeCorpus, type Harness, type Reply } from './harness.ts';

let h: Harness;
let staff: string;

const PRODUCTS = [
  { id: 'BOOK-0001', name: 'Distributed Systems', category: 'books', priceCents: 4500, stock: 1000 },
  { id: 'BOOK-0002', name: 'Database Internals', category: 'books', priceCents: 3900, stock: 1000 },
  { id: 'MUG-0001', name: 'Mug', category: 'kitchen', priceCents: 1200, stock: 1000 },
  { id: 'LAST-0001', name: 'Limited print', category: 'art', priceCents: 9900, stock: 5 },
  { id: 'GONE-0001', name: 'Sold out', category: 'art', priceCents: 100, stock: 0 },
];

function isProblem(r: Reply, status: number, name: string): void {
  assert.equal(r.status, status, `expected ${String(status)} ${name}, got ${String(r.status)}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.equal(r.body.type, `urn:oms:problem:${name}`, r.text);
  assert.equal(r.body.status, status);
  assert.equal(typeof r.body.detail, 'string');
}

/** What a bad request must not change: orders, keys, outbox, stock. */
async function databaseState(): Promise<string> {
  const c = h.stack.postgres!.admin('orders');
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT (SELECT count(*) FROM oms.orders) o, (SELECT count(*) FROM oms.idempotency_keys) k,
      (SELECT count(*) FROM oms.outbox) e, (SELECT string_agg(id || ':' || stock, ',' ORDER BY id) FROM oms.products) s`);
    return JSON.stringify(rows[0]);
  } finally {
    await c.end();
  }
}

async function stock(id: string): Promise<number> {
  const c = h.stack.postgres!.admin('orders');
  await c.connect();
  try {
    return (await c.query<{ stock: number }>('SELECT stock FROM oms.products WHERE id = $1', [id])).rows[0]!.stock;
  } finally {
    await c.end();
  }
}

/** The catalog cache counter for `result` (hit, miss, error), from /metrics. */
const cacheCounter = async (result: string): Promise<number> =>
  Number(new RegExp(`oms_catalog_cache_total\\{result="${result}"\\} (\\d+)`).exec((await h.call('GET', '/metrics')).text)?.[1] ?? 0);

const place = (customer: string, items: { productId: string; quantity: number }[], token = 'tok_approve_visa', key = newKey()) =>
  h.call('POST', '/api/v1/orders', { token: h.token(customer), headers: { 'idempotency-key': key }, body: orderBody(items, token) });

describe('order service (real PostgreSQL, Redis, Kafka)', { timeout: 600_000 }, () => {
  before(async () => {
    h = await startHarness();
    staff = h.token('staff-1', 'staff');
    for (const { id, ...p } of PRODUCTS) {
      const r = await h.call('PUT', `/api/v1/products/${id}`, { token: staff, body: p });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(async () => {
    writeCorpus(h.recorded);
    await h.stop();
  });

  it('answers /livez, /readyz and /metrics', async () => {
    assert.equal((await h.call('GET', '/livez')).status, 200);
    const ready = await h.call('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.body.checks.postgres, 'ok');
    const metrics = await h.call('GET', '/metrics');
    for (const name of ['oms_http_request_duration_seconds', 'oms_orders_total', 'oms_outbox_backlog', 'oms_catalog_cache_total']) assert.match(metrics.text, new RegExp(name));

    // the same three on the loopback operations listener, without a client certificate; nothing else is served there
    const ops = `http://127.0.0.1:${String(h.service.opsPort)}`;
    assert.equal((await fetch(`${ops}/readyz`)).status, 200);
    assert.match(await (await fetch(`${ops}/metrics`)).text(), /oms_orders_total/);
    assert.equal((await fetch(`${ops}/api/v1/products`)).status, 404);
    assert.equal((await fetch(`${ops}/readyz`, { method: 'POST' })).status, 404);
  });

  it('serves its OpenAPI document, generated from the request schemas', async () => {
    const r = await h.call('GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, '3.1.0');
    assert.ok(r.body.paths['/orders'].post);
    assert.deepEqual(r.body.components.schemas.CreateOrder.required.sort(), ['items', 'paymentToken', 'shippingAddress']);
  });

  it('talks only to the gateway: another certificate of the CA is cut off after the handshake', async () => {
    await assert.rejects(h.call('GET', '/livez', { identity: 'order-service' }), /socket hang up|ECONNRESET/);
    assert.equal((await h.call('GET', '/livez')).status, 200);
  });

  it('catalog: filters, sorts, pages; staff changes it; customers and anonymous callers cannot', async () => {
    const books = await h.call('GET', '/api/v1/products?category=books&sort=-price');
    assert.equal(books.status, 200, books.text);
    assert.deepEqual(books.body.items.map((p: { id: string }) => p.id), ['BOOK-0001', 'BOOK-0002']);
    assert.equal(books.body.total, 2);
    const cheap = await h.call('GET', '/api/v1/products?maxPrice=12.00&available=true');
    assert.deepEqual(cheap.body.items.map((p: { id: string }) => p.id), ['MUG-0001']);
    const paged = await h.call('GET', '/api/v1/products?pageSize=2&page=2&sort=id');
    assert.deepEqual(paged.body.items.map((p: { id: string }) => p.id), ['GONE-0001', 'LAST-0001']);
    assert.equal(paged.body.total, 5);
    const one = await h.call('GET', '/api/v1/products/MUG-0001');
    assert.deepEqual(one.body, { id: 'MUG-0001', name: 'Mug', category: 'kitchen', priceCents: 1200, currency: 'EUR', available: true });
    isProblem(await h.call('GET', '/api/v1/products/NOPE-0001'), 404, 'not-found');
    isProblem(await h.call('PUT', '/api/v1/products/MUG-0002', { body: { name: 'x', category: 'kitchen', priceCents: 1, stock: 1 } }), 401, 'unauthorized');
    isProblem(await h.call('PUT', '/api/v1/products/MUG-0002', { token: h.token('cust-x'), body: { name: 'x', category: 'kitchen', priceCents: 1, stock: 1 } }), 403, 'forbidden');
  });

  it('catalog cache: a second read is a hit, a change is visible at once', async () => {
    await h.call('GET', '/api/v1/products/BOOK-0002');
    const before = await cacheCounter('hit');
    assert.equal((await h.call('GET', '/api/v1/products/BOOK-0002')).body.priceCents, 3900);
    assert.equal(await cacheCounter('hit'), before + 1);
    const r = await h.call('PUT', '/api/v1/products/BOOK-0002', { token: staff, body: { name: 'Database Internals', category: 'books', priceCents: 3500, stock: 1000 } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await h.call('GET', '/api/v1/products/BOOK-0002')).body.priceCents, 3500);
    assert.equal((await h.call('GET', '/api/v1/products?category=books&sort=price')).body.items[0].priceCents, 3500);
  });

  it('places an order: 201 CONFIRMED, stock taken, history, and its events published to Kafka with the request\'s id', async () => {
    const before = await stock('BOOK-0001');
    const requestId = `test-${randomUUID()}`;
    const r = await h.call('POST', '/api/v1/orders', {
      token: h.token('cust-a'), headers: { 'idempotency-key': newKey(), 'x-request-id': requestId },
      body: orderBody([{ productId: 'BOOK-0001', quantity: 2 }, { productId: 'MUG-0001', quantity: 1 }]),
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers['x-request-id'], requestId);
    assert.equal(r.body.status, 'CONFIRMED');
    assert.equal(r.body.totalCents, 2 * 4500 + 1200);
    assert.equal(r.headers.location, `/api/v1/orders/${String(r.body.id)}`);
    assert.equal(await stock('BOOK-0001'), before - 2);
    const history = await h.call('GET', `/api/v1/orders/${String(r.body.id)}/history`, { token: h.token('cust-a') });
    assert.deepEqual(history.body.items.map((e: { to: string }) => e.to), ['PENDING_PAYMENT', 'CONFIRMED']);

    assert.equal(r.body.customerEmail, 'cust-a@shop.example', 'the token\'s email claim is kept with the order');
    const events = await consume(r.body.id as string, 2);
    assert.deepEqual(events.map((e) => e.type), ['order.created', 'order.confirmed']);
    assert.ok(events.every((e) => e.key === r.body.id && e.headerId === e.id));
    assert.ok(events.every((e) => e.email === 'cust-a@shop.example'), 'every event carries the address the notification service writes to');
    assert.deepEqual(events.map((e) => e.requestId), [requestId, requestId], 'both events carry the request that placed the order (header request-id)');
  });

  it('ordering needs the email claim: a customer token without one is refused (403) and nothing is written', async () => {
    const r = await h.call('POST', '/api/v1/orders', { token: h.token('cust-no-mail', 'customer', null), headers: { 'idempotency-key': newKey() }, body: orderBody([{ productId: 'BOOK-0001', quantity: 1 }]) });
    isProblem(r, 403, 'forbidden');
    assert.match(r.body.detail, /email claim/);
    assert.equal((await h.call('GET', '/api/v1/orders', { token: h.token('cust-no-mail', 'customer', null) })).body.items.length, 0);
  });

  it('payment declined: 402 with the order, which is PAYMENT_FAILED with its stock back', async () => {
    const before = await stock('MUG-0001');
    const r = await place('cust-a', [{ productId: 'MUG-0001', quantity: 3 }], 'tok_decline_card');
    isProblem(r, 402, 'payment-declined');
    assert.equal(r.body.order.status, 'PAYMENT_FAILED');
    assert.equal(await stock('MUG-0001'), before);
  });

  it('payment timeout: 202 PENDING_PAYMENT; the recovery sweep fails it and puts the stock back; a retry replays the 202', async () => {
    const before = await stock('MUG-0001');
    const key = newKey();
    const r = await place('cust-b', [{ productId: 'MUG-0001', quantity: 4 }], 'tok_timeout_card', key);
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.status, 'PENDING_PAYMENT');
    assert.equal(await stock('MUG-0001'), before - 4);
    assert.equal(await h.service.sweep(), 0, 'not yet: pending for less than pendingAfterSeconds');
    await sleep(5500);
    assert.equal(await h.service.sweep(), 1);
    const order = await h.call('GET', `/api/v1/orders/${String(r.body.id)}`, { token: h.token('cust-b') });
    assert.equal(order.body.status, 'PAYMENT_FAILED');
    assert.equal(await stock('MUG-0001'), before);
    const again = await place('cust-b', [{ productId: 'MUG-0001', quantity: 4 }], 'tok_timeout_card', key);
    assert.equal(again.status, 202);
    assert.equal(again.headers['idempotent-replayed'], 'true');
  });

  it('Idempotency-Key: same body replays the stored response, another body is 422', async () => {
    const key = newKey();
    const first = await place('cust-c', [{ productId: 'BOOK-0002', quantity: 1 }], 'tok_approve_visa', key);
    assert.equal(first.status, 201);
    const stockAfter = await stock('BOOK-0002');
    const replay = await place('cust-c', [{ productId: 'BOOK-0002', quantity: 1 }], 'tok_approve_visa', key);
    assert.equal(replay.status, 201);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.deepEqual(replay.body, first.body);
    isProblem(await place('cust-c', [{ productId: 'BOOK-0002', quantity: 2 }], 'tok_approve_visa', key), 422, 'idempotency-key-reused');
    assert.equal(await stock('BOOK-0002'), stockAfter, 'a replay reserves nothing');
    // keys belong to a customer: another customer's same key is a new order
    assert.equal((await place('cust-d', [{ productId: 'BOOK-0002', quantity: 1 }], 'tok_approve_visa', key)).status, 201);
  });

  it('Idempotency-Key race: 20 parallel requests with one key make exactly one order', async () => {
    const key = newKey();
    const before = await stock('BOOK-0001');
    const replies = await Promise.all(Array.from({ length: 20 }, () => place('cust-race', [{ productId: 'BOOK-0001', quantity: 1 }], 'tok_approve_visa', key)));
    const statuses = replies.map((r) => r.status);
    const created = replies.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined);
    assert.equal(created.length, 1, `statuses: ${statuses.join(',')}`);
    for (const r of replies) {
      if (r.status === 409) isProblem(r, 409, 'request-in-flight');
      else assert.equal(r.body.id, created[0]!.body.id);
    }
    assert.equal(await stock('BOOK-0001'), before - 1);
    const list = await h.call('GET', '/api/v1/orders', { token: h.token('cust-race') });
    assert.equal(list.body.items.length, 1);
  });

  it('never oversells: 40 customers race for the last 5 units', async () => {
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => place(`cust-rush-${String(i)}`, [{ productId: 'LAST-0001', quantity: 1 }])));
    const created = replies.filter((r) => r.status === 201);
    const refused = replies.filter((r) => r.status === 409);
    assert.equal(created.length, 5, replies.map((r) => r.status).join(','));
    assert.equal(refused.length, 35);
    for (const r of refused) isProblem(r, 409, 'out-of-stock');
    assert.equal(await stock('LAST-0001'), 0);
    // sold out: the cached catalog says so at once
    assert.equal((await h.call('GET', '/api/v1/products/LAST-0001')).body.available, false);
  });

  it('orders of the same products in any line order never deadlock: stock is taken in one order, the database\'s and the service\'s', async () => {
    const initial = [await stock('BOOK-0001'), await stock('BOOK-0002'), await stock('MUG-0001')];
    const lines = [[{ productId: 'MUG-0001', quantity: 1 }, { productId: 'BOOK-0002', quantity: 1 }, { productId: 'BOOK-0001', quantity: 1 }],
      [{ productId: 'BOOK-0001', quantity: 1 }, { productId: 'MUG-0001', quantity: 1 }, { productId: 'BOOK-0002', quantity: 1 }]];
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => place(`cust-lock-${String(i)}`, lines[i % 2] ?? [], i % 3 === 0 ? 'tok_decline_card' : 'tok_approve_visa')));
    assert.deepEqual(replies.map((r) => r.status).sort(), [...Array<number>(10).fill(402), ...Array<number>(20).fill(201)].sort(), replies.map((r) => r.text.slice(0, 120)).join('\n'));
    // the items are numbered in the lock order, whatever order the request gave
    assert.deepEqual((replies.find((r) => r.status === 201)?.body.items as { productId: string }[]).map((i) => i.productId), ['BOOK-0001', 'BOOK-0002', 'MUG-0001']);
    // 20 approved take a unit of each; the 10 declined gave theirs back
    assert.deepEqual([await stock('BOOK-0001'), await stock('BOOK-0002'), await stock('MUG-0001')], initial.map((n) => n - 20));
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    try {
      const ids = ['B-1', 'A1', 'A-2', 'A10', 'A2', 'Z', '9X', 'a'];
      const { rows } = await c.query<{ sorted: string[] }>('SELECT array_agg(id ORDER BY id COLLATE "C") AS sorted FROM unnest($1::text[]) AS id', [ids]);
      assert.deepEqual(rows[0]?.sorted, [...ids].sort(compareIds));
    } finally {
      await c.end();
    }
  });

  it('bad input never gets a 500: every case is a 4xx problem and the database is unchanged', async () => {
    const state = await databaseState();
    const token = h.token('cust-bad');
    const post = (body: unknown, headers: Record<string, string> = { 'idempotency-key': newKey() }, raw?: string) =>
      h.call('POST', '/api/v1/orders', { token, headers, ...(raw === undefined ? { body } : { raw }) });
    const good = orderBody([{ productId: 'BOOK-0001', quantity: 1 }]);
    const item = (i: unknown) => ({ ...good, items: [i] });
    const cursor = (createdAt: string, id: string): string => Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
    const cases: [string, Promise<Reply>, number, string][] = [
      ['malformed JSON', post(undefined, { 'idempotency-key': newKey() }, '{"items": ['), 400, 'bad-request'],
      ['not an object', post(undefined, { 'idempotency-key': newKey() }, '"an order"'), 400, 'bad-request'],
      ['wrong types', post({ ...good, items: 'BOOK-0001' }), 400, 'validation-failed'],
      ['quantity as a string', post(item({ productId: 'BOOK-0001', quantity: '1' })), 400, 'validation-failed'],
      ['unknown field', post({ ...good, discount: 100 }), 400, 'validation-failed'],
      ['unknown field in an item', post(item({ productId: 'BOOK-0001', quantity: 1, price: 1 })), 400, 'validation-failed'],
      ['negative quantity', post(item({ productId: 'BOOK-0001', quantity: -1 })), 400, 'validation-failed'],
      ['zero quantity', post(item({ productId: 'BOOK-0001', quantity: 0 })), 400, 'validation-failed'],
      ['huge quantity', post(item({ productId: 'BOOK-0001', quantity: 1e12 })), 400, 'validation-failed'],
      ['fractional quantity', post(item({ productId: 'BOOK-0001', quantity: 1.5 })), 400, 'validation-failed'],
      ['no items', post({ ...good, items: [] }), 400, 'validation-failed'],
      ['malformed product id', post(item({ productId: "x' OR 1=1 --", quantity: 1 })), 400, 'validation-failed'],
      ['unknown product', post(item({ productId: 'NOPE-9999', quantity: 1 })), 422, 'unknown-product'],
      ['sold-out product', post(item({ productId: 'GONE-0001', quantity: 1 })), 409, 'out-of-stock'],
      ['oversized body', post({ ...good, note: 'x'.repeat(40_000) }), 413, 'payload-too-large'],
      ['missing Idempotency-Key', post(good, {}), 400, 'idempotency-key-required'],
      ['malformed Idempotency-Key', post(good, { 'idempotency-key': 'short' }), 400, 'bad-request'],
      ['not JSON', h.call('POST', '/api/v1/orders', { token, headers: { 'idempotency-key': newKey(), 'content-type': 'text/plain' }, raw: 'items=1' }), 415, 'unsupported-media-type'],
      ['no token', h.call('POST', '/api/v1/orders', { headers: { 'idempotency-key': newKey() }, body: good }), 401, 'unauthorized'],
      ['forged token', h.call('POST', '/api/v1/orders', { token: `${token.slice(0, -4)}AAAA`, headers: { 'idempotency-key': newKey() }, body: good }), 401, 'unauthorized'],
      ['staff placing an order', h.call('POST', '/api/v1/orders', { token: staff, headers: { 'idempotency-key': newKey() }, body: good }), 403, 'forbidden'],
      ['bad order id', h.call('GET', '/api/v1/orders/12345', { token }), 400, 'bad-request'],
      ['bad product id', h.call('GET', '/api/v1/products/lower-case', {}), 400, 'validation-failed'],
      ['bad catalog filter', h.call('GET', '/api/v1/products?minPrice=cheap', {}), 400, 'validation-failed'],
      ['repeated catalog filter', h.call('GET', '/api/v1/products?category=a&category=b', {}), 400, 'validation-failed'],
      ['bad cursor', h.call('GET', '/api/v1/orders?after=bm90LWEtY3Vyc29y', { token }), 400, 'bad-request'],
      // values PostgreSQL refuses that the checks before it let through (SQLSTATE 22008, 22P02): were 500s
      ['cursor with a date PostgreSQL refuses', h.call('GET', `/api/v1/orders?after=${cursor('2026-02-30T00:00:00.000Z', '00000000-0000-4000-8000-000000000000')}`, { token }), 400, 'bad-request'],
      ['cursor with an id PostgreSQL refuses', h.call('GET', `/api/v1/orders?after=${cursor('2026-01-01T00:00:00.000Z', '-'.repeat(36))}`, { token }), 400, 'bad-request'],
      // the router's decode error: was a 500
      ['path not valid percent-encoding', h.call('GET', '/api/v1/products/%E0%A4', {}), 400, 'bad-request'],
      // routing is case-sensitive, as the gateway's locations and limits are: this was an order, past the order limit
      ['path in another case', h.call('POST', '/api/v1/ORDERS', { token, headers: { 'idempotency-key': newKey() }, body: good }), 404, 'not-found'],
      ['wrong method', h.call('DELETE', '/api/v1/orders', { token }), 405, 'method-not-allowed'],
      ['unknown path', h.call('GET', '/api/v1/nothing', {}), 404, 'not-found'],
    ];
    for (const [name, reply, status, problem] of cases) {
      const r = await reply;
      assert.ok(r.status < 500, `${name}: ${String(r.status)} ${r.text}`);
      isProblem(r, status, problem);
    }
    assert.equal(await databaseState(), state, 'no bad request changed the database');
    assert.ok(!h.logs.some((l) => l.level === 'error'), 'no request failed internally');
  });

  it('customers see only their own orders, in the service and in PostgreSQL (Row Level Security)', async () => {
    const mine = await place('cust-e', [{ productId: 'MUG-0001', quantity: 1 }]);
    const id = String(mine.body.id);
    isProblem(await h.call('GET', `/api/v1/orders/${id}`, { token: h.token('cust-f') }), 404, 'not-found');
    isProblem(await h.call('GET', `/api/v1/orders/${id}/history`, { token: h.token('cust-f') }), 404, 'not-found');
    isProblem(await h.call('POST', `/api/v1/orders/${id}/cancel`, { token: h.token('cust-f') }), 404, 'not-found');
    isProblem(await h.call('GET', '/api/v1/orders?customer=cust-e', { token: h.token('cust-f') }), 403, 'forbidden');
    assert.equal((await h.call('GET', `/api/v1/orders/${id}`, { token: staff })).body.customerId, 'cust-e');
    assert.equal((await h.call('GET', '/api/v1/orders?customer=cust-e', { token: staff })).body.items.length, 1);

    // underneath: the service's own database role, acting for another customer, sees nothing of cust-e's
    const tls = h.stack.pki.client('order-service');
    const c = new pg.Client({ host: '127.0.0.1', port: h.stack.postgres!.port, database: 'orders', user: 'order_service',
      ssl: { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), servername: 'localhost' } });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query("SELECT set_config('oms.scope', 'customer', true), set_config('oms.customer_id', 'cust-f', true)");
      assert.equal((await c.query('SELECT * FROM oms.orders WHERE id = $1', [id])).rowCount, 0);
      assert.equal((await c.query("SELECT * FROM oms.order_items WHERE customer_id = 'cust-e'")).rowCount, 0);
      await assert.rejects(c.query("UPDATE oms.orders SET status = 'CANCELLED'").then(() => c.query(
        "INSERT INTO oms.orders (id, customer_id, status, total_cents, currency) VALUES (gen_random_uuid(), 'cust-e', 'CONFIRMED', 0, 'EUR')")), /row-level security/);
      await c.query('ROLLBACK');
      await assert.rejects(c.query('DELETE FROM oms.orders'), /permission denied/);
      await assert.rejects(c.query('ALTER TABLE oms.orders DISABLE ROW LEVEL SECURITY'), /must be owner/);
    } finally {
      await c.end();
    }
  });

  it('lists a customer\'s orders newest first, page by page with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(String((await place('cust-pages', [{ productId: 'MUG-0001', quantity: 1 }])).body.id));
    const token = h.token('cust-pages');
    const seen: string[] = [];
    let path = '/api/v1/orders?limit=2';
    for (;;) {
      const page = await h.call('GET', path, { token });
      assert.equal(page.status, 200, page.text);
      seen.push(...page.body.items.map((o: { id: string }) => o.id));
      if (!page.body.next) break;
      path = `/api/v1/orders?limit=2&after=${String(page.body.next)}`;
    }
    assert.deepEqual(seen, ids.reverse());
  });

  it('moves orders by the state machine, with optimistic locking', async () => {
    const o = (await place('cust-g', [{ productId: 'BOOK-0002', quantity: 1 }])).body;
    const path = `/api/v1/orders/${String(o.id)}`;
    const cust = h.token('cust-g');
    isProblem(await h.call('POST', `${path}/ship`, { token: cust }), 403, 'forbidden');
    isProblem(await h.call('POST', `${path}/deliver`, { token: staff }), 409, 'transition-not-allowed');
    isProblem(await h.call('POST', `${path}/ship`, { token: staff, body: { version: 1 } }), 409, 'version-conflict');
    const shipped = await h.call('POST', `${path}/ship`, { token: staff, body: { version: o.version } });
    assert.equal(shipped.body.status, 'SHIPPED', shipped.text);
    isProblem(await h.call('POST', `${path}/cancel`, { token: cust }), 409, 'transition-not-allowed');
    assert.equal((await h.call('POST', `${path}/deliver`, { token: staff })).body.status, 'DELIVERED');

    const before = await stock('BOOK-0002');
    const c = (await place('cust-g', [{ productId: 'BOOK-0002', quantity: 2 }])).body;
    const cancelled = await h.call('POST', `/api/v1/orders/${String(c.id)}/cancel`, { token: cust });
    assert.equal(cancelled.body.status, 'CANCELLED', cancelled.text);
    assert.equal(await stock('BOOK-0002'), before, 'cancelling puts the stock back');
    isProblem(await h.call('POST', `/api/v1/orders/${String(c.id)}/cancel`, { token: cust }), 409, 'transition-not-allowed');
    const history = await h.call('GET', `/api/v1/orders/${String(c.id)}/history`, { token: cust });
    assert.deepEqual(history.body.items.map((e: { to: string; actor: string }) => `${e.to}/${e.actor}`), ['PENDING_PAYMENT/customer', 'CONFIRMED/system', 'CANCELLED/customer']);
  });

  it('Redis down: the catalog answers from PostgreSQL without waiting for Redis; the cache is used again when Redis is back', async (t) => {
    const redis = h.stack.redis!;
    await redis.redis.kill();
    const errorsBefore = await cacheCounter('error');
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await h.call('GET', '/api/v1/products?category=books');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.total, 2);
    }
    // each request tried Redis, was refused at once (no offline queue), and asked PostgreSQL
    assert.equal(await cacheCounter('error'), errorsBefore + 5);
    t.diagnostic(`catalog while Redis is down: ${String((Date.now() - started) / 5)} ms a request`);
    assert.equal((await place('cust-h', [{ productId: 'MUG-0001', quantity: 1 }])).status, 201, 'orders do not need Redis');
    await redis.redis.start(async () => (await h.call('GET', '/readyz')).body.checks.redis === 'ready', 30_000);
    await h.call('GET', '/api/v1/products/MUG-0001');
    const hitsBefore = await cacheCounter('hit');
    await h.call('GET', '/api/v1/products/MUG-0001');
    assert.equal(await cacheCounter('hit'), hitsBefore + 1);
  });

  it('Kafka down: orders are still taken; their events wait in the outbox (backlog metric) and go out when it is back', async () => {
    const kafka = h.stack.kafka!;
    await kafka.daemon.stop();
    const r = await place('cust-i', [{ productId: 'MUG-0001', quantity: 1 }]);
    assert.equal(r.status, 201, r.text);
    await sleep(1000);
    const gauge = async (name: string) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec((await h.call('GET', '/metrics')).text)?.[1] ?? -1);
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    const pending = async () => Number((await c.query<{ n: string }>('SELECT count(*) n FROM oms.outbox WHERE published_at IS NULL')).rows[0]!.n);
    try {
      assert.ok(await pending() >= 2, 'created and confirmed events wait');
      // the relay reads the backlog before each attempt to send, so the gauges show it while Kafka refuses
      const deadline = Date.now() + 15_000;
      while (!(await gauge('oms_outbox_backlog') >= 2 && await gauge('oms_outbox_oldest_age_seconds') >= 1)) {
        assert.ok(Date.now() < deadline, 'the metrics show the waiting events and their age while Kafka is down');
        await sleep(200);
      }
      await kafka.daemon.start(async () => (await pending()) === 0, 90_000);
    } finally {
      await c.end();
    }
    await sleep(200);
    assert.equal(await gauge('oms_outbox_backlog'), 0);
    assert.equal(await gauge('oms_outbox_oldest_age_seconds'), 0);
    const events = await consume(String(r.body.id), 2);
    assert.deepEqual(events.map((e) => e.type), ['order.created', 'order.confirmed']);
  });

  it('PostgreSQL restarts: requests get 503 with Retry-After (never 500), /readyz says not ready; then all works again', async () => {
    const postgres = h.stack.postgres!;
    await postgres.daemon.stop();
    const token = h.token('cust-k');
    for (const r of [await h.call('GET', '/api/v1/orders', { token }), await place('cust-k', [{ productId: 'MUG-0001', quantity: 1 }])]) {
      isProblem(r, 503, 'unavailable');
      assert.equal(r.headers['retry-after'], '1');
    }
    assert.equal((await h.call('GET', '/readyz')).status, 503);
    await postgres.daemon.start(() => postgres.ready(), 30_000);
    const r = await place('cust-k', [{ productId: 'MUG-0001', quantity: 1 }]);
    assert.equal(r.status, 201, r.text);
    assert.equal((await h.call('GET', '/readyz')).status, 200);
    assert.deepEqual((await consume(String(r.body.id), 2)).map((e) => e.type), ['order.created', 'order.confirmed'], 'the relay publishes again');
  });

  it('a statement timeout is a 503 with Retry-After (was a 500), and the service answers again once the lock is gone', async () => {
    await h.restart((c) => { c.postgres.statementTimeoutMs = 300; });
    const locker = h.stack.postgres!.admin('orders');
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE oms.products IN ACCESS EXCLUSIVE MODE');
      const r = await h.call('GET', '/api/v1/products/NONE-0404');
      isProblem(r, 503, 'unavailable');
      assert.equal(r.headers['retry-after'], '1');
      await locker.query('ROLLBACK');
      assert.equal((await h.call('GET', '/api/v1/products/NONE-0404')).status, 404);
    } finally {
      await locker.end();
      await h.restart();
    }
  });

  it('an order cancelled while its charge is in flight: its key ends with the order as it is (a retry replays it, never 409 for ever)', async () => {
    await h.restart((c) => { c.payments.timeoutMs = 5000; });
    try {
      const customer = 'cust-inflight';
      const key = newKey();
      const items = [{ productId: 'MUG-0001', quantity: 1 }];
      const first = place(customer, items, 'tok_slow_approve', key); // the provider answers after 2 s
      let id: string | undefined;
      for (let i = 0; i < 100 && id === undefined; i++) {
        await sleep(20);
        id = (await h.call('GET', '/api/v1/orders', { token: h.token(customer) })).body.items?.[0]?.id as string | undefined;
      }
      assert.ok(id, 'the order was written before the charge');
      const cancel = await h.call('POST', `/api/v1/orders/${id}/cancel`, { token: h.token(customer) });
      assert.equal(cancel.status, 200, cancel.text);
      const answered = await first;
      assert.equal(answered.status, 201, answered.text);
      assert.equal(answered.body.status, 'CANCELLED', 'the first request answers with the order as it is');
      const retry = await place(customer, items, 'tok_slow_approve', key);
      assert.equal(retry.status, 201, `a retry: ${retry.text}`);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.body.status, 'CANCELLED');
      // the charge was taken after the cancellation: it is refunded, once
      await h.service.refund();
      assert.deepEqual((await consume(id, 3)).map((e) => e.type), ['order.created', 'order.cancelled', 'order.refunded']);
    } finally {
      await h.restart();
    }
  });

  it('a key its request left IN_FLIGHT (no charge: the answer to its commit was lost, or the process died) ends: a retry takes the order over, or gets the cancelled order', async () => {
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    const orphan = async (customer: string, key: string, items: { productId: string; quantity: number }[]): Promise<string> => {
      const body = parseBody(createOrderBody, orderBody(items, 'tok_approve_visa'));
      const orderId = crypto.randomUUID();
      await c.query('SELECT oms.place_order($1, $2, $3, $4, $5, $6, $7, $8)', [orderId, customer, `${customer}@shop.example`, key,
        requestFingerprint('POST', '/api/v1/orders', body), 'tok_approve_visa', items.map((i) => i.productId), items.map((i) => i.quantity)]);
      // as long ago as a request that is surely over
      await c.query("UPDATE oms.idempotency_keys SET updated_at = now() - interval '1 minute' WHERE order_id = $1", [orderId]);
      return orderId;
    };
    try {
      const items = [{ productId: 'BOOK-0002', quantity: 1 }];
      // the retry charges it (the provider charges an order id once) and settles it
      const key = newKey();
      const orderId = await orphan('cust-orphan', key, items);
      const resumed = await place('cust-orphan', items, 'tok_approve_visa', key);
      assert.equal(resumed.status, 201, resumed.text);
      assert.equal(resumed.body.id, orderId);
      assert.equal(resumed.body.status, 'CONFIRMED');
      const replay = await place('cust-orphan', items, 'tok_approve_visa', key);
      assert.equal(replay.status, 201);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      // cancelled by the customer meanwhile: the key ends with the cancelled order
      const key2 = newKey();
      const cancelledId = await orphan('cust-orphan', key2, items);
      assert.equal((await h.call('POST', `/api/v1/orders/${cancelledId}/cancel`, { token: h.token('cust-orphan') })).status, 200);
      const after = await place('cust-orphan', items, 'tok_approve_visa', key2);
      assert.equal(after.status, 201, after.text);
      assert.equal(after.body.status, 'CANCELLED');
      const { rows } = await c.query<{ state: string }>('SELECT state FROM oms.idempotency_keys WHERE order_id = ANY($1)', [[orderId, cancelledId]]);
      assert.deepEqual(rows.map((r) => r.state), ['DONE', 'DONE']);
    } finally {
      await c.end();
    }
  });

  it('events of one order are published in commit order: a move that began before another one committed but came after it is not put ahead of it', async () => {
    const r = await place('cust-race', [{ productId: 'MUG-0001', quantity: 1 }], 'tok_timeout_1');
    assert.equal(r.status, 202, r.text);
    const id = String(r.body.id);
    const early = h.stack.postgres!.admin('orders');
    const other = h.stack.postgres!.admin('orders');
    await early.connect();
    await other.connect();
    try {
      // a staff cancellation's transaction begins...
      await early.query('BEGIN');
      await early.query("SELECT set_config('oms.scope', 'staff', true)");
      await sleep(50);
      // ...the payment's outcome is applied and committed meanwhile...
      await other.query('SELECT oms.settle_order($1, true, $2, $3)', [id, 'sim_race', '{}']);
      // ...and the cancellation, reading the order as it now is, moves it after that commit
      await moveOrder(early, id, 'CANCELLED', 'staff');
      await early.query('COMMIT');
      const { rows } = await other.query<{ event_type: string }>('SELECT event_type FROM oms.outbox WHERE aggregate_id = $1 ORDER BY created_at, id', [id]);
      assert.deepEqual(rows.map((e) => e.event_type), ['order.created', 'order.confirmed', 'order.cancelled'], 'the relay\'s order is the commit order');
      assert.deepEqual((await consume(id, 3)).map((e) => e.type), ['order.created', 'order.confirmed', 'order.cancelled'], 'and so is Kafka\'s');
    } finally {
      await early.end();
      await other.end();
    }
  });

  it('purges rows past their retention (published outbox events, finished keys) in batches, and nothing else', async () => {
    const items = [{ productId: 'MUG-0001', quantity: 1 }];
    const [old, recent] = [await place('cust-purge', items), await place('cust-purge', items)];
    assert.equal(old.status, 201);
    assert.equal(recent.status, 201);
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    const count = async (sql: string, id: string): Promise<number> => Number((await c.query<{ n: string }>(sql, [id])).rows[0]!.n);
    const events = (id: string): Promise<number> => count('SELECT count(*) n FROM oms.outbox WHERE aggregate_id = $1', id);
    const keys = (id: string): Promise<number> => count('SELECT count(*) n FROM oms.idempotency_keys WHERE order_id = $1', id);
    try {
      for (let i = 0; i < 100 && await count('SELECT count(*) n FROM oms.outbox WHERE aggregate_id = $1 AND published_at IS NULL', String(old.body.id)) > 0; i++) await sleep(50);
      // the old order's events published 8 days ago and its key finished 25 hours ago; one of them not yet published
      await c.query("UPDATE oms.outbox SET published_at = now() - interval '8 days' WHERE aggregate_id = $1", [old.body.id]);
      await c.query("UPDATE oms.idempotency_keys SET updated_at = now() - interval '25 hours' WHERE order_id = $1", [old.body.id]);
      await c.query("UPDATE oms.outbox SET published_at = NULL, created_at = now() - interval '9 days' WHERE id = (SELECT id FROM oms.outbox WHERE aggregate_id = $1 AND event_type = 'order.created')", [recent.body.id]);
      await h.restart((cfg) => { cfg.retention.batch = 10; }); // more than one batch where there is more
      const purged = await h.service.purge();
      assert.ok(purged.outbox >= 2 && purged.idempotencyKeys >= 1, JSON.stringify(purged));
      assert.equal(await events(String(old.body.id)), 0, 'the old order\'s published events');
      assert.equal(await keys(String(old.body.id)), 0, 'the old order\'s finished key');
      assert.equal(await count('SELECT count(*) n FROM oms.orders WHERE id = $1', String(old.body.id)), 1, 'the order itself stays');
      assert.equal(await events(String(recent.body.id)), 2, 'the recent order\'s events, the unpublished old one included');
      assert.equal(await keys(String(recent.body.id)), 1);
      assert.match((await h.call('GET', '/metrics')).text, /oms_purged_rows_total\{table="outbox"\} [1-9]/);
    } finally {
      await c.end();
      await h.restart();
    }
  });

  it('cancelling a paid order refunds its charge once, and the refund is an event of its own; an order never charged gets none', async () => {
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    const refundOf = async (id: string): Promise<{ refund_state: string | null; refund_reference: string | null }> =>
      (await c.query<{ refund_state: string | null; refund_reference: string | null }>('SELECT refund_state, refund_reference FROM oms.orders WHERE id = $1', [id])).rows[0]!;
    try {
      const paid = await place('cust-refund', [{ productId: 'MUG-0001', quantity: 1 }]);
      assert.equal(paid.body.status, 'CONFIRMED');
      const id = String(paid.body.id);
      assert.equal((await h.call('POST', `/api/v1/orders/${id}/cancel`, { token: h.token('cust-refund') })).status, 200);
      assert.deepEqual(await refundOf(id), { refund_state: 'DUE', refund_reference: null }, 'due in the cancellation\'s own transaction');
      assert.ok(await h.service.refund() >= 1);
      assert.equal(await h.service.refund(), 0, 'a second round finds nothing due');
      assert.deepEqual(await refundOf(id), { refund_state: 'DONE', refund_reference: `sim_refund_${id}` });
      assert.deepEqual((await consume(id, 4)).map((e) => e.type), ['order.created', 'order.confirmed', 'order.cancelled', 'order.refunded']);

      // a charge never answered, then cancelled: voided at the provider, nothing to refund, no refund event
      const pending = await place('cust-refund', [{ productId: 'MUG-0001', quantity: 1 }], 'tok_timeout_refund');
      assert.equal(pending.status, 202);
      const pid = String(pending.body.id);
      assert.equal((await h.call('POST', `/api/v1/orders/${pid}/cancel`, { token: h.token('cust-refund') })).status, 200);
      await h.service.refund();
      assert.deepEqual(await refundOf(pid), { refund_state: 'NOTHING', refund_reference: null });
      assert.deepEqual((await consume(pid, 2)).map((e) => e.type), ['order.created', 'order.cancelled']);
    } finally {
      await c.end();
    }
  });

  it('two instances: both relays run, every event is published exactly once, in order per order', async () => {
    const second = await startService({ ...h.config, http: { ...h.config.http, port: await freePort() } }, createLogger({ service: 'order-service', level: 'silent' }));
    try {
      const ids: string[] = [];
      await Promise.all(Array.from({ length: 30 }, async (_, i) => {
        const r = await place(`cust-two-${String(i % 5)}`, [{ productId: 'BOOK-0001', quantity: 1 }], i % 3 === 0 ? 'tok_decline_x' : 'tok_approve_x');
        assert.ok(r.status === 201 || r.status === 402, r.text);
        ids.push(String(r.body.id ?? r.body.order.id));
      }));
      const events = await consume(ids, 60);
      assert.equal(events.length, 60, 'no event twice');
      assert.equal(new Set(events.map((e) => e.id)).size, 60);
      for (const id of ids) {
        const types = events.filter((e) => e.orderId === id).map((e) => e.type);
        assert.equal(types[0], 'order.created', `${id}: ${types.join(',')}`);
      }
      // the relay places each event itself (one send per partition): on its key's partition, as the producer would
      for (const e of events) assert.equal(e.partition, e.keyPartition, `${e.id} (order ${e.orderId}) on partition ${String(e.partition)}, its key's is ${String(e.keyPartition)}`);
      assert.ok(new Set(events.map((e) => e.partition)).size > 1, 'the events of 30 orders spread over several partitions');
    } finally {
      await second.stop();
    }
  });

  it('migrations are versioned and run once: a second run applies nothing', async () => {
    const [orders] = serviceDatabases().filter((d) => d.name === 'orders');
    assert.ok(orders);
    assert.deepEqual(await migrate(h.stack.postgres!.socketDir, h.stack.postgres!.port, orders), []);
    const c = h.stack.postgres!.admin('orders');
    await c.connect();
    try {
      const { rows } = await c.query<{ file: string }>('SELECT file FROM oms_migrations.applied ORDER BY file');
      assert.deepEqual(rows.map((r) => r.file), ['0001_orders.sql', '0002_payments.sql', '0003_customer_email.sql', '0004_order_functions.sql', '0005_outbox_commit_order.sql', '0006_retention.sql', '0007_keys_and_refunds.sql',
        '0008_request_id.sql']);
    } finally {
      await c.end();
    }
  });

  it('shuts down gracefully: a request in progress completes, then the service stops and is not ready', async () => {
    const slow = place('cust-j', [{ productId: 'MUG-0001', quantity: 1 }], 'tok_timeout_slow');
    await sleep(50);
    await h.restart();
    const r = await slow;
    assert.equal(r.status, 202, r.text);
    assert.ok(h.logs.some((l) => l.msg === 'stopped'));
    assert.equal((await h.call('GET', '/readyz')).status, 200, 'the restarted service is ready');
  });
});

interface SeenEvent { id: string; type: string; key: string; headerId: string; requestId: string | undefined; orderId: string; email: string | undefined; partition: number; keyPartition: number }

/**
 * Reads the order events topic (as notification-service, its group) until `count` events of the given orders came,
 * then listens one more second so that a duplicate would be seen too.
 */
async function consume(orderIds: string | string[], count: number): Promise<SeenEvent[]> {
  const wanted = new Set(Array.isArray(orderIds) ? orderIds : [orderIds]);
  const kafka = h.stack.kafka!;
  const tls = h.stack.pki.client('notification-service');
  const client = new Kafka({
    clientId: 'order-service-test', brokers: [kafka.bootstrap], logLevel: logLevel.NOTHING,
    ssl: { ca: readFileSync(tls.ca, 'utf8'), cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8') },
    sasl: { mechanism: 'scram-sha-512', username: 'notification-service', password: kafka.passwords['notification-service']! },
  });
  const consumer = client.consumer({ groupId: 'notification-service', maxWaitTimeInMs: 100 });
  const seen: SeenEvent[] = [];
  const admin = client.admin();
  await admin.connect();
  const { topics: [topic] } = await admin.fetchTopicMetadata({ topics: ['oms.order-events'] }).finally(() => admin.disconnect());
  const partitionOfKey = Partitioners.DefaultPartitioner();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: 'oms.order-events', fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`only ${String(seen.length)} of ${String(count)} events in 30 s`)); }, 30_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          // every event the SQL functions and the relay make must be one the consumers take (the kit's one schema)
          const parsed = orderEventSchema.safeParse(JSON.parse(message.value?.toString() ?? '{}'));
          if (!parsed.success) {
            clearTimeout(timer);
            reject(new Error(`the relay published an event the consumers refuse: ${message.value?.toString() ?? ''}: ${parsed.error.message}`));
            return;
          }
          const event = parsed.data;
          if (wanted.has(event.data.orderId)) {
            seen.push({ id: event.id, type: event.type, orderId: event.data.orderId, key: message.key?.toString() ?? '', headerId: message.headers?.['event-id']?.toString() ?? '', requestId: message.headers?.['request-id']?.toString(), email: event.data.customerEmail,
              partition, keyPartition: partitionOfKey({ topic: 'oms.order-events', partitionMetadata: topic?.partitions ?? [], message: { key: message.key, value: null } }) });
          }
          if (seen.length === count) { clearTimeout(timer); setTimeout(resolve, 1000); }
          await Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
