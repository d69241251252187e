// The recovery sweep (saga compensation): orders still PENDING_PAYMENT after `pendingAfterSeconds` lost their
// payment's answer (a provider timeout, or the service died between the order's commit and the charge's outcome).
// The sweep asks the provider what became of each charge: approved -> CONFIRMED; declined -> PAYMENT_FAILED, which
// puts the reserved stock back; never decided -> voided at the provider first (so it can never be taken later), then
// PAYMENT_FAILED (or CONFIRMED, when the void finds it was taken after all). Every instance may sweep: each order is taken with
// FOR UPDATE SKIP LOCKED, so two sweeps never resolve the same order, and the move is checked by the state machine.
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { CatalogCache } from '../catalog/cache.ts';
import type { ChargeOutcome, PaymentProvider } from '../payments/provider.ts';
import { inScope } from './repository.ts';
import { settleIn } from './service.ts';

export interface SweepDeps {
  pool: Pool;
  payments: PaymentProvider;
  catalog: CatalogCache;
  log: Logger;
}

/** Resolves every order pending longer than `pendingAfterSeconds`; returns how many it resolved. */
export async function sweepOnce(deps: SweepDeps, pendingAfterSeconds: number): Promise<number> {
  let resolved = 0;
  for (;;) {
    // one order per transaction: the row stays locked from the pick to the move, no other sweep takes it meanwhile
    const settled = await inScope(deps.pool, { actor: 'system', customerId: '' }, async (client) => {
      const { rows } = await client.query<{ id: string; total_cents: string; currency: string; payment_token: string | null }>(
        `SELECT id, total_cents, currency, payment_token FROM oms.orders
         WHERE status = 'PENDING_PAYMENT' AND updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [pendingAfterSeconds],
      );
      const row = rows[0];
      if (!row) return undefined;
      const charge = { orderId: row.id, amountCents: Number(row.total_cents), currency: row.currency, token: row.payment_token ?? '' };
      const found = row.payment_token === null ? { status: 'unknown' as const } : await deps.payments.lookup(charge);
      let outcome: ChargeOutcome;
      if (found.status !== 'unknown') outcome = found;
      else if (row.payment_token === null) outcome = { status: 'declined', reason: 'no payment was attempted' };
      else {
        // never decided: void it, so that it cannot be taken after the order failed; too late means it was taken
        const voided = await deps.payments.void(charge);
        deps.log.info({ orderId: row.id, void: voided.status }, 'a charge never decided: voided at the provider');
        outcome = voided.status === 'charged' ? { status: 'approved', reference: voided.reference } : { status: 'declined', reason: 'no answer from the payment provider; the charge was voided' };
      }
      return settleIn(client, row.id, outcome, `/api/v1/orders/${row.id}`);
    });
    if (!settled) return resolved;
    if (settled.released) await deps.catalog.invalidate(`stock of ${settled.order.id} released`);
    deps.log.info({ orderId: settled.order.id, status: settled.order.status }, 'recovery sweep resolved a pending order');
    resolved += 1;
  }
}
