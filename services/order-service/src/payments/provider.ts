// The payment provider, behind one small interface so a real one (a card processor's API) can take the simulated
// one's place. Charges are idempotent by order id: asking again for the same order never charges twice, and the
// recovery sweep can ask what became of a charge whose answer never arrived.
export interface Charge {
  orderId: string;
  amountCents: number;
  currency: string;
  token: string;
}

export type ChargeOutcome =
  | { status: 'approved'; reference: string }
  | { status: 'declined'; reason: string };

export interface PaymentProvider {
  /** charges once per order id; rejects with PaymentTimeout when no answer comes within the deadline */
  charge(charge: Charge, timeoutMs: number): Promise<ChargeOutcome>;
  /** what became of an order's charge: its outcome, or unknown when the provider never decided */
  lookup(charge: Charge): Promise<ChargeOutcome | { status: 'unknown' }>;
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
 * Anything else is declined as an unknown card.
 */
export class SimulatedProvider implements PaymentProvider {
  static readonly SLOW_MS = 2000;

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

  private decide(charge: Charge): ChargeOutcome | { status: 'unknown' } {
    if (charge.token.startsWith('tok_approve') || charge.token.startsWith('tok_slow')) return { status: 'approved', reference: `sim_${charge.orderId}` };
    if (charge.token.startsWith('tok_decline')) return { status: 'declined', reason: 'card declined' };
    if (charge.token.startsWith('tok_timeout')) return { status: 'unknown' };
    return { status: 'declined', reason: 'unknown card' };
  }
}
