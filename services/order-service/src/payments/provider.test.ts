import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PaymentTimeout, SimulatedProvider } from './provider.ts';

const charge = (token: string) => ({ orderId: '5b0e8a52-1f7e-4b38-9c0a-7d9f3f2c1a00', amountCents: 4200, currency: 'EUR', token });

describe('simulated payment provider', () => {
  const provider = new SimulatedProvider(1);

  it('the token decides: approve, decline, unknown card', async () => {
    assert.deepEqual(await provider.charge(charge('tok_approve_4242'), 1000), { status: 'approved', reference: 'sim_5b0e8a52-1f7e-4b38-9c0a-7d9f3f2c1a00' });
    assert.deepEqual(await provider.charge(charge('tok_decline_0002'), 1000), { status: 'declined', reason: 'card declined' });
    assert.deepEqual(await provider.charge(charge('tok_other'), 1000), { status: 'declined', reason: 'unknown card' });
  });

  it('a timeout token gets no answer within the deadline, and the lookup finds no decision', async () => {
    const started = performance.now();
    await assert.rejects(provider.charge(charge('tok_timeout_1'), 50), PaymentTimeout);
    assert.ok(performance.now() - started >= 45, 'it waited for the deadline');
    assert.deepEqual(await provider.lookup(charge('tok_timeout_1')), { status: 'unknown' });
  });

  it('a slow token is approved after SLOW_MS, or times out under a shorter deadline', async () => {
    const started = performance.now();
    assert.equal((await provider.charge(charge('tok_slow_1'), 5000)).status, 'approved');
    assert.ok(performance.now() - started >= SimulatedProvider.SLOW_MS - 5, 'it took SLOW_MS');
    await assert.rejects(provider.charge(charge('tok_slow_1'), 50), PaymentTimeout);
  });

  it('void: a charge never decided is voided and declined from then on; one already taken says so (refund it)', async () => {
    const sim = new SimulatedProvider(1);
    const undecided = { ...charge('tok_timeout_2'), orderId: '0d1f6a2e-3c4b-4d5e-8f70-8192a3b4c5d6' };
    assert.deepEqual(await sim.void(undecided), { status: 'voided' });
    assert.deepEqual(await sim.lookup(undecided), { status: 'declined', reason: 'voided' });
    assert.deepEqual(await sim.void(charge('tok_approve_4242')), { status: 'charged', reference: 'sim_5b0e8a52-1f7e-4b38-9c0a-7d9f3f2c1a00' });
  });

  it('refund: what a charge took, the same refund however often asked; nothing when nothing was taken', async () => {
    const sim = new SimulatedProvider(1);
    const first = await sim.refund(charge('tok_approve_4242'));
    assert.deepEqual(first, { status: 'refunded', reference: 'sim_refund_5b0e8a52-1f7e-4b38-9c0a-7d9f3f2c1a00' });
    assert.deepEqual(await sim.refund(charge('tok_approve_4242')), first);
    assert.deepEqual(await sim.refund(charge('tok_decline_0002')), { status: 'nothing-charged' });
  });

  it('a lookup gives the same outcome as the charge (charges are idempotent by order id)', async () => {
    assert.deepEqual(await provider.lookup(charge('tok_approve_4242')), await provider.charge(charge('tok_approve_4242'), 1000));
  });
});
