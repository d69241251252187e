// The payment provider, behind one small interface so a real one (a card processor's API) can take the simulated
// one's place. Every call is idempotent by order id: asking again for the same order never charges (or refunds)
// twice. The recovery sweep asks what became of a charge whose answer never arrived and voids one that was never
// decided; a cancelled order's charge is voided or refunded (refunds.ts).
export interface Charge {
  orderId: string;
  amountCents: number;
  currency: string;
  token: string;
}

export type ChargeOutcome =
  | { status: 'approved'; reference: string }
  | { status: 'declined'; reason: string };

export type VoidOutcome =
  /** no charge was taken, and none will be: a charge still in flight is declined */
  | { status: 'voided' }
  /** too late: the charge was taken (refund it) */
  | { status: 'charged'; reference: string };

export type RefundOutcome = { status: 'refunded'; reference: string } | { status: 'nothing-charged' };

export interface PaymentProvider {
  /** charges once per order id; rejects with PaymentTimeout when no answer comes within the deadline */
  charge(charge: Charge, timeoutMs: number): Promise<ChargeOutcome>;
  /** what became of an order's charge: its outcome, or unknown when the provider never decided */
  lookup(charge: Charge): Promise<ChargeOutcome | { status: 'unknown' }>;
  /** makes sure an order's charge is never taken, if it was not taken already */
  void(charge: Charge): Promise<VoidOutcome>;
  /** gives back what the order's charge took: once per order id, whatever how often asked */
  refund(charge: Charge): Promise<RefundOutcome>;
}

export class PaymentTimeout extends Error {
  override name = 'PaymentTimeout';
  constructor(orderId: string, timeoutMs: number) {
    super(`the payment provider did not answer for order ${orderId} within ${String(timeoutMs)} ms`);
  }
}

/**
 * The simulated provider of the lab and the tests: the token decides, as test cards do at real providers.
 *   tok_approve...  approved          tok_decline...  declined (card declined)
 *   tok_timeout...  never answers (the order waits for the recovery sweep, which finds no decision and fails it)
 *   tok_slow...     approved, after SLOW_MS (a charge still in flight while the customer acts on the order)
 * Anything else is declined as an unknown card. A charge the token would approve counts as taken at once: voiding it
 * is too late (refund it); any other is voided, and declined from then on. Voids are kept in this process only (each
 * app host has its simulation).
 */
export class SimulatedProvider implements PaymentProvider {
  static readonly SLOW_MS = 2000;
  private readonly voided = new Set<string>();

  constructor(private readonly latencyMs = 5) {}

  async charge(charge: Charge, timeoutMs: number): Promise<ChargeOutcome> {
    const outcome = this.decide(charge);
    const latency = charge.token.startsWith('tok_slow') ? SimulatedProvider.SLOW_MS : this.latencyMs;
    const answered = outcome.status !== 'unknown' && latency <= timeoutMs;
    await new Promise((resolve) => setTimeout(resolve, answered ? latency : timeoutMs));
    if (!answered) throw new PaymentTimeout(charge.orderId, timeoutMs);
    return outcome;
  }

  lookup(charge: Charge): Promise<ChargeOutcome | { status: 'unknown' }> {
    return Promise.resolve(this.decide(charge));
  }

  void(charge: Charge): Promise<VoidOutcome> {
    const outcome = this.decide(charge);
    if (outcome.status === 'approved') return Promise.resolve({ status: 'charged', reference: outcome.reference });
    this.voided.add(charge.orderId);
    return Promise.resolve({ status: 'voided' });
  }

  refund(charge: Charge): Promise<RefundOutcome> {
    const outcome = this.decide(charge);
    return Promise.resolve(outcome.status === 'approved' ? { status: 'refunded', reference: `sim_refund_${charge.orderId}` } : { status: 'nothing-charged' });
  }

  private decide(charge: Charge): ChargeOutcome | { status: 'unknown' } {
    if (this.voided.has(charge.orderId)) return { status: 'declined', reason: 'voided' };
    if (charge.token.startsWith('tok_approve') || charge.token.startsWith('tok_slow')) return { status: 'approved', reference: `sim_${charge.orderId}` };
    if (charge.token.startsWith('tok_decline')) return { status: 'declined', reason: 'card declined' };
    if (charge.token.startsWith('tok_timeout')) return { status: 'unknown' };
    return { status: 'declined', reason: 'unknown card' };
  }
}
