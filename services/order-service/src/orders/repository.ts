// Orders in PostgreSQL, read and moved through their states. Every query runs in a transaction that says whom it acts
// for (actAs: Row Level Security lets a customer see only their own rows, whatever the query); status changes are
// checked by the state machine and applied with optimistic locking (the version the client saw must still be there).
import type { ClientBase, Pool, PoolClient } from 'pg';
import { withClient } from '@oms/service-common/with-client';
import { actAs, compareIds } from '../db/create-order.ts';
import { ApiError } from '../http/problem.ts';
import { RELEASES_STOCK, transition, type Actor, type OrderStatus } from './state-machine.ts';

export interface Scope {
  actor: Actor;
  /** the customer a customer-scoped transaction acts for ('' for staff and system) */
  customerId: string;
  /** the request the transaction serves: the events it writes carry it */
  requestId?: string;
}

/** An order as the API shows it: built by the database, oms.order_view (migrations/0004_order_functions.sql). */
export interface OrderView {
  id: string;
  customerId: string;
  /** the address the order is confirmed to (null for orders placed before it was kept) */
  customerEmail: string | null;
  status: OrderStatus;
  totalCents: number;
  currency: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  items: { productId: string; quantity: number; unitPriceCents: number }[];
}

/** Runs `work` in one transaction acting for `scope`; rolls back on any error. */
export async function inScope<T>(pool: Pool, scope: Scope, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      await actAs(client, scope.actor === 'customer' ? 'customer' : scope.actor, scope.customerId, scope.requestId);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/** One order, or not-found (also for another customer's order: RLS hides it, and so does the answer). One round trip. */
export async function getOrder(client: ClientBase, id: string): Promise<OrderView> {
  const { rows } = await client.query<{ view: OrderView }>({
    name: 'oms.get-order',
    text: 'SELECT oms.order_view(o) AS view FROM oms.orders o WHERE o.id = $1',
    values: [id],
  });
  const row = rows[0];
  if (!row) throw new ApiError('not-found', `no order ${id}`);
  return row.view;
}

export interface Page<T> {
  items: T[];
  /** pass as `after` for the next page; absent on the last page */
  next?: string;
}

/** A customer's orders, newest first, by keyset pagination (stable while new orders arrive). */
export async function listOrders(client: ClientBase, customerId: string | undefined, pageSize: number, after?: string): Promise<Page<OrderView>> {
  const cursor = after === undefined ? undefined : decodeCursor(after);
  const { rows } = await client.query<{ view: OrderView; created_at: Date; id: string }>(
    `SELECT oms.order_view(o) AS view, o.created_at, o.id FROM oms.orders o
     WHERE ($1::text IS NULL OR customer_id = $1)
       AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid))
     ORDER BY created_at DESC, id DESC
     LIMIT $4`,
    [customerId ?? null, cursor?.createdAt ?? null, cursor?.id ?? null, pageSize + 1],
  );
  const page = rows.slice(0, pageSize);
  const last = page.at(-1);
  return {
    items: page.map((r) => r.view),
    ...(rows.length > pageSize && last ? { next: encodeCursor(last.created_at, last.id) } : {}),
  };
}

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

export function decodeCursor(text: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'string' && !Number.isNaN(Date.parse(createdAt)) && typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)) return { createdAt, id };
  } catch {
    // fall through: a cursor the client made up
  }
  throw new ApiError('bad-request', 'after: not a cursor this API gave out');
}

export interface HistoryEntry {
  from: OrderStatus | null;
  to: OrderStatus;
  actor: string;
  at: string;
}

export async function orderHistory(client: ClientBase, id: string): Promise<HistoryEntry[]> {
  await getOrder(client, id);
  const { rows } = await client.query<{ from_status: OrderStatus | null; to_status: OrderStatus; actor: string; at: Date }>(
    'SELECT from_status, to_status, actor, at FROM oms.order_history WHERE order_id = $1 ORDER BY id',
    [id],
  );
  return rows.map((r) => ({ from: r.from_status, to: r.to_status, actor: r.actor, at: r.at.toISOString() }));
}

/**
 * Moves an order to `to` if the state machine lets `actor` do it and the order is still at `expectedVersion` (when
 * given); writes its history and an outbox event in the same transaction, and puts reserved stock back when the
 * order ends unfulfilled. `read`: the order as this transaction already read it (saves reading it again);
 * `paymentReference`: the provider's reference, stored with the move to CONFIRMED.
 */
export async function moveOrder(client: ClientBase, id: string, to: OrderStatus, actor: Actor, expectedVersion?: number, read?: OrderView, paymentReference?: string): Promise<OrderView> {
  const current = read ?? await getOrder(client, id);
  if (expectedVersion !== undefined && current.version !== expectedVersion) {
    throw new ApiError('version-conflict', `order ${id} is at version ${String(current.version)}, not ${String(expectedVersion)}: read it again`, { currentVersion: current.version });
  }
  const check = transition(current.status, to, actor);
  if (!check.ok) throw new ApiError(check.reason === 'forbidden' ? 'forbidden' : 'transition-not-allowed', check.detail);
  const { rowCount } = await client.query({
    name: 'oms.move-order',
    // a cancellation once the charge was taken or may have been (in flight, never answered) makes a refund due in the
    // same transaction (payments/refunds.ts voids or refunds it); SET reads the row's status before this update
    text: `UPDATE oms.orders SET status = $2, version = version + 1, updated_at = now(), payment_reference = coalesce($4, payment_reference),
             refund_state = CASE WHEN $2 = 'CANCELLED' AND status IN ('CONFIRMED', 'PENDING_PAYMENT') AND payment_token IS NOT NULL THEN 'DUE' ELSE refund_state END
           WHERE id = $1 AND version = $3`,
    values: [id, to, current.version, paymentReference ?? null],
  });
  if (rowCount !== 1) throw new ApiError('version-conflict', `order ${id} changed meanwhile: read it again`);
  if (RELEASES_STOCK.has(to)) {
    for (const item of [...current.items].sort((a, b) => compareIds(a.productId, b.productId))) {
      await client.query('UPDATE oms.products SET stock = stock + $2, version = version + 1, updated_at = now() WHERE id = $1', [item.productId, item.quantity]);
    }
  }
  // the history entry and the event in one statement (one round trip)
  await client.query({
    name: 'oms.record-move',
    text: `WITH history AS (
       INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor) VALUES ($1, $2, $3, $4, $5)
     )
     INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload) VALUES (gen_random_uuid(), $1, $6, $2, $7)`,
    values: [id, current.customerId, current.status, to, actor, `order.${to.toLowerCase().replace(/_/g, '-')}`,
      JSON.stringify({ orderId: id, customerId: current.customerId, customerEmail: current.customerEmail, from: current.status, status: to, totalCents: current.totalCents, currency: current.currency })],
  });
  return { ...current, status: to, version: current.version + 1 };
}
