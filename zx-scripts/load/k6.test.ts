// The load's configuration, checked against the lab inventory before k6 starts: bad options are refused with a
// message that says what to change, and nothing is run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadInventory } from '../lib/inventory.ts';
import { defaultInventory, repoRoot } from '../lab/lab.ts';
import { clientAddresses } from './addresses.ts';
import { cutByStop, DEFAULT_THRESHOLDS, DEFAULT_USERS, loadConfig, LoadInputError, PACE, type LoadOptions } from './k6.ts';

const inventory = loadInventory(defaultInventory);
const good: LoadOptions = { run: 'load-1', seconds: 60, users: DEFAULT_USERS, thresholds: DEFAULT_THRESHOLDS, ackLog: false, outDir: '/tmp/x' };
const mint = (subject: string): string => `token-of-${subject}`;

describe('the load configuration', () => {
  it('the lab defaults: one source address per user, one token per ordering user, the VIP by name', () => {
    const c = loadConfig(inventory, good, mint);
    const { users, loadTest } = clientAddresses(inventory);
    assert.equal(users.length, 192);
    assert.ok(DEFAULT_USERS.browse + DEFAULT_USERS.order + DEFAULT_USERS.read <= users.length);
    assert.equal(loadTest.length, 8, 'the load-test network 10.90.10.240/29 is not among the users');
    assert.ok(!users.includes('10.90.10.240') && !users.includes('10.90.10.247') && users.includes('10.90.10.248'));
    assert.equal(c.tokens.length, DEFAULT_USERS.order);
    assert.equal(c.tokens[0], 'token-of-shopper-1');
    assert.equal(c.vip, inventory.gatewayVip);
    assert.equal(c.name, inventory.gatewayName);
    assert.deepEqual(c.paceSeconds, PACE);
  });

  it('a benchmark sends from the load-test network alone, at a fixed rate, with as many VUs as asked (more than addresses)', () => {
    const c = loadConfig(inventory, { ...good, orderRate: 300, users: { browse: 0, order: 300, read: 0 } }, mint);
    assert.deepEqual(c.sourceAddresses, clientAddresses(inventory).loadTest);
    assert.equal(c.orderRate, 300);
    assert.equal(c.tokens.length, 300);
    assert.deepEqual(loadConfig(inventory, good, mint).sourceAddresses, clientAddresses(inventory).users);
  });

  it('a user orders at most as often as the gateway lets one address order (10/minute)', () => {
    assert.ok(60 / PACE.order <= 10, `${String(60 / PACE.order)} orders/minute per user`);
    assert.ok(2 * 60 / PACE.browse <= 100 && 2 * 60 / PACE.read <= 100, 'two API requests per iteration stay under 100/minute');
  });

  const refused: [string, Partial<LoadOptions>, RegExp][] = [
    ['more users than source addresses', { users: { browse: 100, order: 92, read: 1 } }, /193 users, but the client host has 192 users' source addresses/],
    ['no users', { users: { browse: 0, order: 0, read: 0 } }, /no users/],
    ['readers without orderers', { users: { browse: 0, order: 0, read: 5 } }, /at least one order user/],
    ['a negative user count', { users: { browse: -1, order: 1, read: 0 } }, /browse users must be a whole number >= 0/],
    ['a fractional duration', { seconds: 1.5 }, /seconds must be a whole number from 1 to 86400/],
    ['a run id with odd characters', { run: 'x; rm -rf /' }, /a run id is 1-60 of a-z 0-9 -/],
    ['a failed rate above 1', { thresholds: { ...DEFAULT_THRESHOLDS, failedRate: 2 } }, /a rate from 0 to 1/],
    ['a benchmark rate of 0', { orderRate: 0, users: { browse: 0, order: 20, read: 0 } }, /an order rate is a whole number of orders a second from 1 to 10000/],
    ['a benchmark with browsing users', { orderRate: 50, users: { browse: 1, order: 20, read: 0 } }, /a benchmark runs orders alone/],
    ['a zero latency threshold', { thresholds: { ...DEFAULT_THRESHOLDS, p95Ms: 0 } }, /latency thresholds must be > 0 ms/],
  ];
  for (const [what, change, message] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => loadConfig(inventory, { ...good, ...change }, mint), (e: unknown) => e instanceof LoadInputError && message.test(e.message));
    });
  }
});

describe('a drill\'s load, stopped', () => {
  it('counts as cut only the requests k6 cancelled after it was told to stop; everything else keeps its outcome', () => {
    const stopping = 1_000_000;
    const at = (end: number, outcome: 'ok' | 'failed' | 'unknown', error?: string) => ({ id: 'x', start: end - 50, end, outcome, ...(error ? { error } : {}) });
    assert.equal(cutByStop(at(stopping + 5, 'unknown', '1000 context canceled'), stopping), true);
    assert.equal(cutByStop(at(stopping - 5, 'unknown', '1000 context canceled'), stopping), false, 'cancelled before the stop: the system\'s doing');
    assert.equal(cutByStop(at(stopping + 5, 'unknown', '1050 request timeout'), stopping), false, 'no answer in time is the system\'s');
    assert.equal(cutByStop(at(stopping + 5, 'failed', '1000 context canceled'), stopping), false);
    assert.equal(cutByStop(at(stopping + 5, 'ok'), stopping), false);
  });
});

describe('npm run load: bad command lines', () => {
  const load = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'zx-scripts/load/cli.ts'), ...args], { cwd: repoRoot, encoding: 'utf8' });
  const cases: [string[], RegExp][] = [
    [['--seconds', 'ten'], /--seconds takes a whole number, got 'ten'/],
    [['--p95=-3'], /--p95 takes a number, got '-3'/],
    [['--p99', '0'], /latency thresholds must be > 0 ms/],
    [['--order', '500'], /532 users, but the client host has 192 users' source addresses/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /unexpected argument 'extra'/],
  ];
  for (const [args, message] of cases) {
    it(`${args.join(' ')}: exit 2, says why, runs nothing`, () => {
      const r = load(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stdout, /reports:/);
    });
  }
  it('--help prints the usage', () => {
    const r = load('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /usage: npm run load/);
  });
});
