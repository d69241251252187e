// The benchmarks' goals and exit codes: an error is 1, a clean run that missed its goal 3, a clean run that met it 0.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BENCH_GOAL_MISSED, benchExit, ordersGoal, stackGoal } from './goals.ts';
import type { LayoutReport, OrdersReport } from './orders.ts';
import type { StackReport } from './stack.ts';

const layout = (name: 'shared' | 'zones', ratio: number | null): LayoutReport => ({ layout: name, ratio } as unknown as LayoutReport);
const orders = (...layouts: LayoutReport[]): OrdersReport => ({ benchmark: 'orders', at: 'now', seconds: 8, layouts });
const stack = (ratio: number | null): StackReport => ({ ratio } as unknown as StackReport);

describe('bench goals', () => {
  it('orders: the zones layout at 0.7 of the ceiling or more; the shared layout does not count', () => {
    assert.equal(ordersGoal(orders(layout('shared', 0.42), layout('zones', 0.77))).met, true);
    assert.equal(ordersGoal(orders(layout('shared', 0.9), layout('zones', 0.69))).met, false);
    assert.deepEqual(ordersGoal(orders(layout('zones', null))), { goal: 'the service at >= 0.7 of pgbench\'s ceiling with p95 < 50 ms (zones layout)', met: false, measured: 'no step with p95 < 50 ms without errors' });
    assert.equal(ordersGoal(orders(layout('shared', 0.9))).measured, 'no zones layout was run');
  });

  it('stack: 0.5 of the database\'s ceiling or more', () => {
    assert.equal(stackGoal(stack(0.5)).met, true);
    assert.equal(stackGoal(stack(0.11)).met, false);
    assert.equal(stackGoal(stack(null)).measured, 'no rate held');
  });

  it('exit codes: errors 1 whatever the goal, a missed goal 3, else 0', () => {
    const met = { goal: 'g', met: true, measured: 'm' };
    const missed = { ...met, met: false };
    assert.equal(benchExit(true, met), 1);
    assert.equal(benchExit(true, missed), 1);
    assert.equal(benchExit(false, missed), BENCH_GOAL_MISSED);
    assert.equal(BENCH_GOAL_MISSED, 3);
    assert.equal(benchExit(false, met), 0);
    assert.equal(benchExit(false), 0, 'a benchmark without a goal');
  });
});
