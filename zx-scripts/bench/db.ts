// The database ceiling on the lab: the order-creation transaction (services/order-service/src/db/create-order.ts, the
// statements the service runs) from app1 through HAProxy to the Patroni leader, with synchronous replication on, at
// rising concurrency (pg-agent's `bench`). The figure every load test and service benchmark is compared with.
import { waitPipelineIdle } from '../drills/services.ts';
import type { Inventory } from '../lib/inventory.ts';
import { agent } from '../drills/pg.ts';
import { describeStepCpu, readCpu, stepCpu, type StepCpu } from './host-cpu.ts';
import type { CurvesInput } from './curves.ts';

export interface DbStep {
  clients: number;
  seconds: number;
  transactions: number;
  errors: number;
  tps: number;
  ms: { p50: number; p95: number; p99: number };
  /** where the lab's CPU went during the step (when the caller measured the lab's idle cost first) */
  cpu?: StepCpu;
}

export interface DbReport {
  benchmark: 'db';
  at: string;
  transaction: string;
  path: string;
  steps: DbStep[];
  ceiling: DbStep;
}

/**
 * Waits for an idle order pipeline before a step. A step's orders are real ones: the services publish and email their
 * events, and without the wait they do so during the next step (a database ceiling of 120 orders/s instead of 400
 * when the steps ran back to back on the lab).
 */
export async function settle(inventory: Inventory, log: (line: string) => void): Promise<void> {
  const ms = await waitPipelineIdle(inventory);
  if (ms > 10_000) log(`(waited ${String(Math.round(ms / 1000))} s for the events of the step before to be emailed)`);
}

/** `idle`: the lab's idle CPU rate (host-cpu.ts); with it each step also says where the CPU went. */
export async function benchDb(inventory: Inventory, seconds: number, log: (line: string) => void, idle?: Record<string, number>): Promise<DbReport> {
  const steps: DbStep[] = [];
  for (const clients of [1, 4, 8, 16, 32]) {
    await settle(inventory, log);
    const before = readCpu(inventory);
    const measured = await agent<DbStep>(inventory, 'app1', ['bench', '--clients', String(clients), '--seconds', String(seconds)]);
    const step = idle ? { ...measured, cpu: stepCpu(before, readCpu(inventory), measured.transactions, idle) } : measured;
    steps.push(step);
    log(`${String(clients).padStart(3)} connections: ${String(step.tps).padStart(7)} TPS  p50 ${step.ms.p50} ms  p95 ${step.ms.p95} ms  p99 ${step.ms.p99} ms  (${step.transactions} transactions, ${step.errors} errors)`);
    if (step.cpu) log(`      ${describeStepCpu(step.cpu)}`);
  }
  const ceiling = steps.reduce((best, s) => (s.tps > best.tps ? s : best));
  log(`ceiling: ${ceiling.tps} orders/s at ${ceiling.clients} connections (p95 ${ceiling.ms.p95} ms, p99 ${ceiling.ms.p99} ms)`);
  return { benchmark: 'db', at: new Date().toISOString(), transaction: 'order creation (create-order.ts)', path: 'app1 -> HAProxy :5000 -> Patroni leader, synchronous_commit on, ANY 1 of 2 quorum standbys', steps, ceiling };
}

/** The steps as curves: transactions a second and latency against the connections, with the ceiling. */
export function dbCurves(report: DbReport): CurvesInput {
  return {
    title: `bench -- db: the order transaction through HAProxy to the leader (${report.at})`,
    subtitle: `ceiling ${String(report.ceiling.tps)} transactions a second at ${String(report.ceiling.clients)} connections (p95 ${String(report.ceiling.ms.p95)} ms)`,
    xLabel: 'connections',
    curves: [{ name: 'the order transaction', points: report.steps.map((s) => ({ x: s.clients, perSecond: s.tps, p95: s.ms.p95, p99: s.ms.p99 })) }],
    ceiling: { perSecond: report.ceiling.tps, label: `ceiling ${String(report.ceiling.tps)}/s` },
  };
}
