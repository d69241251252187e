// The benchmarks' curve pictures: what they draw, and that a real browser renders them with their figures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderSvg } from '../lib/chromium.ts';
import { curvesSvg } from './curves.ts';
import { dbCurves, type DbReport, type DbStep } from './db.ts';

const step = (clients: number, tps: number, p95: number): DbStep => ({ clients, seconds: 10, transactions: tps * 10, errors: 0, tps, ms: { p50: p95 / 2, p95, p99: p95 * 1.5 } });
const db: DbReport = {
  benchmark: 'db', at: '2026-12-07T11:40:00.000Z', transaction: 'oms.place_order + oms.settle_order', path: 'app1 -> HAProxy -> db1',
  steps: [step(1, 80, 12), step(2, 150, 13), step(4, 290, 14), step(8, 450, 18), step(16, 556.6, 29), step(32, 540, 61)],
  ceiling: step(16, 556.6, 29),
};

describe('bench curves', () => {
  it('a rate curve and p95/p99 curves per series, the ceiling and the goal as lines, connections on a log scale', () => {
    const svg = curvesSvg({ ...dbCurves(db), latencyGoalMs: 50 });
    assert.equal(svg.match(/<polyline class="curve"/g)?.length, 3, 'achieved, p95 and p99');
    assert.equal(svg.match(/<line class="level"/g)?.length, 2, 'the ceiling and the goal');
    const ticks = [...svg.matchAll(/text-anchor="middle">(\d+)<\/text>/g)].map((m) => Number(m[1]));
    assert.deepEqual(ticks.slice(0, 6), [1, 2, 4, 8, 16, 32], 'every power of two from 1 to 32 connections');
    // the highest rate is drawn highest: y of the 16-connection point is the smallest of the rate curve
    const rate = /<polyline class="curve" data-curve="the order transaction" [^>]* points="([^"]+)"/.exec(svg)?.[1]?.split(' ').map((xy) => Number(xy.split(',')[1])) ?? [];
    assert.equal(rate.indexOf(Math.min(...rate)), 4);
    assert.throws(() => curvesSvg({ title: 'empty', subtitle: '', xLabel: 'clients', curves: [] }), /empty: no step to draw/);
  });

  it('renders in headless Chromium with its title, its figures and its legend', () => {
    const r = renderSvg(curvesSvg({ ...dbCurves(db), latencyGoalMs: 50 }));
    assert.equal(r.parseError, false);
    assert.deepEqual([r.width, r.height], [960, 400]);
    const texts = r.texts.join(' | ');
    for (const text of ['bench -- db: the order transaction', 'ceiling 556.6 transactions a second at 16 connections', 'ceiling 556.6/s', 'goal 50 ms', 'connections', 'the order transaction']) {
      assert.ok(texts.includes(text), `${text} in ${texts}`);
    }
    assert.ok(r.box && r.box.width > 800, JSON.stringify(r.box));
  });
});
