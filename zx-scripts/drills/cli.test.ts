// The drill and bench command lines, without a lab: --help, the list, and every refusal (exit 2, with the reason,
// before anything runs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../lab/lab.ts';

const cli = (tool: 'drills' | 'bench', ...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'zx-scripts', tool, 'cli.ts'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });

describe('npm run drill', () => {
  it('--help (and -h) prints the usage with the exit codes and what Ctrl-C does', () => {
    for (const flag of ['--help', '-h']) {
      const r = cli('drills', flag);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^usage: npm run drill -- <drill>\.\.\. \| all \| list \[--json\]/);
      assert.match(r.stdout, /exit: 0 every drill passed, 1 a drill failed or could not run, 2 a bad command line, 130 interrupted/);
      assert.match(r.stdout, /Ctrl-C heals the fault/);
    }
  });

  it('list names every drill, a line each', () => {
    const r = cli('drills', 'list');
    assert.equal(r.status, 0, r.stderr);
    const names = r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
    for (const name of ['pg-switchover', 'kafka-broker-kill', 'redis-master-kill', 'gateway-host-stop', 'app-host-kill', 'pg-cluster-loss']) assert.ok(names.includes(name), name);
  });

  it('every drill names the alerts its fault must raise, or says why a planned operation pages no one', () => {
    const r = cli('drills', 'list', '--json');
    assert.equal(r.status, 0, r.stderr);
    const drills = JSON.parse(r.stdout) as { name: string; alerts: string[]; quiet?: string }[];
    assert.ok(drills.length >= 20, `${String(drills.length)} drills listed`);
    const silent = drills.filter((d) => d.alerts.length === 0 && (d.quiet ?? '').trim() === '').map((d) => d.name);
    assert.deepEqual(silent, [], 'drills that name no alert and give no reason to page no one');
    const both = drills.filter((d) => d.alerts.length > 0 && d.quiet !== undefined).map((d) => d.name);
    assert.deepEqual(both, [], 'a drill either expects alerts or pages no one');
  });

  const refused: [string[], RegExp][] = [
    [[], /name a drill, all, or list/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['no-such-drill'], /unknown drill 'no-such-drill' \(drills: pg-switchover,/],
    [['--json=yes', 'list'], /--json/],
  ];
  for (const [args, message] of refused) {
    it(`${args.join(' ') || '(nothing)'}: exit 2 with the reason and the usage, runs nothing`, () => {
      const r = cli('drills', ...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /usage: npm run drill/);
      assert.equal(r.stdout, '');
    });
  }
});

describe('npm run bench', () => {
  it('--help prints the usage with the options and exit codes', () => {
    const r = cli('bench', '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: npm run bench -- db \| orders \| notifications \| stack/);
    assert.match(r.stdout, /--seconds S {2}seconds a step/);
    assert.match(r.stdout, /exit: 0 measured without errors/);
    assert.match(r.stdout, /3 measured without errors but the goal missed/);
    assert.match(r.stdout, /Goals: orders, the service at >= 0\.7 of pgbench's ceiling \(zones layout\); stack, >= 0\.5/);
  });

  const refused: [string[], RegExp][] = [
    [[], /name a benchmark/],
    [['db', '--seconds', 'x'], /--seconds takes a whole number from 1 to 600/],
    [['db', '--seconds', '601'], /--seconds takes a whole number from 1 to 600/],
    [['db', '--seconds', '1.5'], /--seconds takes a whole number from 1 to 600/],
    [['db', '--bogus'], /Unknown option '--bogus'/],
    [['disk'], /unknown benchmark 'disk'/],
    [['db', 'stack'], /unknown benchmark 'db stack'/],
  ];
  for (const [args, message] of refused) {
    it(`${args.join(' ') || '(nothing)'}: exit 2 with the reason, runs nothing`, () => {
      const r = cli('bench', ...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    });
  }
});
