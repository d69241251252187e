// npm run bench -- orders: POST /orders through the whole service, in-process, against PostgreSQL, Redis and Kafka on
// loopback (the service tests' harness), beside the ceiling of the same database work run directly by pgbench
// against the same PostgreSQL in the same run. The pgbench script is what the service does to the database for one
// approved order: the creation transaction (key claim, stock, order, item, history, outbox) and the settlement
// transaction (read, move to CONFIRMED with the version check, history, outbox, payment reference, key response).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { startHarness, type Harness } from '../../services/order-service/test/harness.ts';
import { latencyPercentiles, round1 } from '../lib/stats.ts';
import type { LoadInput, LoadOutput } from './order-load.ts';

const run = promisify(execFile);
const PRODUCTS = 200;
const productId = (n: number): string => `BENCH-${String(n).padStart(3, '0')}`;

export interface OrdersStep {
  clients: number;
  orders: number;
  errors: number;
  perSecond: number;
  ms: { p50: number; p95: number; p99: number };
}

export interface OrdersReport {
  benchmark: 'orders';
  at: string;
  seconds: number;
  service: OrdersStep[];
  pgbench: OrdersStep[];
  /** the best service step with p95 < 50 ms and no errors */
  sustained: OrdersStep | null;
  ceiling: OrdersStep;
  ratio: number | null;
}

const PGBENCH_SCRIPT = `
\\set n random(1, ${String(PRODUCTS)})
SELECT gen_random_uuid() AS oid, 'BENCH-' || lpad(:n::text, 3, '0') AS pid, 'pgbench-' || :client_id AS cid \\gset
BEGIN;
SELECT set_config('oms.scope', 'customer', true), set_config('oms.customer_id', ':cid', true);
SAVEPOINT claim;
INSERT INTO oms.idempotency_keys (customer_id, key, request_sha256, state, order_id) VALUES (':cid', ':oid', md5(':oid'), 'IN_FLIGHT', ':oid');
UPDATE oms.products SET stock = stock - 1, version = version + 1, updated_at = now() WHERE id = ':pid' AND stock >= 1 RETURNING price_cents, currency, stock;
INSERT INTO oms.orders (id, customer_id, status, total_cents, currency, payment_token) VALUES (':oid', ':cid', 'PENDING_PAYMENT', 500, 'EUR', 'tok_approve_bench');
INSERT INTO oms.order_items (order_id, line, customer_id, product_id, quantity, unit_price_cents) VALUES (':oid', 1, ':cid', ':pid', 1, 500);
INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor) VALUES (':oid', ':cid', NULL, 'PENDING_PAYMENT', 'customer');
INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload) VALUES (gen_random_uuid(), ':oid', 'order.created', ':cid', '{"orderId": ":oid"}');
COMMIT;
BEGIN;
SELECT set_config('oms.scope', 'system', true), set_config('oms.customer_id', '', true);
SELECT * FROM oms.orders WHERE id = ':oid';
SELECT order_id, product_id, quantity, unit_price_cents FROM oms.order_items WHERE order_id = ANY(ARRAY[':oid']::uuid[]) ORDER BY order_id, line;
UPDATE oms.orders SET status = 'CONFIRMED', version = version + 1, updated_at = now() WHERE id = ':oid' AND version = 1;
INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor) VALUES (':oid', ':cid', 'PENDING_PAYMENT', 'CONFIRMED', 'system');
INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload) VALUES (gen_random_uuid(), ':oid', 'order.confirmed', ':cid', '{"orderId": ":oid"}');
UPDATE oms.orders SET payment_reference = 'sim_bench' WHERE id = ':oid';
UPDATE oms.idempotency_keys SET state = 'DONE', response_status = 201, response_body = '{}', updated_at = now() WHERE order_id = ':oid' AND state = 'IN_FLIGHT';
COMMIT;
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
  const output = await new Promise<LoadOutput>((resolve, reject) => {
    const worker = new Worker(new URL('./ts-worker.mjs', import.meta.url), { workerData: { ...input, module: new URL('./order-load.ts', import.meta.url).href } });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  if (output.firstError !== undefined) throw new Error(`orders failed during the benchmark (${String(output.errors)}), the first: ${output.firstError}`);
  return { clients, orders: output.latencies.length, errors: output.errors, perSecond: round1(output.latencies.length / seconds), ms: latencyPercentiles(output.latencies) };
}

/** The same database work by pgbench, `clients` connections, with a per-transaction log for the percentiles. */
async function pgbenchStep(h: Harness, dir: string, clients: number, seconds: number): Promise<OrdersStep> {
  const tls = h.stack.pki.client('order-service');
  const prefix = join(dir, `pgbench-${String(clients)}`);
  const { stdout } = await run('/usr/lib/postgresql/15/bin/pgbench', [
    '-n', '-f', join(dir, 'order.sql'), '-c', String(clients), '-j', '2', '-T', String(seconds), '-l', `--log-prefix=${prefix}`, 'orders',
  ], {
    cwd: dir,
    env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(h.stack.postgres?.port), PGUSER: 'order_service', PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: tls.ca, PGSSLCERT: tls.cert, PGSSLKEY: tls.key, PGAPPNAME: 'bench-orders' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  // log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
  const latencies = readdirSync(dir).filter((f) => f.startsWith(`pgbench-${String(clients)}.`))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'))
    .map((line) => Number(line.split(' ')[2]) / 1000);
  return { clients, orders: latencies.length, errors: failed, perSecond: round1(latencies.length / seconds), ms: latencyPercentiles(latencies) };
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
    const levels = [4, 8, 16, 32];
    const service: OrdersStep[] = [];
    const pgbench: OrdersStep[] = [];
    for (const clients of levels) {
      const s = await serviceStep(h, clients, seconds, 2);
      service.push(s);
      progress(`service  ${String(clients).padStart(2)} clients: ${String(s.perSecond).padStart(6)} orders/s  p50 ${String(s.ms.p50)} ms  p95 ${String(s.ms.p95)} ms  p99 ${String(s.ms.p99)} ms  (${String(s.errors)} errors)`);
      const p = await pgbenchStep(h, h.stack.dir, clients, seconds);
      pgbench.push(p);
      progress(`pgbench  ${String(clients).padStart(2)} conns:   ${String(p.perSecond).padStart(6)} orders/s  p50 ${String(p.ms.p50)} ms  p95 ${String(p.ms.p95)} ms  p99 ${String(p.ms.p99)} ms  (${String(p.errors)} failed)`);
    }
    const ceiling = pgbench.reduce((best, s) => (s.perSecond > best.perSecond ? s : best));
    const sustained = service.filter((s) => s.errors === 0 && s.ms.p95 < 50).reduce<OrdersStep | null>((best, s) => (best === null || s.perSecond > best.perSecond ? s : best), null);
    return {
      benchmark: 'orders', at: new Date().toISOString(), seconds, service, pgbench, sustained, ceiling,
      ratio: sustained === null ? null : Math.round((sustained.perSecond / ceiling.perSecond) * 100) / 100,
    };
  } finally {
    await h.stop();
  }
}
