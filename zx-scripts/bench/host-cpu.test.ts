import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTROLLER, describeStepCpu, machineUsec, stepCpu } from './host-cpu.ts';
import { cpuRatioBound } from './stack.ts';

describe('bench: where the lab CPU goes', () => {
  it("reads the machine's busy time from /proc/stat (user nice system irq softirq steal, not idle or iowait)", () => {
    const stat = 'cpu  100 5 50 9999 77 3 2 1 0 0\ncpu0 50 2 25 5000 40 1 1 0 0 0\n';
    assert.equal(machineUsec(stat), (100 + 5 + 50 + 3 + 2 + 1) * 10_000);
  });

  it('gives CPU ms per order with the idle cost taken out, never below 0, and the CPUs kept busy', () => {
    const before = { atMs: 0, usec: { gw1: 1_000_000, db1: 0, [CONTROLLER]: 0 } };
    // 10 s, 100 orders: gw1 used 3 s (idle 0.1 s/s), db1 0.5 s (idle 0.1 s/s), the controller 1 s (idle 0)
    const after = { atMs: 10_000, usec: { gw1: 4_000_000, db1: 500_000, [CONTROLLER]: 1_000_000 } };
    const cpu = stepCpu(before, after, 100, { gw1: 100_000, db1: 100_000, [CONTROLLER]: 0 });
    assert.deepEqual(cpu.msPerOrder, { gw1: 20, db1: 0, [CONTROLLER]: 10, total: 30 });
    assert.equal(cpu.busyCpus, 0.45);
    assert.match(describeStepCpu(cpu), /^30 ms CPU per order \(gw1 20, controller 10, db1 0, \.\.\.\); 0.45 CPUs busy$/);
  });

  it("bounds the stack's ratio by the database order's CPU over the stack order's", () => {
    const at = (total: number) => ({ msPerOrder: { total }, busyCpus: 2 });
    assert.equal(cpuRatioBound(at(6), at(40)), 0.15);
    assert.equal(cpuRatioBound(undefined, at(40)), null);
    assert.equal(cpuRatioBound(at(6), at(0)), null);
  });
});
