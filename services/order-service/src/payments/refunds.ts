// Compensation of cancelled orders (the saga's last step): an order cancelled once its charge was taken or may have
// been (CONFIRMED, or PENDING_PAYMENT with the charge in flight or never answered) is marked refund DUE in the
// cancellation's own transaction (repository.ts moveOrder; oms.settle_order for an approval that arrives after the
// cancellation). This worker takes each DUE order under its row lock (FOR UPDATE SKIP LOCKED: any number of
// instances) and asks the provider, idempotently by order id: a charge not known to be taken is voided first (so
// it never will be); a taken one is refunded. Refunded: DONE with the provider's reference and an order.refunded event
// (the customer's email says so); nothing taken: NOTHING, and no email. A provider that fails leaves it DUE for the
// next round: nothing is ever dropped.
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { inScope } from '../orders/repository.ts';
import type { PaymentProvider, RefundOutcome } from './provider.ts';

export interface RefundDeps {
  pool: Pool;
  payments: PaymentProvider;
  log: Logger;
}

interface DueRow {
  id: string;
  customer_id: string;
  customer_email: string;
  total_cents: string;
  currency: string;
  payment_token: string | null;
  payment_reference: string | null;
}

/** Settles every refund that is due; returns how many orders it settled. */
export async function refundOnce(deps: RefundDeps): Promise<number> {
  let settled = 0;
  for (;;) {
    const done = await inScope(deps.pool, { actor: 'system', customerId: '' }, async (client) => {
      const { rows: [row] } = await client.query<DueRow>(
        `SELECT id, customer_id, customer_email, total_cents, currency, payment_token, payment_reference FROM oms.orders
         WHERE refund_state = 'DUE' ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
      );
      if (!row) return undefined;
      const charge = { orderId: row.id, amountCents: Number(row.total_cents), currency: row.currency, token: row.payment_token ?? '' };
      let outcome: RefundOutcome = { status: 'nothing-charged' };
      if (row.payment_token !== null) {
        const voided = row.payment_reference === null ? await deps.payments.void(charge) : undefined;
        if (voided?.status !== 'voided') outcome = await deps.payments.refund(charge);
      }
      if (outcome.status === 'refunded') {
        await client.query(`UPDATE oms.orders SET refund_state = 'DONE', refund_reference = $2, updated_at = now() WHERE id = $1`, [row.id, outcome.reference]);
        await client.query(
          `INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload) VALUES (gen_random_uuid(), $1, 'order.refunded', $2, $3)`,
          [row.id, row.customer_id, JSON.stringify({ orderId: row.id, customerId: row.customer_id, customerEmail: row.customer_email, status: 'CANCELLED', totalCents: Number(row.total_cents), currency: row.currency, refundReference: outcome.reference })],
        );
      } else {
        await client.query(`UPDATE oms.orders SET refund_state = 'NOTHING', updated_at = now() WHERE id = $1`, [row.id]);
      }
      return { id: row.id, outcome };
    });
    if (!done) return settled;
    deps.log.info({ orderId: done.id, refund: done.outcome }, 'cancelled order compensated');
    settled += 1;
  }
}
