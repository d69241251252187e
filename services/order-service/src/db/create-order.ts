// The order-creation transaction: what the order service runs for POST /orders, shared with the drills and
// `npm run bench -- db` so that they measure exactly what the service will do. Schema: ../../migrations.
//
// ONE transaction claims the Idempotency-Key, reserves stock with a conditional UPDATE (never below zero), writes the
// order, its items, its history and an outbox event: oms.place_order (migrations/0004_order_functions.sql), one
// statement, so one round trip, and its own transaction. With Patroni's synchronous_mode, the statement returns only
// once the synchronous standby has the commit: an acknowledged order survives the loss of the primary.
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
  /** the request that places it: its order.created event carries it (migrations/0008_request_id.sql) */
  requestId?: string;
}

export type CreateOrderResult =
  /** soldOut: products this order took the last units of (their availability changed: the catalog cache is stale) */
  | { kind: 'created'; orderId: string; totalCents: number; currency: string; soldOut: string[] }
  | { kind: 'replay'; orderId: string | null; state: 'IN_FLIGHT' | 'DONE'; sameRequest: boolean; responseStatus: number | null; responseBody: unknown }
  | { kind: 'out_of_stock'; productId: string }
  | { kind: 'unknown_product'; productId: string };

/**
 * The order's statement was sent but no answer came, or an answer that does not say it was rolled back (connection
 * lost, timeout, failover): the order may or may not exist. The caller must not report failure: it retries with the
 * same key, or reports the outcome as unknown.
 */
export class CommitOutcomeUnknown extends Error {
  constructor(orderId: string, cause: unknown) {
    super(`order ${orderId}: sent, outcome not known (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'CommitOutcomeUnknown';
  }
}

/** Acts for the customer in this transaction (Row Level Security reads these settings). */
export async function actAs(client: ClientBase, scope: 'customer' | 'staff' | 'system', customerId = '', requestId = ''): Promise<void> {
  await client.query({
    name: 'oms.act-as',
    text: "SELECT set_config('oms.scope', $1, true), set_config('oms.customer_id', $2, true), set_config('oms.request_id', $3, true)",
    values: [scope, customerId, requestId],
  });
}

/** SQLSTATEs oms.place_order refuses with (the product id as the error's detail). */
const OUT_OF_STOCK = 'OMS01';
const UNKNOWN_PRODUCT = 'OMS02';

/**
 * Error classes that mean the server refused the statement and rolled its transaction back: anything else (no
 * answer, the connection lost, the server shutting down or cancelling while the commit waits for the synchronous
 * standby, which leaves it committed locally) leaves the outcome open.
 */
const ROLLED_BACK_CLASSES = new Set(['22', '23', '25', '40', '42', '44', 'P0']);

/** True when `error` is the server's refusal of a statement, whose transaction is therefore rolled back. */
export function rolledBack(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && (ROLLED_BACK_CLASSES.has(code.slice(0, 2)) || code.startsWith('OMS'));
}

/**
 * Creates the order in one transaction (one statement). The client must not be inside a transaction. A failure that
 * is not the server's refusal leaves the outcome unknown to the caller: it must retry with the same key (and order
 * id), never with a new one.
 */
export async function createOrder(client: ClientBase, order: NewOrder): Promise<CreateOrderResult> {
  // the lines in the byte order of their ids, as oms.place_order takes their stock (and numbers them)
  const lines = [...order.lines].sort((a, b) => compareIds(a.productId, b.productId));
  try {
    const { rows } = await client.query<{ result: CreateOrderResult }>({
      name: 'oms.place-order',
      text: 'SELECT oms.place_order($1, $2, $3, $4, $5, $6, $7, $8, $9) AS result',
      values: [order.orderId, order.customerId, order.customerEmail, order.idempotencyKey, order.requestSha256, order.paymentToken ?? null,
        lines.map((l) => l.productId), lines.map((l) => l.quantity), order.requestId ?? null],
    });
    const result = rows[0]?.result;
    if (!result) throw new Error('oms.place_order answered nothing');
    return result;
  } catch (error) {
    const { code, detail } = error as { code?: unknown; detail?: unknown };
    if (code === OUT_OF_STOCK || code === UNKNOWN_PRODUCT) {
      return { kind: code === OUT_OF_STOCK ? 'out_of_stock' : 'unknown_product', productId: String(detail) };
    }
    if (rolledBack(error)) throw error;
    throw new CommitOutcomeUnknown(order.orderId, error);
  }
}

/** Product ids in byte order (COLLATE "C" in the database): the one lock order of every stock change. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
