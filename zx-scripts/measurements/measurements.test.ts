import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DrillReport } from '../drills/framework.ts';
import type { SuiteRecord } from '../lib/suite-record.ts';
import { measurementsPage, readReports } from './measurements.ts';

const dir = mkdtempSync(join(tmpdir(), 'oms-measurements-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

function drill(name: string, startedAt: string, secondsWithoutWrites: number, extra: Partial<DrillReport> = {}): DrillReport {
  return {
    drill: name, description: '', runId: 'r', startedAt, fault: 'f', heal: 'h', goal: { seconds: 11, boundBy: 'b' },
    writes: { acknowledged: 900, failed: 3, failedCommitted: 0, unknown: 1, unknownCommitted: 1, cut: 0, cutCommitted: 0 },
    secondsWithoutWrites, secondsToWritesBack: 4.2, secondsToWhole: 30, lost: [], discarded: 0, discardedSeconds: 0, audit: {},
    whole: { whole: true, detail: '' }, problems: [], errors: {}, passed: true, ...extra,
  };
}

const write = (path: string, value: unknown): void => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
};
write(join(dir, 'drills', '20261207100000-pg-switchover.json'), drill('pg-switchover', '2026-12-07T10:00:00.000Z', 9.9));
// newer by its own time, though its name sorts first
write(join(dir, 'drills', '0-pg-switchover.json'), drill('pg-switchover', '2026-12-07T11:00:00.000Z', 5.5));
write(join(dir, 'drills', '20261207110500-gateway-host-stop.json'), drill('gateway-host-stop', '2026-12-07T11:05:00.000Z', 2.4, {
  passed: false, problems: ['2.4 s without writes, over the goal of 2 s'], alerts: [{ name: 'HostDown', fires: 60, resolves: 60, firedAfter: 38.6, resolvedAfter: null }],
}));
write(join(dir, 'drills', 'broken.json'), '{"drill": ');
write(join(dir, 'bench', 'db-20261207.json'), { benchmark: 'db', at: '2026-12-07T09:00:00.000Z', transaction: 't', path: 'HAProxy', steps: [], ceiling: { clients: 16, seconds: 10, transactions: 4000, errors: 0, tps: 400, ms: { p50: 30, p95: 60, p99: 90 } } });
write(join(dir, 'bench', 'other.json'), { benchmark: 'nothing', at: 'x' });
const suite: SuiteRecord = {
  suite: 'lab', startedAt: '2026-12-07T10:00:00.000Z', seconds: 3491.2,
  tests: [{ name: 'up: every host boots', seconds: 957.3, passed: true }, { name: 'firewall | matrix', seconds: 51, passed: false }, { name: 'down', seconds: 50, passed: true }],
};
write(join(dir, 'suite', 'lab-20261207100000.json'), suite);

describe('measurements', () => {
  it('keeps the newest report of each drill and benchmark by the time in it, and says which reports it left out', () => {
    const found = readReports(dir);
    assert.deepEqual(found.drills.map((d) => `${d.drill} ${String(d.secondsWithoutWrites)}`), ['gateway-host-stop 2.4', 'pg-switchover 5.5']);
    assert.deepEqual(found.benches.map((b) => b.benchmark), ['db']);
    assert.equal(found.suite?.seconds, 3491.2);
    assert.deepEqual(found.unreadable.map((u) => u.replace(`${dir}/`, '').split(':')[0]).sort(), ['bench/other.json', 'drills/broken.json']);
  });

  it('writes a table row per drill with its run, a line per benchmark and the suite\'s longest tests', () => {
    const page = measurementsPage(readReports(dir), new Date('2026-12-07T12:00:00Z'));
    assert.match(page, /made by `npm run measurements` from reports\/ on 2026-12-07/);
    assert.match(page, /\| pg-switchover \| 2026-12-07 11:00 \| 11 s \| 5\.5 s \| 4\.2 s \| 30 s \| 900 \| 3 \| 1 \(1\) \| 0 \| {2}\| {2}\| passed \|/);
    assert.match(page, /\| gateway-host-stop \| .* \| HostDown 38\.6 s \/ never \| FAILED: 2\.4 s without writes, over the goal of 2 s \|/);
    assert.match(page, /\*\*db\*\* \(2026-12-07 09:00\): ceiling 400 orders\/s at 16 connections \(p50 30 ms, p95 60 ms, p99 90 ms\)/);
    assert.match(page, /58 min 11 s until its last test, 3 tests, 1 FAILED/);
    assert.match(page, /\| up: every host boots \| 15 min 57 s \|\n\| firewall \\\| matrix \(FAILED\) \| 0 min 51 s \|/);
    assert.match(page, /## Reports left out\n\n- .*broken\.json/);
  });

  it('says so when there is nothing to read', () => {
    const empty = mkdtempSync(join(tmpdir(), 'oms-measurements-empty-'));
    try {
      const page = measurementsPage(readReports(empty), new Date());
      assert.match(page, /No drill report yet/);
      assert.match(page, /No benchmark report yet/);
      assert.match(page, /No suite record yet/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('the command line: --help, the page to a file, a bad option or a missing folder refused with exit 2', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'zx-scripts/measurements/cli.ts', ...args], { encoding: 'utf8' });
    const help = cli('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /usage: npm run measurements/);
    const out = join(dir, 'page.md');
    const made = cli('--reports', dir, '--out', out);
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stderr, /2 drills, 1 benchmarks, a suite record, 2 reports left out/);
    assert.match(readFileSync(out, 'utf8'), /^# Measurements/);
    const bad = cli('--nope');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Unknown option '--nope'[\s\S]*usage:/);
    const missing = cli('--reports', join(dir, 'nowhere'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no reports folder at .*nowhere/);
  });
});
