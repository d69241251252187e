// The order's life, as one explicit table: which status may follow which, and who may make the move. Every change
// of status goes through `transition`, and the repository applies it with optimistic locking (version); the payment's
// outcome (PENDING_PAYMENT -> CONFIRMED or PAYMENT_FAILED, by the system) is applied in the database by
// oms.settle_order, under the row's lock, as this table allows (its test holds the two together).
export const ORDER_STATUSES = ['PENDING_PAYMENT', 'CONFIRMED', 'PAYMENT_FAILED', 'CANCELLED', 'SHIPPED', 'DELIVERED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** who asks: the customer who owns the order, staff, or the service itself (payment outcome, recovery sweep) */
export type Actor = 'customer' | 'staff' | 'system';

interface Move {
  to: OrderStatus;
  by: readonly Actor[];
}

const MOVES: Record<OrderStatus, readonly Move[]> = {
  PENDING_PAYMENT: [
    { to: 'CONFIRMED', by: ['system'] },
    { to: 'PAYMENT_FAILED', by: ['system'] },
    { to: 'CANCELLED', by: ['customer', 'staff', 'system'] },
  ],
  CONFIRMED: [
    { to: 'CANCELLED', by: ['customer', 'staff'] },
    { to: 'SHIPPED', by: ['staff'] },
  ],
  SHIPPED: [{ to: 'DELIVERED', by: ['staff'] }],
  PAYMENT_FAILED: [],
  CANCELLED: [],
  DELIVERED: [],
};

/** statuses whose reserved stock goes back to the shelf when the order ends in them */
export const RELEASES_STOCK: ReadonlySet<OrderStatus> = new Set(['PAYMENT_FAILED', 'CANCELLED']);

export type TransitionCheck =
  | { ok: true }
  | { ok: false; reason: 'not_allowed'; detail: string }
  | { ok: false; reason: 'forbidden'; detail: string };

/** Whether `actor` may move an order from `from` to `to`; a refusal says why in words a client can read. */
export function transition(from: OrderStatus, to: OrderStatus, actor: Actor): TransitionCheck {
  const move = MOVES[from].find((m) => m.to === to);
  if (!move) {
    const next = MOVES[from].map((m) => m.to);
    return { ok: false, reason: 'not_allowed', detail: `an order in ${from} cannot become ${to}${next.length ? ` (it can become ${next.join(', ')})` : ' (it is final)'}` };
  }
  if (!move.by.includes(actor)) return { ok: false, reason: 'forbidden', detail: `${from} -> ${to} is for ${move.by.join(' or ')}, not ${actor}` };
  return { ok: true };
}

export function isOrderStatus(value: unknown): value is OrderStatus {
  return typeof value === 'string' && (ORDER_STATUSES as readonly string[]).includes(value);
}
