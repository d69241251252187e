// npm run bench -- stack: what the whole lab sustains. Orders at the VIP (k6's order scenario, loadtest/oms.js) at
// rising fixed arrival rates from the lab's load-test network (exempt from the per-address rate limits, so the stack
// is measured, not the limits): TLS 1.3 and the WAF at the gateway, mTLS to the order service, HAProxy, the Patroni
// leader with its quorum standbys, the outbox to Kafka. A step holds when every order was acknowledged, none
// had to be dropped for want of a free VU (the stack kept up), p95 < 200 ms and the achieved rate is >= 95 % of the
// offered one. Beside it, in the same run: the database's own ceiling (bench -- db) and, at the highest rate held,
// the time from an order's commit to its first email accepted by the mail sink.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { latencyPercentiles, round1 } from '../lib/stats.ts';
import { repoRoot } from '../lab/lab.ts';
import { orderTimesOfRun } from '../drills/gateway.ts';
import { sinkCount, sinkMessagesAfter } from '../drills/mail.ts';
import { figure, loadConfig, runK6 } from '../load/k6.ts';
import { benchDb, type DbReport, settle } from './db.ts';
import { describeStepCpu, idleRate, readCpu, stepCpu, type StepCpu } from './host-cpu.ts';
import type { CurvesInput } from './curves.ts';
import { timeStamp } from '../lib/run-id.ts';

export const RATES = [20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400, 500];
const P95_GOAL_MS = 200;
/** how long the lab's idle CPU is measured before the steps */
const IDLE_SECONDS = 10;

export interface StackStep {
  /** orders a second offered */
  rate: number;
  run: string;
  seconds: number;
  acknowledged: number;
  /** acknowledged a second */
  achieved: number;
  failed: number;
  /** arrivals k6 could not start because every VU was still waiting for an answer */
  dropped: number;
  ms: { p50: number; p95: number; p99: number; max: number };
  held: boolean;
  /** the sink's message count before the step (where its emails start) */
  sinkBefore: number;
  /** where the lab's CPU went during the step */
  cpu: StepCpu;
}

export interface StackReport {
  benchmark: 'stack';
  at: string;
  path: string;
  db: DbReport;
  steps: StackStep[];
  sustained: StackStep | null;
  /** sustained / the database ceiling */
  ratio: number | null;
  /** at the sustained rate: order committed -> its order.created email accepted by the sink */
  email: { orders: number; emails: number; ms: { p50: number; p95: number; p99: number } } | null;
  /** the lab's idle CPU, µs a second by host: taken out of every step's CPU per order */
  idleCpu: Record<string, number>;
  /**
   * The ratio the machine allows when every host shares its CPUs: the CPU an order costs at the database ceiling over
   * what it costs through the whole stack at the sustained rate (both with the idle cost taken out)
   */
  cpuBound: number | null;
}

/** Runs one step: k6 at `rate` orders/s for `seconds`. */
async function step(inventory: Inventory, at: string, rate: number, seconds: number, idle: Record<string, number>): Promise<StackStep> {
  const run = `bench-stack-${at}-r${String(rate)}`;
  const sinkBefore = await sinkCount(inventory);
  // one VU per order a second: up to 1 s in flight for each before arrivals are dropped
  const vus = Math.max(20, rate);
  const config = loadConfig(inventory, {
    run, seconds, users: { browse: 0, order: vus, read: 0 }, thresholds: false, ackLog: false, orderRate: rate,
    outDir: join(repoRoot, 'reports', 'bench', 'stack', run),
  });
  const before = readCpu(inventory);
  const { code, summary } = await runK6(inventory, config, () => undefined);
  const after = readCpu(inventory);
  if (!summary) throw new Error(`k6 wrote no summary at ${String(rate)} orders/s (exit ${String(code)}); see ${config.outDir}`);
  const acknowledged = figure(summary, 'orders_acknowledged', 'count');
  const failed = figure(summary, 'order_failed', 'passes');
  const dropped = figure(summary, 'dropped_iterations', 'count');
  const ms = { p50: round1(figure(summary, 'order_ms', 'med')), p95: round1(figure(summary, 'order_ms', 'p(95)')), p99: round1(figure(summary, 'order_ms', 'p(99)')), max: round1(figure(summary, 'order_ms', 'max')) };
  const achieved = round1(acknowledged / seconds);
  const held = failed === 0 && dropped === 0 && ms.p95 < P95_GOAL_MS && achieved >= 0.95 * rate;
  return { rate, run, seconds, acknowledged, achieved, failed, dropped, ms, held, sinkBefore, cpu: stepCpu(before, after, acknowledged, idle) };
}

/** Commit -> first email, for a step's orders (waits up to a minute for the emails still on their way). */
async function emailLatency(inventory: Inventory, s: StackStep): Promise<StackReport['email']> {
  const created = await orderTimesOfRun(inventory, s.run);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const firstEmail = new Map<string, number>();
    for (const m of await sinkMessagesAfter(inventory, s.sinkBefore)) {
      if (m.eventType === 'order.created' && m.orderId !== null && created.has(m.orderId) && !firstEmail.has(m.orderId)) firstEmail.set(m.orderId, Date.parse(m.at));
    }
    if (firstEmail.size >= created.size || Date.now() > deadline) {
      const samples = [...firstEmail].map(([id, at]) => at - (created.get(id) ?? at));
      return samples.length === 0 ? null : { orders: created.size, emails: firstEmail.size, ms: latencyPercentiles(samples) };
    }
    await sleep(2000);
  }
}

export async function benchStack(inventory: Inventory, seconds: number, log: (line: string) => void): Promise<StackReport> {
  const at = timeStamp();
  await settle(inventory, (line) => { log(`  ${line}`); });
  const idle = await idleRate(inventory, IDLE_SECONDS);
  log(`the lab at idle: ${String(Math.round(Object.values(idle).reduce((a, b) => a + b, 0) / 1e4) / 100)} CPUs busy (${String(IDLE_SECONDS)} s; taken out of every step's CPU per order)`);
  log('the database ceiling (bench -- db):');
  const db = await benchDb(inventory, seconds, (line) => { log(`  ${line}`); }, idle);
  log(`orders at the VIP from the load-test network, ${String(seconds)} s a step (held: none failed or dropped, p95 < ${String(P95_GOAL_MS)} ms, >= 95 % of the rate):`);
  const steps: StackStep[] = [];
  for (const rate of RATES) {
    // each step starts on an idle pipeline (the orders of the step before published and emailed), as the db's do
    await settle(inventory, (line) => { log(`  ${line}`); });
    const s = await step(inventory, at, rate, seconds, idle);
    steps.push(s);
    log(`  ${String(rate).padStart(4)} offered: ${String(s.achieved).padStart(6)} orders/s  p50 ${String(s.ms.p50)} ms  p95 ${String(s.ms.p95)} ms  p99 ${String(s.ms.p99)} ms  max ${String(s.ms.max)} ms  failed ${String(s.failed)}  dropped ${String(s.dropped)}  ${s.held ? 'held' : 'NOT held'}`);
    log(`        ${describeStepCpu(s.cpu)}`);
    if (!s.held) break;
  }
  const sustained = steps.filter((s) => s.held).at(-1) ?? null;
  const ratio = sustained === null ? null : Math.round((sustained.achieved / db.ceiling.tps) * 100) / 100;
  const email = sustained === null ? null : await emailLatency(inventory, sustained);
  log(sustained === null
    ? `no step held (the first: ${String(steps[0]?.rate)} orders/s)`
    : `sustained: ${String(sustained.achieved)} orders/s (p95 ${String(sustained.ms.p95)} ms, p99 ${String(sustained.ms.p99)} ms) = ${String(ratio)} of the database ceiling of ${String(db.ceiling.tps)} orders/s measured in this run`);
  if (email) log(`order committed -> its first email accepted by the sink, at ${String(sustained?.rate)} orders/s: p50 ${String(email.ms.p50)} ms, p95 ${String(email.ms.p95)} ms, p99 ${String(email.ms.p99)} ms (${String(email.emails)} of ${String(email.orders)} orders)`);
  const cpuBound = cpuRatioBound(db.ceiling.cpu, sustained?.cpu);
  if (cpuBound !== null) {
    log(`CPU per order: ${String(db.ceiling.cpu?.msPerOrder['total'])} ms at the database ceiling, ${String(sustained?.cpu.msPerOrder['total'])} ms through the whole stack: ` +
      `where every host shares this machine's CPUs, the stack can reach at most ${String(cpuBound)} of the ceiling`);
  }
  return {
    benchmark: 'stack', at: new Date().toISOString(),
    path: 'client (ext) -> VIP: Nginx (TLS 1.3, ModSecurity CRS) -> mTLS -> order-service (app1, app2) -> HAProxy -> Patroni leader (synchronous standby); outbox -> Kafka -> notification-service -> SMTP sink',
    db, steps, sustained, ratio, email, idleCpu: idle, cpuBound,
  };
}

/** The database order's CPU over the stack order's: the ratio a machine whose CPUs every host shares allows. */
export function cpuRatioBound(db: StepCpu | undefined, stack: StepCpu | undefined): number | null {
  const dbMs = db?.msPerOrder['total'];
  const stackMs = stack?.msPerOrder['total'];
  if (dbMs === undefined || stackMs === undefined || stackMs <= 0) return null;
  return Math.round((dbMs / stackMs) * 100) / 100;
}

/** The steps as curves: orders a second achieved and latency against the rate offered, the database's ceiling and the p95 goal. */
export function stackCurves(report: StackReport): CurvesInput {
  return {
    title: `bench -- stack: orders at the VIP through the whole lab (${report.at})`,
    subtitle: report.sustained === null
      ? `no rate held (none failed or dropped, p95 < ${String(P95_GOAL_MS)} ms); the database's ceiling ${String(report.db.ceiling.tps)}/s`
      : `held ${String(report.sustained.achieved)} orders a second (p95 ${String(report.sustained.ms.p95)} ms) = ${String(report.ratio)} of the database's ceiling of ${String(report.db.ceiling.tps)}/s`,
    xLabel: 'orders a second offered',
    curves: [{ name: 'orders at the VIP', points: report.steps.map((s) => ({ x: s.rate, perSecond: s.achieved, p95: s.ms.p95, p99: s.ms.p99 })) }],
    ceiling: { perSecond: report.db.ceiling.tps, label: `the database's ceiling ${String(report.db.ceiling.tps)}/s` },
    latencyGoalMs: P95_GOAL_MS,
  };
}
