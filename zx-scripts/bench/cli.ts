// npm run bench -- db | orders | notifications | stack [--seconds S] [--json]
// stack: orders at the VIP through the whole lab (k6 from the load-test network) at rising rates, beside db's ceiling (bench/stack.ts).
// notifications: order event -> email at the mail sink through the notification service in-process (bench/notifications.ts).
// orders: POST /orders through the order service in-process on loopback, beside pgbench's ceiling (bench/orders.ts).
// db: the database ceiling on the lab: the order-creation transaction (services/order-service/src/db/create-order.ts, the statements
// the service runs) from app1 through HAProxy to the Patroni leader, with synchronous replication on, at rising
// concurrency. Prints TPS and latency percentiles per step and the ceiling; the figures every later load test and
// service benchmark are compared with. A JSON report goes to reports/bench/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory, repoRoot, status } from '../lab/lab.ts';
import { curvesSvg, type CurvesInput } from './curves.ts';
import { BENCH_GOAL_MISSED, benchExit, ORDERS_GOAL, ordersGoal, STACK_GOAL_RATIO, stackGoal, type GoalVerdict } from './goals.ts';
import { benchDb, dbCurves } from './db.ts';
import { benchStack, stackCurves } from './stack.ts';
import { benchNotifications } from './notifications.ts';
import { benchOrders, ordersCurves } from './orders.ts';
import { timeStamp } from '../lib/run-id.ts';

const USAGE = `usage: npm run bench -- db | orders | notifications | stack [--seconds S] [--json]

  db      the order-creation transaction through HAProxy to the Patroni leader (synchronous replication on),
          1 to 32 connections; TPS and latency percentiles per step, and the ceiling (needs the lab)
  orders  POST /orders through the order service in-process against PostgreSQL, Redis and Kafka on loopback, 4 to 32
          clients, beside the same database work run by pgbench against the same PostgreSQL; the ratio of the
          service's best rate with p95 < 50 ms to pgbench's ceiling, with every process on every CPU (shared) and
          with PostgreSQL on CPUs of its own (zones); CPU ms per order by process for every step
  notifications
          order event -> email accepted by the mail sink, through the notification service in-process against
          PostgreSQL, Kafka and the sink: latency percentiles at a steady 20 events/s, and the drain rate of a burst
  stack   orders at the VIP through the whole lab (gateway, WAF, mTLS, order service, HAProxy, Patroni with its
          synchronous standby), k6 at rising arrival rates from the load-test network: the highest rate sustained with
          p95 < 200 ms and no errors, its ratio to db's ceiling measured in the same run, and order -> email latency
          (needs the lab)

  --seconds S  seconds a step (default 10, 1 to 600)
  --json       the report as JSON on stdout
  -h, --help   this text

Each run keeps its report in reports/bench/<name>-<time>.json, and db, orders and stack their curves beside it
(<name>-<time>.svg: achieved a second and p95/p99 latency against the load offered).
Goals: orders, the service at >= ${String(ORDERS_GOAL.ratio)} of pgbench's ceiling (${ORDERS_GOAL.layout} layout); stack, >= ${String(STACK_GOAL_RATIO)} of the
database's ceiling; db and notifications measure and have none.
exit: 0 measured without errors (and the goal met), 1 a step had errors or the benchmark could not run, 2 a bad
command line, ${String(BENCH_GOAL_MISSED)} measured without errors but the goal missed`;

/** Keeps a report in reports/bench/<name>-<time>.json, and its curves beside it (<name>-<time>.svg) when it has some. */
function keep(name: string, report: { at: string }, curves?: CurvesInput): void {
  mkdirSync(join(repoRoot, 'reports', 'bench'), { recursive: true });
  const base = join(repoRoot, 'reports', 'bench', `${name}-${timeStamp(report.at)}`);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  if (curves) writeFileSync(`${base}.svg`, curvesSvg(curves));
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals: words } = parseCommandLine(argv, { json: { type: 'boolean', default: false }, seconds: { type: 'string', default: '10' } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const json = values.json;
  const seconds = Number(values.seconds);
  if (!/^\d+$/.test(values.seconds) || seconds < 1 || seconds > 600) throw new UsageError('--seconds takes a whole number from 1 to 600');
  if (words[0] === 'notifications' && words.length === 1) {
    const report = await benchNotifications(seconds, (line) => { if (!json) console.log(line); });
    keep('notifications', report);
    if (json) console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  if (words.length !== 1 || !['db', 'orders', 'stack'].includes(words[0] ?? '')) throw new UsageError(words.length === 0 ? 'name a benchmark' : `unknown benchmark '${words.join(' ')}'`);
  if (words[0] === 'orders') {
    const report = await benchOrders(seconds, (line) => { if (!json) console.log(line); });
    keep('orders', report, ordersCurves(report));
    if (json) console.log(JSON.stringify(report, null, 2));
    else {
      for (const l of report.layouts) {
        const s = l.sustained;
        console.log(`${l.layout}: pgbench ceiling ${String(l.ceiling.perSecond)} orders/s at ${String(l.ceiling.clients)} connections (p95 ${String(l.ceiling.ms.p95)} ms); ` + (s === null
          ? 'the service had no step with p95 < 50 ms without errors'
          : `the service ${String(s.perSecond)} orders/s at ${String(s.clients)} clients (p95 ${String(s.ms.p95)} ms, p99 ${String(s.ms.p99)} ms) = ${String(l.ratio)} of the ceiling`));
      }
    }
    return verdictExit(ordersGoal(report), !report.layouts.every((l) => l.service.every((s) => s.errors === 0) && l.pgbench.every((s) => s.errors === 0)), json);
  }
  if (!(await status(defaultInventory)).up) throw new Error('the lab is not up (npm run lab -- up)');
  const inventory = loadInventory(defaultInventory);
  const log = (line: string): void => { if (!json) console.log(line); };
  if (words[0] === 'stack') {
    const report = await benchStack(inventory, seconds, log);
    keep('stack', report, stackCurves(report));
    if (json) console.log(JSON.stringify(report, null, 2));
    return verdictExit(stackGoal(report), !(report.steps.length > 0 && report.db.steps.every((s) => s.errors === 0)), json);
  }
  const report = await benchDb(inventory, seconds, log);
  keep('db', report, dbCurves(report));
  if (json) console.log(JSON.stringify(report, null, 2));
  return benchExit(!report.steps.every((s) => s.errors === 0));
}

/** Says the goal's verdict (to stderr with --json) and returns the run's exit code. */
function verdictExit(verdict: GoalVerdict, errors: boolean, json: boolean): number {
  const line = `goal: ${verdict.goal}: ${verdict.met ? 'met' : 'MISSED'} (${verdict.measured})`;
  if (json) console.error(line);
  else console.log(line);
  return benchExit(errors, verdict);
}

runCli('bench', USAGE, main);
