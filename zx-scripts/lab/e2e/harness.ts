// What the lab's end-to-end tests share: running the kit's commands as a user would, and reading their output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it as nodeIt, type TestContext, type TestOptions } from 'node:test';
import { figuresText, type DrillReport } from '../../drills/framework.ts';
import { renderSvg } from '../../lib/chromium.ts';
import { loadInventory } from '../../lib/inventory.ts';
import { timeStamp } from '../../lib/run-id.ts';
import type { SuiteRecord, SuiteTest } from '../../lib/suite-record.ts';
import { defaultInventory, repoRoot } from '../lab.ts';
import { secondsSince } from '../../lib/stats.ts';

export const inventory = loadInventory(defaultInventory);
export const bin = (tool: string): string => join(repoRoot, 'node_modules/.bin', tool);
export const MINUTES = 60_000;

type Body = (t: TestContext) => Promise<void> | void;
/**
 * What failed in this run, a line each (the test and the start of its error). CI shows a few dozen lines of a log
 * that runs for an hour: the lab suite's last test prints these, so the log's end says what failed and why (CI's run
 * of bb9d8f8 named four failed tests and showed the reasons of two).
 */
export const failures: string[] = [];
/** Each test that ran, with its time: the suite's record (reports/suite/, and docs/measurements.md from it). */
export const ran: SuiteTest[] = [];
const firstWords = (error: unknown): string => (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim().slice(0, 400);
/** node:test's it, recording its time in `ran` and its failure in `failures`; every lab e2e test is declared with it. */
export function it(name: string, fn: Body): void;
export function it(name: string, options: TestOptions, fn: Body): void;
export function it(name: string, optionsOrFn: TestOptions | Body, body?: Body): void {
  const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn, body];
  if (!fn) throw new Error(`test "${name}" has no body`);
  void nodeIt(name, options, async (t) => {
    const started = performance.now();
        try {
      await fn(t);
      ran.push({ name, seconds: secondsSince(started), passed: true });
    } catch (error) {
      ran.push({ name, seconds: secondsSince(started), passed: false });
      failures.push(`${name}: ${firstWords(error)}`);
      throw error;
    }
  });
}

/** Keeps the suite's record in reports/suite/lab-<time>.json; returns its path. */
export function keepSuiteRecord(startedAt: Date, allDrills: boolean): string {
  const record: SuiteRecord = { suite: allDrills ? 'lab (every drill)' : 'lab', startedAt: startedAt.toISOString(), seconds: secondsSince(startedAt.getTime(), Date.now()), tests: ran };
  const dir = join(repoRoot, 'reports', 'suite');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `lab-${timeStamp(startedAt.toISOString())}.json`);
  writeFileSync(path, JSON.stringify(record, null, 2) + '\n');
  return path;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

export function run(cmd: string, args: string[], timeoutMs = 15 * MINUTES): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr, seconds: secondsSince(started) });
    });
  });
}

export const lab = (...args: string[]): Promise<Run> => run(process.execPath, ['--import', 'tsx', 'zx-scripts/lab/cli.ts', ...args]);
export const inHost = (host: string, ...cmd: string[]): Promise<Run> => lab('exec', host, '--', ...cmd);

export function assertOk(result: Run, what: string): void {
  assert.equal(result.code, 0, `${what} failed (exit ${String(result.code)}):\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
}

/** Per-host counts from the PLAY RECAP of an ansible-playbook run. */
export function recap(output: string): Map<string, { ok: number; changed: number; unreachable: number; failed: number }> {
  const hosts = new Map<string, { ok: number; changed: number; unreachable: number; failed: number }>();
  for (const m of output.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    hosts.set(m[1] ?? '', { ok: Number(m[2]), changed: Number(m[3]), unreachable: Number(m[4]), failed: Number(m[5]) });
  }
  return hosts;
}


/** The tasks an ansible-playbook run reported changed on a host ("role : task"), for messages about idempotence. */
export function changedTasks(output: string, host: string): string[] {
  const tasks: string[] = [];
  let task = '';
  for (const line of output.split('\n')) {
    const header = /^(?:TASK|RUNNING HANDLER) \[(.+)\]/.exec(line);
    if (header) task = header[1] ?? '';
    else if (line.startsWith(`changed: [${host}]`)) tasks.push(task);
  }
  return tasks;
}

/**
 * Runs drills as a user would (npm run drill -- NAMES --json), prints each report's figures as a diagnostic, and
 * asserts what every drill must show: LOST 0, writes acknowledged, no problems, the command's own success.
 */
/**
 * Whether this run is the full lab suite (npm run test:lab:all, OMS_ALL_DRILLS=1). npm test holds to its budget (75 min
 * on a 2-core machine, where the lab suite with every drill took about 110 min) with 11 drills that cover each part and 9
 * of the 10 that assert an alert; the others run in the full suite and alone (npm run drill -- NAME).
 */
export const ALL_DRILLS = process.env['OMS_ALL_DRILLS'] === '1';
/** The skip option of a test that runs in the full suite only. */
export const FULL_SUITE_ONLY = ALL_DRILLS ? false : 'in the full lab suite only (npm run test:lab:all), for npm test\'s budget';

/** Runs the drills (those in `fullOnly` only in the full suite) and asserts their reports; returns the reports. */
export async function runDrillsTest(t: TestContext, all: string[], timeoutMs = 30 * MINUTES, fullOnly: string[] = []): Promise<DrillReport[]> {
  const drills = ALL_DRILLS ? all : all.filter((d) => !fullOnly.includes(d));
  if (drills.length < all.length) t.diagnostic(`left to the full lab suite (npm run test:lab:all): ${all.filter((d) => !drills.includes(d)).join(', ')}`);
  const result = await run(process.execPath, ['--import', 'tsx', 'zx-scripts/drills/cli.ts', ...drills, '--json'], timeoutMs);
  assert.ok(result.code === 0 || result.code === 1, `drills failed to run (exit ${String(result.code)}): ${result.stderr}`);
  const reports = JSON.parse(result.stdout) as DrillReport[];
  assert.deepEqual(reports.map((r) => r.drill), drills);
  for (const r of reports) {
    t.diagnostic(`${r.drill}: ${r.secondsWithoutWrites} s without writes (goal ${r.goal.seconds} s), writes back ${r.secondsToWritesBack ?? 'never'} s, whole ${r.secondsToWhole ?? 'never'} s after the fault; ` +
      `${r.writes.acknowledged} acknowledged, ${r.writes.failed} failed (${r.writes.failedCommitted} kept), ${r.writes.unknown} unknown (${r.writes.unknownCommitted} kept), ${r.writes.cut} cut at the end; LOST ${r.lost.length}` +
      (r.window ? `; discarded by design ${String(r.discarded)} writes and ${String(r.orders?.discarded ?? 0)} orders acknowledged in the ${String(Math.round((r.window.to - r.window.from) / 100) / 10)} s of the window (${r.window.why})` : '') +
      (Object.keys(r.audit).length > 0 ? `; ${figuresText(r.audit)}` : '') +
      (r.orders ? `; orders at the VIP: ${r.orders.acknowledged} acknowledged, ${r.orders.failed} failed (${r.orders.failedCommitted} placed all the same), LOST ${r.orders.lost}, ${r.orders.secondsWithoutWrites} s without an order, ${figuresText(r.orders.audit)}` : '') +
      (r.alerts && r.alerts.length > 0 ? `; alerts: ${r.alerts.map((a) => `${a.name} fired ${String(a.firedAfter)} s after the fault (bound ${String(a.fires)}), resolved ${String(a.resolvedAfter)} s after the heal (bound ${String(a.resolves)})`).join(', ')}` : '') +
      `; ${r.whole.detail}`);
    assert.equal(r.lost.length, 0, `${r.drill}: LOST ${r.lost.length}`);
    assert.equal(r.orders?.lost ?? 0, 0, `${r.drill}: orders LOST ${String(r.orders?.lost)}`);
    assert.ok(r.writes.acknowledged > 0, `${r.drill}: no write was acknowledged`);
    assert.deepEqual(r.problems, [], `${r.drill}: ${r.problems.join('; ')}`);
    // its timeline picture opens in a browser and names the drill and its marks
    assert.ok(r.timeline, `${r.drill}: no timeline picture`);
    const picture = renderSvg(readFileSync(r.timeline, 'utf8'));
    assert.ok(!picture.parseError && picture.width > 0 && picture.texts.some((text) => text.startsWith(`${r.drill}:`)) && picture.texts.some((text) => text.startsWith('fault')),
      `${r.drill}: its timeline ${r.timeline} does not render with its title and marks: ${JSON.stringify(picture)}`);
  }
  assertOk(result, `npm run drill -- ${drills.join(' ')}`);
  return reports;
}
