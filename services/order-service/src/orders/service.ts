// Placing an order: the Idempotency-Key claim, stock reservation and the order in ONE transaction (db/create-order),
// then the charge at the payment provider, then the outcome (CONFIRMED, or PAYMENT_FAILED with the stock released)
// with the key's stored response in a second transaction. A charge whose answer does not come in time leaves the
// order PENDING_PAYMENT for the recovery sweep (recovery.ts) and the client gets 202; a retry with the same key
// replays whatever response was stored, 409 while the first request may still be at work, and takes the order over
// once it cannot be (resumeInFlight): a key always ends.
import { randomUUID } from 'node:crypto';
import type { ClientBase, Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import type { CatalogCache } from '../catalog/cache.ts';
import { withClient } from '@oms/service-common/with-client';
import { CommitOutcomeUnknown, createOrder } from '../db/create-order.ts';
import { ApiError, toProblem, type ProblemDocument } from '../http/problem.ts';
import type { Metrics } from '../ops/metrics.ts';
import { PaymentTimeout, type Charge, type ChargeOutcome, type PaymentProvider } from '../payments/provider.ts';
import { getOrder, inScope, type OrderView } from './repository.ts';
import { requestFingerprint, type CreateOrderBody } from './schema.ts';

export interface OrdersDeps {
  pool: Pool;
  payments: PaymentProvider;
  paymentTimeoutMs: number;
  catalog: CatalogCache;
  metrics: Metrics;
  log: Logger;
}

export interface StoredResponse {
  status: number;
  body: unknown;
  /** true when this is the stored answer to an earlier request with the same key */
  replayed: boolean;
}

const DECLINED = 'the payment was declined; the order is closed and its stock released';

/** The problem document of a declined payment; oms.settle_order stores it with the order in it as `order`. */
function declinedProblem(path: string, order?: OrderView): ProblemDocument {
  return toProblem(new ApiError('payment-declined', DECLINED, order === undefined ? {} : { order }), { instance: path }).document;
}

/** The response an order's current state calls for (also what the key stores, and what a replay returns). */
export function responseFor(order: OrderView, path: string): { status: number; body: unknown } {
  if (order.status === 'PAYMENT_FAILED') return { status: 402, body: declinedProblem(path, order) };
  return { status: order.status === 'PENDING_PAYMENT' ? 202 : 201, body: order };
}

/** Stores the final response of the key that created `orderId` (no-op if it is no longer in flight). */
export async function finishKey(client: PoolClient, orderId: string, response: { status: number; body: unknown }): Promise<void> {
  await client.query({
    name: 'oms.finish-key',
    text: `UPDATE oms.idempotency_keys SET state = 'DONE', response_status = $2, response_body = $3, updated_at = now()
           WHERE order_id = $1 AND state = 'IN_FLIGHT'`,
    values: [orderId, response.status, JSON.stringify(response.body)],
  });
}

/**
 * Moves a pending order to the payment's outcome and stores its key's response: oms.settle_order, one statement (in
 * the caller's transaction, or its own). If someone else moved it first (the sweep, a cancellation), the order as it
 * now is stays as it is. The move is the state machine's PENDING_PAYMENT -> CONFIRMED | PAYMENT_FAILED by the system.
 */
export async function settleIn(client: ClientBase, orderId: string, outcome: ChargeOutcome, path: string, requestId?: string): Promise<{ order: OrderView; released: boolean }> {
  const { rows } = await client.query<{ settled: { order: OrderView; moved: boolean; released: boolean } | null }>({
    name: 'oms.settle-order',
    // the request that placed the order, for its event (migrations/0008_request_id.sql); none for the recovery sweep
    text: 'SELECT oms.settle_order($1, $2, $3, $4, $5) AS settled',
    values: [orderId, outcome.status === 'approved', outcome.status === 'approved' ? outcome.reference : null, JSON.stringify(declinedProblem(path)), requestId ?? null],
  });
  const settled = rows[0]?.settled;
  if (!settled) throw new ApiError('not-found', `no order ${orderId}`);
  return { order: settled.order, released: settled.released };
}

/** settleIn as a transaction of its own; released stock makes the catalog cache stale. */
export async function settlePayment(deps: Pick<OrdersDeps, 'pool' | 'catalog'>, orderId: string, outcome: ChargeOutcome, path: string, requestId?: string): Promise<OrderView> {
  const { order, released } = await withClient(deps.pool, (client) => settleIn(client, orderId, outcome, path, requestId));
  if (released) await deps.catalog.invalidate(`stock of ${orderId} released`);
  return order;
}

export async function placeOrder(deps: OrdersDeps, customer: { id: string; email: string }, key: string, body: CreateOrderBody, path: string, requestId?: string): Promise<StoredResponse> {
  const orderId = randomUUID();
  let result;
  try {
    result = await withClient(deps.pool, (client) => createOrder(client, {
      orderId, customerId: customer.id, customerEmail: customer.email, idempotencyKey: key, requestSha256: requestFingerprint('POST', '/api/v1/orders', body),
      lines: body.items, paymentToken: body.paymentToken, ...(requestId === undefined ? {} : { requestId }),
    }));
  } catch (error) {
    if (error instanceof CommitOutcomeUnknown) {
      deps.log.warn({ err: error, orderId }, 'order commit outcome unknown');
      throw new ApiError('unavailable', 'the order may or may not have been saved: retry with the same Idempotency-Key to find out');
    }
    throw error;
  }

  switch (result.kind) {
    case 'unknown_product':
      deps.metrics.orders.inc({ outcome: 'rejected' });
      throw new ApiError('unknown-product', `no product ${result.productId} in the catalog`, { productId: result.productId });
    case 'out_of_stock':
      deps.metrics.orders.inc({ outcome: 'out_of_stock' });
      throw new ApiError('out-of-stock', `not enough stock of ${result.productId}`, { productId: result.productId });
    case 'replay':
      if (!result.sameRequest) throw new ApiError('idempotency-key-reused', 'this Idempotency-Key was used for a different request; use a new key for a new order');
      if (result.state === 'DONE' && result.responseStatus !== null) {
        deps.metrics.orders.inc({ outcome: 'replayed' });
        return { status: result.responseStatus, body: result.responseBody, replayed: true };
      }
      if (result.orderId === null) throw new ApiError('request-in-flight', 'the first request with this Idempotency-Key is still being processed; retry shortly');
      return resumeInFlight(deps, result.orderId, path);
    case 'created':
      break;
  }
  deps.metrics.orders.inc({ outcome: 'created' });
  if (result.soldOut.length > 0) await deps.catalog.invalidate(`sold out: ${result.soldOut.join(', ')}`);
  return chargeAndSettle(deps, { orderId, amountCents: result.totalCents, currency: result.currency, token: body.paymentToken }, path, requestId);
}

/** Charges an order (once per order id at the provider, however often asked) and applies the outcome. */
async function chargeAndSettle(deps: OrdersDeps, charge: Charge, path: string, requestId?: string): Promise<StoredResponse> {
  let outcome: ChargeOutcome;
  try {
    outcome = await deps.payments.charge(charge, deps.paymentTimeoutMs);
  } catch (error) {
    // no answer (timeout or the provider failing): the charge may exist; the recovery sweep asks the provider later
    if (!(error instanceof PaymentTimeout)) deps.log.warn({ err: error, orderId: charge.orderId }, 'payment provider failed; left to the recovery sweep');
    deps.metrics.orders.inc({ outcome: 'payment_pending' });
    const pending = await inScope(deps.pool, { actor: 'system', customerId: '' }, async (c) => {
      const order = await getOrder(c, charge.orderId);
      if (order.status === 'PENDING_PAYMENT') await finishKey(c, charge.orderId, responseFor(order, path));
      return order;
    });
    return { ...responseFor(pending, path), replayed: false };
  }
  const order = await settlePayment(deps, charge.orderId, outcome, path, requestId);
  deps.metrics.orders.inc({ outcome: order.status === 'CONFIRMED' ? 'confirmed' : order.status === 'PAYMENT_FAILED' ? 'payment_failed' : 'other' });
  return { ...responseFor(order, path), replayed: false };
}

/** How long past the payment timeout a key may stay in flight before a retry takes the order over. */
export const RESUME_AFTER_MS = 5000;

/**
 * A retry finds its key still IN_FLIGHT: the first request is still at work, or it ended without an outcome (its
 * commit's answer was lost and the client got 503, or the process died between the order and the charge). The key
 * ends here: an order no longer pending is the key's answer (stored now); one pending for longer than a charge can
 * take is charged again (the provider charges an order id once) and settled by this request; otherwise 409, retry.
 */
async function resumeInFlight(deps: OrdersDeps, orderId: string, path: string): Promise<StoredResponse> {
  const found = await inScope(deps.pool, { actor: 'system', customerId: '' }, async (c) => {
    const order = await getOrder(c, orderId);
    if (order.status !== 'PENDING_PAYMENT') {
      const response = responseFor(order, path);
      await finishKey(c, orderId, response);
      return { response };
    }
    const { rows } = await c.query<{ age_ms: number; payment_token: string | null }>({
      name: 'oms.in-flight-key',
      text: `SELECT (extract(epoch FROM now() - k.updated_at) * 1000)::integer AS age_ms, o.payment_token
             FROM oms.idempotency_keys k JOIN oms.orders o ON o.id = k.order_id WHERE k.order_id = $1`,
      values: [orderId],
    });
    return { order, ageMs: rows[0]?.age_ms ?? 0, token: rows[0]?.payment_token ?? null };
  });
  if ('response' in found) {
    deps.metrics.orders.inc({ outcome: 'replayed' });
    return { ...found.response, replayed: true };
  }
  if (found.ageMs < deps.paymentTimeoutMs + RESUME_AFTER_MS || found.token === null) {
    throw new ApiError('request-in-flight', 'the first request with this Idempotency-Key is still being processed; retry shortly', { orderId });
  }
  deps.log.info({ orderId, keyAgeMs: found.ageMs }, 'a retry resumes an order its first request left without an outcome');
  deps.metrics.orders.inc({ outcome: 'resumed' });
  return chargeAndSettle(deps, { orderId, amountCents: found.order.totalCents, currency: found.order.currency, token: found.token }, path);
}
