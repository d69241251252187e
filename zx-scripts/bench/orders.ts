// npm run bench -- orders: POST /orders through the whole service, in-process, against PostgreSQL, Redis and Kafka on
// loopback (the service tests' harness), beside the ceiling of the same database work run directly by pgbench
// against the same PostgreSQL in the same run. The pgbench script is what the service does to the database for one
// approved order: the creation transaction (key claim, stock, order, item, history, outbox) and the settlement
// transaction (move to CONFIRMED, history, outbox, payment reference, key response), each one function call.
//
// Two CPU layouts, measured in the same run: `shared`, every process on every CPU (as on the single-machine lab), and
// `zones`, the data zone (PostgreSQL and Kafka) on CPUs of its own and the app zone (the service, Redis) with the
// clients on the others (as in the deployment, where the data zone has its own hosts). Each step says where the CPU
// went, in ms per order.
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { startHarness, type Harness } from '@oms/order-service/test/harness';
import { cpuByGroup, cpuMsOf, descendantsOf } from '../lib/proc.ts';
import { latencyPercentiles, round1 } from '../lib/stats.ts';
import type { LoadInput, LoadOutput } from './order-load.ts';
import type { CurvePoint, CurvesInput } from './curves.ts';

const run = promisify(execFile);
const PRODUCTS = 200;
const productId = (n: number): string => `BENCH-${String(n).padStart(3, '0')}`;

export interface OrdersStep {
  clients: number;
  orders: number;
  errors: number;
  perSecond: number;
  ms: { p50: number; p95: number; p99: number };
  /** where the CPU went, ms per order: the service (or nothing, for pgbench), the client, PostgreSQL, Kafka, Redis */
  cpuMsPerOrder: Record<string, number>;
}

/** The servers' processes by their command names. */
const SERVER_GROUPS: Record<string, string> = { postgres: 'postgres', java: 'kafka', 'redis-server': 'redis' };

/** CPU ms of the servers the harness started, by group. */
function serverCpu(): Map<string, number> {
  return cpuByGroup(process.pid, (comm) => SERVER_GROUPS[comm]);
}

/** CPU ms per order in a step, from readings before and after it. */
function perOrder(before: Map<string, number>, after: Map<string, number>, extra: Record<string, number>, orders: number): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [name, ms] of Object.entries(extra)) result[name] = round2(ms / Math.max(orders, 1));
  for (const [name, ms] of after) result[name] = round2((ms - (before.get(name) ?? 0)) / Math.max(orders, 1));
  return result;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Where a layout runs things: the CPUs of PostgreSQL, of Kafka, and of everything else. */
export interface LayoutPlan {
  postgres: string;
  kafka: string;
  others: string;
}

/**
 * The CPUs of a layout on a machine with `count` CPUs. `shared`: everything on every CPU. `zones`: the data zone
 * (PostgreSQL and Kafka, as in the deployment) on the upper half, the app zone (the service, Redis) and the clients
 * on the lower half.
 */
export function layoutCpus(layout: Layout, count: number): LayoutPlan {
  const all = count === 1 ? '0' : `0-${String(count - 1)}`;
  if (layout === 'shared') return { postgres: all, kafka: all, others: all };
  if (count < 2) throw new Error('the zones layout needs at least 2 CPUs');
  const half = Math.floor(count / 2);
  const range = (from: number, to: number): string => (from === to ? String(from) : `${String(from)}-${String(to)}`);
  return { postgres: range(half, count - 1), kafka: range(half, count - 1), others: range(0, half - 1) };
}

/** Pins PostgreSQL (its postmaster and backends; new backends inherit), Kafka and everything else this process runs. */
async function applyLayout(plan: LayoutPlan): Promise<void> {
  const pin = (pid: number, list: string): Promise<unknown> => run('taskset', ['-a', '-p', '-c', list, String(pid)]).catch((error: unknown) => {
    // a process that ended meanwhile (a backend closing) needs no pinning
    if (!/No such process|failed to get pid/.test(String(error))) throw error;
  });
  await pin(process.pid, plan.others);
  for (const { pid, comm } of descendantsOf(process.pid)) await pin(pid, comm === 'postgres' ? plan.postgres : comm === 'java' ? plan.kafka : plan.others);
}

/** "PostgreSQL and Kafka on CPUs 1, the service, its clients and Redis on CPUs 0" */
export function describeLayout(plan: LayoutPlan): string {
  const data = plan.kafka === plan.postgres ? `PostgreSQL and Kafka on CPUs ${plan.postgres}` : `PostgreSQL on CPUs ${plan.postgres}, Kafka on CPUs ${plan.kafka}`;
  return `${data}, the service, its clients and Redis on CPUs ${plan.others}`;
}

/** "service 2.1 ms, client 0.6 ms, ..." */
export function describeCpu(cpu: Record<string, number>): string {
  return Object.entries(cpu).map(([name, ms]) => `${name} ${String(ms)}`).join(', ');
}

export type Layout = 'shared' | 'zones';

export interface LayoutReport {
  layout: Layout;
  /** the CPUs PostgreSQL, Kafka and everything else ran on */
  cpus: LayoutPlan;
  service: OrdersStep[];
  pgbench: OrdersStep[];
  /** the best service step with p95 < 50 ms and no errors */
  sustained: OrdersStep | null;
  ceiling: OrdersStep;
  ratio: number | null;
}

export interface OrdersReport {
  benchmark: 'orders';
  at: string;
  seconds: number;
  layouts: LayoutReport[];
}

// run with -M prepared (as the service's named statements): the variables are parameters, never inside a literal.
// The two statements are the service's own: oms.place_order and oms.settle_order (migrations/0004_order_functions.sql,
// with the request id of 0008_request_id.sql, here a fixed one); settle_order's problem document, which a declined
// payment stores, is empty here (pgbench would read its colons as variables), as it is unused for an approved order.
const PGBENCH_SCRIPT = `
\\set n random(1, ${String(PRODUCTS)})
SELECT gen_random_uuid() AS oid, 'BENCH-' || lpad(:n::text, 3, '0') AS pid, 'pgbench-' || :client_id::text AS cid \\gset
SELECT oms.place_order(:oid::uuid, :cid::text, :cid::text || '@shop.example', :oid::text, md5(:oid::text), 'tok_approve_bench', ARRAY[:pid::text], ARRAY[1], 'pgbench-request');
SELECT oms.settle_order(:oid::uuid, true, 'sim_bench', '{}', 'pgbench-request');
`;

/** `clients` customers placing approved orders back to back for `seconds` (after `warmup` seconds not counted). */
async function serviceStep(h: Harness, clients: number, seconds: number, warmup: number): Promise<OrdersStep> {
  const input: LoadInput = {
    url: h.service.url,
    tls: h.stack.pki.client('gateway-to-app'),
    tokens: Array.from({ length: clients }, (_, i) => h.token(`bench-${String(clients)}-${String(i)}`)),
    products: Array.from({ length: PRODUCTS }, (_, i) => productId(i + 1)),
    seconds,
    warmupSeconds: warmup,
  };
  const servers = serverCpu();
  const service = process.cpuUsage();
  const output = await new Promise<LoadOutput>((resolve, reject) => {
    const child = fork(new URL('./order-load.ts', import.meta.url), { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer: LoadOutput | undefined;
    child.once('message', (m) => { answer = m as LoadOutput; });
    child.once('error', reject);
    child.once('exit', (code) => { if (answer) resolve(answer); else reject(new Error(`the load process ended (exit ${String(code)}) without its figures`)); });
    child.send(input);
  });
  const used = process.cpuUsage(service);
  if (output.firstError !== undefined) throw new Error(`orders failed during the benchmark (${String(output.errors)}), the first: ${output.firstError}`);
  return {
    clients, orders: output.latencies.length, errors: output.errors, perSecond: round1(output.latencies.length / seconds), ms: latencyPercentiles(output.latencies),
    cpuMsPerOrder: perOrder(servers, serverCpu(), { service: (used.user + used.system) / 1000, client: output.cpuMs }, output.ordersInRun),
  };
}

/**
 * The latencies (ms) of one pgbench run's per-transaction log, from a folder of its own: pgbench writes a file per
 * process and thread (prefix.pid[.thread]), so a folder shared by several runs would count the earlier ones again.
 * `processed`: pgbench's own count, which the log must match.
 */
export function pgbenchLatencies(folder: string, processed: number): number[] {
  // log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
  const latencies = readdirSync(folder).filter((f) => f.startsWith('log.'))
    .flatMap((f) => readFileSync(join(folder, f), 'utf8').split('\n').filter((line) => line.trim() !== ''))
    .map((line) => line.split(' ')[2] ?? '')
    .filter((field) => /^\d+$/.test(field)) // a failed transaction's line says `failed` there, and is counted apart
    .map((us) => Number(us) / 1000);
  if (latencies.length !== processed) throw new Error(`pgbench processed ${String(processed)} transactions but its log in ${folder} has ${String(latencies.length)}`);
  return latencies;
}

/**
 * Every step starts from the same database state, so none pays for the one before: the dead rows of the earlier
 * steps vacuumed (pgbench's steps leave three times as many as the service's, and autovacuum would clean them up
 * during whichever step came next), the statistics fresh, and a checkpoint done (the first change of each page after
 * a checkpoint writes the whole page to the WAL).
 */
async function settle(h: Harness): Promise<void> {
  const admin = h.stack.postgres?.admin('orders');
  if (!admin) throw new Error('the harness has no PostgreSQL');
  await admin.connect();
  try {
    await admin.query('VACUUM (ANALYZE)');
    await admin.query('CHECKPOINT');
  } finally {
    await admin.end();
  }
}

/** The same database work by pgbench, `clients` connections, with a per-transaction log for the percentiles. */
async function pgbenchStep(h: Harness, dir: string, label: string, clients: number, seconds: number): Promise<OrdersStep> {
  const tls = h.stack.pki.client('order-service');
  const logs = mkdtempSync(join(dir, `pgbench-${label}-${String(clients)}-`));
  const prefix = join(logs, 'log');
  const servers = serverCpu();
  const reaped = cpuMsOf(process.pid, true) - cpuMsOf(process.pid, false); // pgbench counts here once it has ended
  const { stdout } = await run('/usr/lib/postgresql/15/bin/pgbench', [
    '-n', '-M', 'prepared', '-f', join(dir, 'order.sql'), '-c', String(clients), '-j', '2', '-T', String(seconds), '-l', `--log-prefix=${prefix}`, 'orders',
  ], {
    cwd: dir,
    env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(h.stack.postgres?.port), PGUSER: 'order_service', PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: tls.ca, PGSSLCERT: tls.cert, PGSSLKEY: tls.key, PGAPPNAME: 'bench-orders' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  const processed = /number of transactions actually processed: (\d+)/.exec(stdout)?.[1];
  if (processed === undefined) throw new Error(`pgbench printed no transaction count:\n${stdout}`);
  const latencies = pgbenchLatencies(logs, Number(processed));
  const client = cpuMsOf(process.pid, true) - cpuMsOf(process.pid, false) - reaped;
  return {
    clients, orders: latencies.length, errors: failed, perSecond: round1(latencies.length / seconds), ms: latencyPercentiles(latencies),
    cpuMsPerOrder: perOrder(servers, serverCpu(), { client }, latencies.length),
  };
}

export async function benchOrders(seconds: number, progress: (line: string) => void): Promise<OrdersReport> {
  const h = await startHarness((c) => {
    c.postgres.poolSize = 32;
    c.payments.timeoutMs = 3000;
  }, { logsTo: new Writable({ write(_chunk, _encoding, done) { done(); } }) });
  try {
    const staff = h.token('bench-staff', 'staff');
    for (let n = 1; n <= PRODUCTS; n++) {
      const r = await h.call('PUT', `/api/v1/products/${productId(n)}`, { token: staff, body: { name: `Bench item ${String(n)}`, category: 'bench', priceCents: 500, stock: 10_000_000 } });
      if (r.status !== 201) throw new Error(`seeding ${productId(n)}: ${String(r.status)} ${r.text}`);
    }
    writeFileSync(join(h.stack.dir, 'order.sql'), PGBENCH_SCRIPT);
    const count = availableParallelism();
    const layouts: LayoutReport[] = [];
    for (const layout of count >= 2 ? ['shared', 'zones'] as const : ['shared'] as const) {
      const cpus = layoutCpus(layout, count);
      await applyLayout(cpus);
      progress(`${layout}: ${describeLayout(cpus)}`);
      layouts.push(await measureLayout(h, layout, cpus, seconds, progress));
    }
    await applyLayout(layoutCpus('shared', count));
    return { benchmark: 'orders', at: new Date().toISOString(), seconds, layouts };
  } finally {
    await h.stop();
  }
}

async function measureLayout(h: Harness, layout: Layout, cpus: LayoutPlan, seconds: number, progress: (line: string) => void): Promise<LayoutReport> {
  const service: OrdersStep[] = [];
  const pgbench: OrdersStep[] = [];
  for (const clients of [4, 8, 16, 32]) {
    await settle(h);
    const s = await serviceStep(h, clients, seconds, 2);
    service.push(s);
    progress(`  service  ${String(clients).padStart(2)} clients: ${String(s.perSecond).padStart(6)} orders/s  p50 ${String(s.ms.p50)} ms  p95 ${String(s.ms.p95)} ms  p99 ${String(s.ms.p99)} ms  (${String(s.errors)} errors)  CPU ms/order: ${describeCpu(s.cpuMsPerOrder)}`);
    await settle(h);
    const p = await pgbenchStep(h, h.stack.dir, layout, clients, seconds);
    pgbench.push(p);
    progress(`  pgbench  ${String(clients).padStart(2)} conns:   ${String(p.perSecond).padStart(6)} orders/s  p50 ${String(p.ms.p50)} ms  p95 ${String(p.ms.p95)} ms  p99 ${String(p.ms.p99)} ms  (${String(p.errors)} failed)  CPU ms/order: ${describeCpu(p.cpuMsPerOrder)}`);
  }
  const ceiling = pgbench.reduce((best, s) => (s.perSecond > best.perSecond ? s : best));
  const sustained = service.filter((s) => s.errors === 0 && s.ms.p95 < 50).reduce<OrdersStep | null>((best, s) => (best === null || s.perSecond > best.perSecond ? s : best), null);
  return {
    layout, cpus, service, pgbench, sustained, ceiling,
    ratio: sustained === null ? null : Math.round((sustained.perSecond / ceiling.perSecond) * 100) / 100,
  };
}

/** Each layout's service and pgbench steps as curves against the clients; the zones layout's ceiling drawn. */
export function ordersCurves(report: OrdersReport): CurvesInput {
  const step = (s: OrdersStep): CurvePoint => ({ x: s.clients, perSecond: s.perSecond, p95: s.ms.p95, p99: s.ms.p99 });
  const best = report.layouts.reduce<LayoutReport | undefined>((a, l) => (a === undefined || (l.ratio ?? 0) > (a.ratio ?? 0) ? l : a), undefined);
  return {
    title: `bench -- orders: POST /orders in-process beside pgbench on the same PostgreSQL (${report.at})`,
    subtitle: report.layouts.map((l) => `${l.layout}: ${l.ratio === null ? 'no step with p95 < 50 ms' : `${String(l.ratio)} of the ceiling`}`).join('; '),
    xLabel: 'clients',
    curves: report.layouts.flatMap((l) => [{ name: `service (${l.layout})`, points: l.service.map(step) }, { name: `pgbench (${l.layout})`, points: l.pgbench.map(step) }]),
    ...(best ? { ceiling: { perSecond: best.ceiling.perSecond, label: `pgbench ceiling (${best.layout}) ${String(best.ceiling.perSecond)}/s` } } : {}),
    latencyGoalMs: 50,
  };
}
