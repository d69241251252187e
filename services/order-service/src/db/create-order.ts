// The order-creation transaction: the statements the order service runs for POST /orders, shared with the drills
// and `npm run bench -- db` so that they measure exactly what the service will do. Schema: ../../migrations.
//
// ONE transaction claims the Idempotency-Key, reserves stock with a conditional UPDATE (never below zero), writes the
// order, its items, its history and an outbox event. With Patroni's synchronous_mode, COMMIT returns only once the
// synchronous standby has the commit: an acknowledged order survives the loss of the primary.
//
// The hot path's statements are named (prepared once per connection, then only bound and executed: PostgreSQL parses
// and plans them once), and as few as the work allows: an order is 13 round trips in all, creation and settlement.
import { randomUUID } from 'node:crypto';
import type { ClientBase } from 'pg';

export interface OrderLine {
  productId: string;
  quantity: number;
}

export interface NewOrder {
  /** chosen by the caller: a retry of the same request uses the same id */
  orderId: string;
  customerId: string;
  /** where the customer is told about the order (the notification service reads it from the events) */
  customerEmail: string;
  idempotencyKey: string;
  /** sha256 of the request as the service received it; the same key with another body is refused */
  requestSha256: string;
  lines: OrderLine[];
  /** the payment provider's token, kept for the recovery sweep's lookup (omitted by the drills and the bench) */
  paymentToken?: string;
}

export type CreateOrderResult =
  /** soldOut: products this order took the last units of (their availability changed: the catalog cache is stale) */
  | { kind: 'created'; orderId: string; totalCents: number; currency: string; soldOut: string[] }
  | { kind: 'replay'; orderId: string | null; state: 'IN_FLIGHT' | 'DONE'; sameRequest: boolean; responseStatus: number | null; responseBody: unknown }
  | { kind: 'out_of_stock'; productId: string }
  | { kind: 'unknown_product'; productId: string };

/**
 * The COMMIT was sent but no answer came (connection lost, timeout, failover): the order may or may not exist. The
 * caller must not report failure: it retries with the same key, or reports the outcome as unknown.
 */
export class CommitOutcomeUnknown extends Error {
  constructor(orderId: string, cause: unknown) {
    super(`order ${orderId}: COMMIT sent but not acknowledged (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'CommitOutcomeUnknown';
  }
}

/** Acts for the customer in this transaction (Row Level Security reads these settings). */
export async function actAs(client: ClientBase, scope: 'customer' | 'staff' | 'system', customerId = ''): Promise<void> {
  await client.query({ name: 'oms.act-as', text: "SELECT set_config('oms.scope', $1, true), set_config('oms.customer_id', $2, true)", values: [scope, customerId] });
}

/**
 * Creates the order in one transaction. The client must not be inside a transaction. A COMMIT that fails or times
 * out leaves the outcome unknown to the caller: it must retry with the same key (and order id), never with a new one.
 */
export async function createOrder(client: ClientBase, order: NewOrder): Promise<CreateOrderResult> {
  let total = 0;
  let currency = '';
  const soldOut: string[] = [];
  await client.query('BEGIN');
  try {
    await actAs(client, 'customer', order.customerId);
    // the claim: a key already there (a retry, or a parallel request that got there first: this INSERT waits for its
    // transaction to end) leaves this one nothing to do but answer with what that request stored
    const claim = await client.query({
      name: 'oms.claim-key',
      text: `INSERT INTO oms.idempotency_keys (customer_id, key, request_sha256, state, order_id)
             VALUES ($1, $2, $3, 'IN_FLIGHT', $4) ON CONFLICT (customer_id, key) DO NOTHING`,
      values: [order.customerId, order.idempotencyKey, order.requestSha256, order.orderId],
    });
    if (claim.rowCount === 0) {
      const { rows } = await client.query<{ state: 'IN_FLIGHT' | 'DONE'; order_id: string | null; request_sha256: string; response_status: number | null; response_body: unknown }>(
        'SELECT state, order_id, request_sha256, response_status, response_body FROM oms.idempotency_keys WHERE customer_id = $1 AND key = $2',
        [order.customerId, order.idempotencyKey],
      );
      await client.query('COMMIT');
      const row = rows[0];
      return {
        kind: 'replay', orderId: row?.order_id ?? null, state: row?.state ?? 'IN_FLIGHT', sameRequest: row?.request_sha256 === order.requestSha256,
        responseStatus: row?.response_status ?? null, responseBody: row?.response_body ?? null,
      };
    }

    const priced: { productId: string; quantity: number; unitPriceCents: number }[] = [];
    // a fixed lock order (by product id) keeps concurrent orders of the same products from deadlocking
    for (const line of [...order.lines].sort((a, b) => a.productId.localeCompare(b.productId))) {
      const { rows } = await client.query<{ price_cents: string; currency: string; stock: number }>({
        name: 'oms.reserve-stock',
        text: `UPDATE oms.products SET stock = stock - $2, version = version + 1, updated_at = now()
               WHERE id = $1 AND stock >= $2 RETURNING price_cents, currency, stock`,
        values: [line.productId, line.quantity],
      });
      const row = rows[0];
      if (!row) {
        const known = await client.query('SELECT 1 FROM oms.products WHERE id = $1', [line.productId]);
        await client.query('ROLLBACK');
        return { kind: known.rowCount === 0 ? 'unknown_product' : 'out_of_stock', productId: line.productId };
      }
      if (row.stock === 0) soldOut.push(line.productId);
      const price = Number(row.price_cents);
      total += price * line.quantity;
      currency = row.currency;
      priced.push({ ...line, unitPriceCents: price });
    }

    // the order, its items, its history and its event in one statement (one round trip; the items' foreign key is
    // checked at the statement's end, when the order row is there)
    await client.query({
      name: 'oms.place-order',
      text: `WITH placed AS (
         INSERT INTO oms.orders (id, customer_id, status, total_cents, currency, payment_token, customer_email)
         VALUES ($1, $2, 'PENDING_PAYMENT', $3, $4, $5, $11)
       ), lines AS (
         INSERT INTO oms.order_items (order_id, line, customer_id, product_id, quantity, unit_price_cents)
         SELECT $1, ordinality, $2, product_id, quantity, unit_price_cents
         FROM unnest($6::text[], $7::int[], $8::bigint[]) WITH ORDINALITY AS l(product_id, quantity, unit_price_cents)
       ), history AS (
         INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor)
         VALUES ($1, $2, NULL, 'PENDING_PAYMENT', 'customer')
       )
       INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload) VALUES ($9, $1, 'order.created', $2, $10)`,
      values: [order.orderId, order.customerId, total, currency, order.paymentToken ?? null,
        priced.map((l) => l.productId), priced.map((l) => l.quantity), priced.map((l) => l.unitPriceCents),
        randomUUID(), JSON.stringify({ orderId: order.orderId, customerId: order.customerId, customerEmail: order.customerEmail, status: 'PENDING_PAYMENT', totalCents: total, currency, lines: priced }),
        order.customerEmail],
    });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  try {
    await client.query('COMMIT');
  } catch (error) {
    throw new CommitOutcomeUnknown(order.orderId, error);
  }
  return { kind: 'created', orderId: order.orderId, totalCents: total, currency, soldOut };
}
