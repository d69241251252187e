// npm run load -- [--seconds S] [--browse N] [--order N] [--read N] [--max-failed RATE] [--p95 MS] [--p99 MS]
//                 [--no-thresholds]
// k6's shoppers (loadtest/oms.js) from the lab's client host against the VIP; prints the readable report, keeps it
// with k6's JSON summary and its HTML report in reports/load/<run>/. Exit 0 when every threshold held, 1 when one was crossed, 2 on a bad
// command line, a bad inventory or a lab that is not up.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory, repoRoot, status } from '../lab/lab.ts';
import { DEFAULT_THRESHOLDS, DEFAULT_USERS, K6_THRESHOLDS_CROSSED, loadConfig, LoadInputError, runK6, type Thresholds } from './k6.ts';
import { timeStamp } from '../lib/run-id.ts';

const USAGE = `usage: npm run load -- [options]

Runs k6's shoppers (loadtest/oms.js) from the lab's client host (one source address per user) against the VIP:
browsing the catalog, ordering with Idempotency-Keys, reading their orders. Needs the lab (npm run lab -- up).

  --seconds S        how long (default 60)
  --browse N         users browsing the catalog (default ${String(DEFAULT_USERS.browse)})
  --order N          users ordering, one order every 6.5 s each (default ${String(DEFAULT_USERS.order)})
  --read N           users reading their orders (default ${String(DEFAULT_USERS.read)})
  --max-failed RATE  threshold: failed requests, a rate (default ${String(DEFAULT_THRESHOLDS.failedRate)})
  --p95 MS, --p99 MS thresholds: request latency (default ${String(DEFAULT_THRESHOLDS.p95Ms)} and ${String(DEFAULT_THRESHOLDS.p99Ms)})
  --no-thresholds    report only

Reports: reports/load/<run>/report.txt, summary.json (k6's end-of-test summary) and report.html (k6's own report:
the rates and latencies over the run, as charts; it opens offline).`;

function whole(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} takes a whole number, got '${value}'`);
  return Number(value);
}

function decimal(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`--${name} takes a number, got '${value}'`);
  return Number(value);
}

/** Linux's CPU pressure (PSI): microseconds some task waited for a CPU, with when it was read; undefined without PSI. */
function cpuStall(): { stallUs: number; atMs: number } | undefined {
  try {
    const total = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1];
    return total === undefined ? undefined : { stallUs: Number(total), atMs: performance.now() };
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    seconds: { type: 'string' }, browse: { type: 'string' }, order: { type: 'string' }, read: { type: 'string' },
    'max-failed': { type: 'string' }, p95: { type: 'string' }, p99: { type: 'string' }, 'no-thresholds': { type: 'boolean', default: false },
  });
  if (values.help) { console.log(USAGE); return 0; }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
  const thresholds: Thresholds | false = values['no-thresholds'] ? false : {
    failedRate: decimal('max-failed', values['max-failed'], DEFAULT_THRESHOLDS.failedRate),
    p95Ms: decimal('p95', values.p95, DEFAULT_THRESHOLDS.p95Ms),
    p99Ms: decimal('p99', values.p99, DEFAULT_THRESHOLDS.p99Ms),
  };
  const run = `load-${timeStamp()}`;
  const inventory = loadInventory(defaultInventory);
  const config = loadConfig(inventory, {
    run,
    seconds: whole('seconds', values.seconds, 60),
    users: { browse: whole('browse', values.browse, DEFAULT_USERS.browse), order: whole('order', values.order, DEFAULT_USERS.order), read: whole('read', values.read, DEFAULT_USERS.read) },
    thresholds,
    ackLog: false,
    outDir: join(repoRoot, 'reports', 'load', run),
    htmlReport: true,
  });
  if (!(await status(defaultInventory)).up) throw new LoadInputError('the lab is not up (npm run lab -- up)');
  const before = cpuStall();
  const { code } = await runK6(inventory, config, (chunk) => process.stdout.write(chunk));
  // how busy the machine was: the lab's hosts and k6 share its CPUs, so latency figures are read with this beside them
  const after = cpuStall();
  if (before && after) {
    const share = (after.stallUs - before.stallUs) / 1000 / (after.atMs - before.atMs);
    const line = `machine: CPU pressure ${(100 * share).toFixed(0)} % during the run (share of the time some task waited for a CPU)\n`;
    process.stdout.write(line);
    appendFileSync(join(config.outDir, 'report.txt'), line);
  }
  console.log(`reports: ${config.outDir}/report.txt, summary.json, report.html`);
  if (code === 0) return 0;
  if (code === K6_THRESHOLDS_CROSSED) { console.error('load: a threshold was crossed'); return 1; }
  throw new Error(`k6 exited with ${String(code)}`);
}

runCli('load', USAGE, main, [LoadInputError]);
