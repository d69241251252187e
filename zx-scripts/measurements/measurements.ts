// docs/measurements.md, made from the reports the kit's tools keep in reports/: the newest report of each drill, of
// each benchmark, and of the lab suite. The one place measured figures live: other pages link here instead of
// copying figures into prose, and a figure here always names the run it comes from.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DbReport } from '../bench/db.ts';
import type { NotificationsReport } from '../bench/notifications.ts';
import type { OrdersReport } from '../bench/orders.ts';
import type { StackReport } from '../bench/stack.ts';
import type { DrillReport } from '../drills/framework.ts';
import type { SuiteRecord } from '../lib/suite-record.ts';

export interface Found {
  drills: DrillReport[];
  benches: (DbReport | OrdersReport | NotificationsReport | StackReport)[];
  suite?: SuiteRecord;
  /** reports that could not be read, with why: a page made from them says so */
  unreadable: string[];
}

const jsonFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f)) : []);

/** A report's JSON when `valid` takes it; else undefined, and why in `unreadable`. */
function read(file: string, unreadable: string[], valid: (value: Record<string, unknown>) => boolean): unknown {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    if (valid(value)) return value;
    unreadable.push(`${file}: not a report of this kind`);
  } catch (error) {
    unreadable.push(`${file}: ${(error as Error).message}`);
  }
  return undefined;
}

/** The newest of each: by the time in the report, not the file's name or date. */
function newestBy<T>(items: T[], key: (item: T) => string, at: (item: T) => string): T[] {
  const newest = new Map<string, T>();
  for (const item of items) {
    const seen = newest.get(key(item));
    if (seen === undefined || at(item) > at(seen)) newest.set(key(item), item);
  }
  return [...newest.values()].sort((a, b) => key(a).localeCompare(key(b)));
}

/** Reads reports/drills, reports/bench and reports/suite under `reportsDir`; keeps the newest report of each. */
export function readReports(reportsDir: string): Found {
  const unreadable: string[] = [];
  const drills = jsonFiles(join(reportsDir, 'drills'))
    .map((f) => read(f, unreadable, (v) => typeof v['drill'] === 'string' && typeof v['startedAt'] === 'string' && Array.isArray(v['lost'])))
    .filter((r) => r !== undefined) as DrillReport[];
  const benches = jsonFiles(join(reportsDir, 'bench'))
    .map((f) => read(f, unreadable, (v) => ['db', 'orders', 'notifications', 'stack'].includes(String(v['benchmark'])) && typeof v['at'] === 'string'))
    .filter((r) => r !== undefined) as Found['benches'];
  const suites = jsonFiles(join(reportsDir, 'suite'))
    .map((f) => read(f, unreadable, (v) => typeof v['suite'] === 'string' && Array.isArray(v['tests'])))
    .filter((r) => r !== undefined) as SuiteRecord[];
  const [suite] = newestBy(suites, () => 'lab', (s) => s.startedAt);
  return {
    drills: newestBy(drills, (r) => r.drill, (r) => r.startedAt),
    benches: newestBy(benches, (r) => r.benchmark, (r) => r.at),
    ...(suite ? { suite } : {}),
    unreadable,
  };
}

const day = (iso: string): string => iso.slice(0, 16).replace('T', ' ');
const minutes = (seconds: number): string => `${String(Math.floor(seconds / 60))} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function drillsSection(drills: DrillReport[]): string[] {
  if (drills.length === 0) return ['No drill report yet: `npm run drill -- NAME` (or the lab suite) keeps one in reports/drills/.'];
  const lines = [
    '| drill | run (UTC) | goal | without writes | writes back | whole | acknowledged | failed | unknown (kept) | LOST | orders at the VIP (LOST) | alerts: fired / resolved after | result |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const r of drills) {
    const after = (seconds: number | null): string => (seconds === null ? 'never' : `${String(seconds)} s`);
    const alerts = (r.alerts ?? []).map((a) => `${a.name} ${after(a.firedAfter)} / ${after(a.resolvedAfter)}`).join(', ');
    const orders = r.orders ? `${String(r.orders.acknowledged)} (${String(r.orders.lost)})` : '';
    lines.push(`| ${r.drill} | ${day(r.startedAt)} | ${String(r.goal.seconds)} s | ${String(r.secondsWithoutWrites)} s | ${r.secondsToWritesBack === null ? 'never' : `${String(r.secondsToWritesBack)} s`} | ` +
      `${r.secondsToWhole === null ? 'never' : `${String(r.secondsToWhole)} s`} | ${String(r.writes.acknowledged)} | ${String(r.writes.failed)} | ${String(r.writes.unknown)} (${String(r.writes.unknownCommitted)}) | ` +
      `${String(r.lost.length)} | ${orders} | ${cell(alerts)} | ${r.passed ? 'passed' : `FAILED: ${cell(r.problems.join('; '))}`} |`);
  }
  return lines;
}

function benchLine(b: Found['benches'][number]): string {
  const ms = (m: { p50: number; p95: number; p99: number }): string => `p50 ${String(m.p50)} ms, p95 ${String(m.p95)} ms, p99 ${String(m.p99)} ms`;
  switch (b.benchmark) {
    case 'db':
      return `**db** (${day(b.at)}): ceiling ${String(b.ceiling.tps)} orders/s at ${String(b.ceiling.clients)} connections (${ms(b.ceiling.ms)}), ${b.path}`;
    case 'orders':
      return `**orders** (${day(b.at)}, ${String(b.seconds)} s steps): ` + b.layouts.map((l) =>
        `${l.layout} layout: the service sustains ${l.sustained ? `${String(l.sustained.perSecond)} orders/s at ${String(l.sustained.clients)} clients` : 'no step within p95 < 50 ms'}, ` +
        `pgbench's ceiling ${String(l.ceiling.perSecond)} orders/s, ratio ${l.ratio === null ? 'none' : String(l.ratio)}`).join('; ');
    case 'notifications':
      return `**notifications** (${day(b.at)}): steady ${String(b.steady.perSecond)} events/s, ${ms(b.steady.ms)}; a burst of ${String(b.burst.events)} drained at ${String(b.burst.perSecond)} emails/s`;
    case 'stack':
      return `**stack** (${day(b.at)}): ${b.sustained ? `${String(b.sustained.achieved)} orders/s sustained at the VIP` : 'no rate sustained'}, ratio to the database's ceiling ${b.ratio === null ? 'none' : String(b.ratio)}` +
        (b.email ? `; order -> email ${ms(b.email.ms)}` : '');
  }
}

function suiteSection(suite: SuiteRecord | undefined): string[] {
  if (!suite) return ['No suite record yet: the lab suite keeps one in reports/suite/ at its end.'];
  const failed = suite.tests.filter((t) => !t.passed);
  const lines = [
    `Run of ${day(suite.startedAt)} UTC (${suite.suite}): ${minutes(suite.seconds)} until its last test, ${String(suite.tests.length)} tests, ` +
      `${failed.length === 0 ? 'all passed' : `${String(failed.length)} FAILED`}. The ten longest:`,
    '',
    '| test | time |',
    '|---|---:|',
    ...[...suite.tests].sort((a, b) => b.seconds - a.seconds).slice(0, 10).map((t) => `| ${cell(t.name)}${t.passed ? '' : ' (FAILED)'} | ${minutes(t.seconds)} |`),
  ];
  return lines;
}

/** The page, in Markdown. `made`: when it is made (the page names it). */
export function measurementsPage(found: Found, made: Date): string {
  return [
    '# Measurements',
    '',
    `<!-- made by \`npm run measurements\` from reports/ on ${made.toISOString().slice(0, 10)}; edit the generator (zx-scripts/measurements/), not this page -->`,
    '',
    'What the kit measured, each figure with the run it comes from: the newest report of each drill, benchmark and',
    'lab suite run in `reports/` on the machine that made this page. How each is measured: [drills](runbooks/README.md),',
    '[performance](performance.md), [the lab](lab.md).',
    '',
    '## Drills',
    '',
    'Time without writes: the longest gap between two acknowledged writes from just before the fault (the goal bounds',
    'it). LOST: acknowledged writes missing from the system of record afterwards; it must be 0.',
    '',
    ...drillsSection(found.drills),
    '',
    '## Benchmarks',
    '',
    ...(found.benches.length === 0 ? ['No benchmark report yet: `npm run bench -- NAME` keeps one in reports/bench/.'] : found.benches.map((b) => `- ${benchLine(b)}`)),
    '',
    '## The lab suite',
    '',
    ...suiteSection(found.suite),
    ...(found.unreadable.length > 0 ? ['', '## Reports left out', '', ...found.unreadable.map((u) => `- ${u}`)] : []),
    '',
  ].join('\n');
}
