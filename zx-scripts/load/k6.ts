// k6 on the lab: loadtest/oms.js (shoppers browsing, ordering, reading their orders) run inside the client host's
// network namespace (ext zone) against the gateways' virtual IP, each user from its own source address. Used by
// `npm run load` (a run with thresholds, its JSON summary and readable report in reports/load/<run>/) and by the
// drills (the order load every drill runs under: each order attempt a JSON line, audited afterwards).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../lib/inventory.ts';
import { repoRoot } from '../lab/lab.ts';
import { stateDir } from '../lab/state.ts';
import { LAB_CATALOG, labIdpKey, labToken } from '../lab/catalog.ts';
import { clientAddresses } from './addresses.ts';
import { writeEventOf, type Load, type WriteEvent } from './events.ts';

export const K6 = join(repoRoot, '.toolchain/k6/k6');
export const SCRIPT = join(repoRoot, 'loadtest/oms.js');
/** k6's exit codes: thresholds crossed; stopped by a signal (how a drill ends its load) */
export const K6_THRESHOLDS_CROSSED = 99;
export const K6_ABORTED_BY_SIGNAL = 105;

export class LoadInputError extends Error {
  override name = 'LoadInputError';
}

export interface Users { browse: number; order: number; read: number }
export interface Thresholds { failedRate: number; p95Ms: number; p99Ms: number }

/** What loadtest/oms.js reads (OMS_LOAD_CONFIG). */
export interface LoadConfig {
  run: string;
  name: string;
  vip: string;
  seconds: number;
  users: Users;
  /** seconds between the starts of a user's iterations */
  paceSeconds: Users;
  requestTimeoutSeconds: number;
  products: string[];
  /** one customer token per ordering user; reading users read the orders of these customers */
  tokens: string[];
  thresholds: Thresholds | false;
  ackLog: boolean;
  outDir: string;
  /** a benchmark: orders arrive at this rate a second (users.order VUs serve them), without pacing */
  orderRate?: number;
  /** where the users send from (k6 --local-ips): one address per user, or the load-test network for a benchmark */
  sourceAddresses: string[];
  /** k6's own HTML report (its web dashboard's export, self-contained) into outDir/report.html */
  htmlReport?: boolean;
}

/**
 * A user's pace keeps it under the gateway's limits per address (roles/nginx_gateway: orders 10/minute with a burst
 * of 10, the API 100/minute): an order every 6.5 s; two catalog or order reads every 2 s (60 requests/minute).
 */
export const PACE: Users = { browse: 2, order: 6.5, read: 2 };
/**
 * 96 users: about 10 orders, 16 catalog and 16 order reads a second. What the lab's 2 cores carry through the whole
 * stack with p95 < 200 ms (35 requests/s; at twice that, the machine is saturated and the gateways' health checks
 * time out). Up to 192 users have an address of their own.
 */
export const DEFAULT_USERS: Users = { browse: 16, order: 64, read: 16 };
export const DEFAULT_THRESHOLDS: Thresholds = { failedRate: 0.01, p95Ms: 200, p99Ms: 500 };
/** an order waits this long for its answer: a database failover holds it that long */
const REQUEST_TIMEOUT_SECONDS = 30;

export interface LoadOptions {
  run: string;
  seconds: number;
  users: Users;
  thresholds: Thresholds | false;
  ackLog: boolean;
  outDir: string;
  /** a benchmark of orders alone at this arrival rate, from the load-test network (users.order: the VUs to serve it) */
  orderRate?: number;
  /** k6's HTML report beside the others (outDir/report.html) */
  htmlReport?: boolean;
}

/** A customer's token from the lab's identity provider. */
const labCustomer = (subject: string): string => labToken(labIdpKey(), subject, 'customer');

/**
 * Checks the options against the inventory (every user needs an address of its own, else the limits bite early) and
 * mints the ordering users' tokens.
 */
export function loadConfig(inventory: Inventory, o: LoadOptions, mint: (subject: string) => string = labCustomer): LoadConfig {
  if (!inventory.gatewayVip || !inventory.gatewayName) throw new LoadInputError('the inventory has no gateway VIP and name');
  if (!/^[a-z0-9-]{1,60}$/.test(o.run)) throw new LoadInputError(`a run id is 1-60 of a-z 0-9 -, got ${JSON.stringify(o.run)}`);
  if (!Number.isInteger(o.seconds) || o.seconds < 1 || o.seconds > 24 * 3600) throw new LoadInputError(`seconds must be a whole number from 1 to 86400, got ${String(o.seconds)}`);
  for (const [kind, n] of Object.entries(o.users)) {
    if (!Number.isInteger(n) || n < 0) throw new LoadInputError(`${kind} users must be a whole number >= 0, got ${String(n)}`);
  }
  const total = o.users.browse + o.users.order + o.users.read;
  const client = clientAddresses(inventory);
  const addresses = client.users.length;
  if (total < 1) throw new LoadInputError('no users: give at least one browse, order or read user');
  if (o.orderRate !== undefined) {
    if (!(Number.isInteger(o.orderRate) && o.orderRate >= 1 && o.orderRate <= 10_000)) throw new LoadInputError(`an order rate is a whole number of orders a second from 1 to 10000, got ${String(o.orderRate)}`);
    if (o.users.browse + o.users.read > 0 || o.users.order < 1) throw new LoadInputError('a benchmark runs orders alone: order users (the VUs serving the rate) only');
    if (client.loadTest.length === 0) throw new LoadInputError('a benchmark sends from the load-test network (lab_load_test_network), and the inventory has none');
  } else if (total > addresses) throw new LoadInputError(`${String(total)} users, but the client host has ${String(addresses)} users' source addresses (lab_source_addresses outside lab_load_test_network): users would share addresses and their rate limits`);
  if (o.users.read > 0 && o.users.order === 0) throw new LoadInputError('reading users read the orders of ordering users: give at least one order user');
  if (o.thresholds) {
    const t = o.thresholds;
    if (!(t.failedRate >= 0 && t.failedRate <= 1)) throw new LoadInputError(`the failed-request threshold is a rate from 0 to 1, got ${String(t.failedRate)}`);
    if (!(t.p95Ms > 0 && t.p99Ms > 0)) throw new LoadInputError('latency thresholds must be > 0 ms');
  }
  const tokens = Array.from({ length: Math.max(1, o.users.order) }, (_, i) => mint(`shopper-${String(i + 1)}`));
  return {
    run: o.run, name: inventory.gatewayName, vip: inventory.gatewayVip, seconds: o.seconds, users: o.users, paceSeconds: PACE,
    requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS, products: LAB_CATALOG.map((p) => p.id), tokens,
    thresholds: o.thresholds, ackLog: o.ackLog, outDir: o.outDir, ...(o.htmlReport === true ? { htmlReport: true } : {}),
    ...(o.orderRate === undefined ? { sourceAddresses: client.users } : { orderRate: o.orderRate, sourceAddresses: client.loadTest }),
  };
}

/** Where k6 writes its console (the order lines of `ackLog`): a file, which the drill reads as it grows. */
const consoleFile = (config: LoadConfig): string => join(config.outDir, 'orders.jsonl');

/**
 * Starts k6 in the client's namespace; the readable report goes to its stdout unless it is a drill's load. The
 * configuration holds the users' tokens: readable by root only.
 */
export function startK6(inventory: Inventory, config: LoadConfig): ChildProcessWithoutNullStreams {
  mkdirSync(config.outDir, { recursive: true });
  const configFile = join(config.outDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  chmodSync(configFile, 0o600);
  const args = ['netns', 'exec', clientAddresses(inventory).host, K6, 'run', '--quiet', '--no-usage-report', '--log-format', 'raw',
    ...(config.ackLog ? ['--console-output', consoleFile(config)] : []),
    '--local-ips', config.sourceAddresses.join(','), SCRIPT];
  return spawn('ip', args, {
    cwd: repoRoot,
    stdio: 'pipe',
    env: {
      ...process.env, OMS_LOAD_CONFIG: configFile, SSL_CERT_FILE: join(stateDir, 'pki', 'lab', 'trust-bundle.pem'), K6_NO_USAGE_REPORT: 'true',
      // the web dashboard only to export its report at the end: no HTTP port of its own (-1); a point on its charts
      // every 60th of the run (its default, 10 s, leaves a run shorter than that with no report at all)
      ...(config.htmlReport === true ? {
        K6_WEB_DASHBOARD: 'true', K6_WEB_DASHBOARD_PORT: '-1', K6_WEB_DASHBOARD_EXPORT: join(config.outDir, 'report.html'),
        K6_WEB_DASHBOARD_PERIOD: `${String(Math.max(1, Math.round(config.seconds / 60)))}s`,
      } : {}),
    },
  });
}

/** k6's end-of-test summary (summary.json), as far as it is read here. */
export interface K6Summary {
  state: { testRunDurationMs: number };
  metrics: Record<string, { values: Record<string, number> } | undefined>;
}

/** A figure of the summary, 0 when the metric never got a sample. */
export const figure = (s: K6Summary, metric: string, value: string): number => s.metrics[metric]?.values[value] ?? 0;

/** Runs k6 to its end, its output passed to `out`; its exit code and summary (undefined when it wrote none). */
export async function runK6(inventory: Inventory, config: LoadConfig, out: (chunk: string) => void): Promise<{ code: number | null; summary: K6Summary | undefined }> {
  const k6 = startK6(inventory, config);
  k6.stdout.on('data', (d: Buffer) => { out(d.toString()); });
  k6.stderr.on('data', (d: Buffer) => { out(d.toString()); });
  const code = await new Promise<number | null>((resolve) => k6.once('close', resolve));
  let summary: K6Summary | undefined;
  try {
    summary = JSON.parse(readFileSync(join(config.outDir, 'summary.json'), 'utf8')) as K6Summary;
  } catch {
    summary = undefined;
  }
  return { code, summary };
}

/** A request k6 cancelled because it was told to stop (at `stopping`): it ended after that, with no answer. */
export function cutByStop(e: WriteEvent, stopping: number): boolean {
  return e.outcome === 'unknown' && e.end >= stopping && /context canceled/.test(e.error ?? '');
}

/**
 * The order load a drill runs under: k6's shoppers until the drill stops it; every order attempt is an event, read
 * from k6's console file as it grows (k6 cannot write its console to a socket, which a child's stdout is here).
 */
export function k6Load(inventory: Inventory, runId: string, outDir: string, users: Users = DEFAULT_USERS): Load {
  const config = loadConfig(inventory, { run: runId, seconds: 6 * 3600, users, thresholds: false, ackLog: true, outDir });
  const file = consoleFile(config);
  const child = startK6(inventory, config);
  const events: WriteEvent[] = [];
  let offset = 0;
  let partial = '';
  const buffer = Buffer.alloc(1 << 20);
  const drain = (): void => {
    if (!existsSync(file)) return;
    const fd = openSync(file, 'r');
    try {
      for (let n = readSync(fd, buffer, 0, buffer.length, offset); n > 0; n = readSync(fd, buffer, 0, buffer.length, offset)) {
        offset += n;
        const lines = (partial + buffer.toString('utf8', 0, n)).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const event = line.trim() ? writeEventOf(JSON.parse(line)) : undefined;
          if (event) events.push(event);
        }
      }
    } finally {
      closeSync(fd);
    }
  };
  const timer = setInterval(drain, 200);
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  // a user arrives within its first pace after its VU started (loadtest/oms.js, arrive()), and the first order
  // starts no earlier than the VUs: every user has arrived one longest pace after the first order's start
  const longestPace = Math.max(...(Object.keys(users) as (keyof Users)[]).filter((k) => users[k] > 0).map((k) => PACE[k]));
  return {
    events: () => events,
    arrivedBy: () => (events[0] === undefined ? undefined : Math.min(...events.map((e) => e.start)) + longestPace * 1000),
    async stop() {
      // k6 writes its summary on SIGTERM and exits 105; it cancels the requests in flight: those are cut, not failed
      const stopping = Date.now();
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), (REQUEST_TIMEOUT_SECONDS + 15) * 1000);
      const code = await exited;
      clearTimeout(kill);
      clearInterval(timer);
      drain();
      if (code !== 0 && code !== K6_ABORTED_BY_SIGNAL) throw new Error(`k6 exited with ${String(code)}: ${stderr}`);
      return events.map((e) => (cutByStop(e, stopping) ? { ...e, outcome: 'cut' as const } : e));
    },
  };
}
