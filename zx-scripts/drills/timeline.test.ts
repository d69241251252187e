// The drill timeline picture: counts per second, the marks where they happened, and well-formed SVG.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WriteEvent } from './framework.ts';
import { renderSvg } from '../lib/chromium.ts';
import { perSecond, timelineSvg } from './timeline.ts';

const T0 = 1_700_000_000_000;
/** every 100 ms for `seconds`, failed between the fault (5 s) and the writes' return (7 s) */
function events(seconds: number, failing: [number, number] = [5000, 7000]): WriteEvent[] {
  const out: WriteEvent[] = [];
  for (let ms = 0; ms < seconds * 1000; ms += 100) {
    const outcome = ms >= failing[0] && ms < failing[1] ? 'failed' : 'ok';
    out.push({ id: `w${String(ms)}`, start: T0 + ms, end: T0 + ms + 50, outcome });
  }
  return out;
}

describe('drill timeline', () => {
  it('perSecond counts acknowledged and failed writes by the second they ended in', () => {
    const counts = perSecond(events(10), T0, 10);
    assert.deepEqual(counts.ok, [10, 10, 10, 10, 10, 0, 0, 10, 10, 10]);
    assert.deepEqual(counts.failed, [0, 0, 0, 0, 0, 10, 10, 0, 0, 0]);
  });

  it('draws the writes, the orders, the outage and the four marks, as well-formed SVG', () => {
    const svg = timelineSvg({
      drill: 'pg-switchover', passed: true, lost: 0, writes: events(30), orders: events(30, [5000, 6000]),
      faultAt: T0 + 5000, backAt: T0 + 7000, healedAt: T0 + 12_000, wholeAt: T0 + 20_000, secondsWithoutWrites: 2, goalSeconds: 11,
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.match(svg, /pg-switchover: passed, LOST 0/);
    assert.match(svg, /2 s without writes \(goal 11 s\)/);
    assert.equal(svg.match(/class="ok"/g)?.length, 28, 'a green bar for each second with acknowledged writes');
    assert.equal(svg.match(/class="failed"/g)?.length, 2, 'a red bar for each second with failures');
    assert.equal(svg.match(/class="orders"/g)?.length, 1);
    for (const mark of ['fault', 'writes back', 'heal', 'whole']) assert.match(svg, new RegExp(`data-mark="${mark}"`));
    assert.match(svg, /writes back \+2 s/);
    assert.match(svg, /whole \+15 s/);
    // every element is closed: as many opening tags as closing ones and self-closed ones
    const opened = (svg.match(/<[a-z]+[\s>]/g) ?? []).length;
    const closed = (svg.match(/<\/[a-z]+>/g) ?? []).length + (svg.match(/\/>/g) ?? []).length;
    assert.equal(opened, closed);
  });

  it('renders in headless Chromium at its size, with its title, its marks and what it drew', () => {
    const svg = timelineSvg({
      drill: 'kafka-broker-kill', passed: true, lost: 0, writes: events(30), orders: events(30, [5000, 6000]),
      faultAt: T0 + 5000, backAt: T0 + 7000, healedAt: T0 + 12_000, wholeAt: T0 + 20_000, secondsWithoutWrites: 2, goalSeconds: 11,
    });
    const declared = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg);
    const r = renderSvg(svg);
    assert.equal(r.parseError, false);
    assert.deepEqual([r.width, r.height], [Number(declared?.[1]), Number(declared?.[2])], 'drawn at the size it declares');
    const texts = r.texts.join(' | ');
    assert.match(texts, /kafka-broker-kill: passed, LOST 0/);
    for (const mark of ['fault', 'writes back \\+2 s', 'heal', 'whole \\+15 s']) assert.match(texts, new RegExp(mark), mark);
    assert.ok(r.box && r.box.width > 0.5 * r.width && r.box.height > 0.5 * r.height, `it drew across the picture: ${JSON.stringify(r.box)}`);
  });

  it('writes a mark\'s label near the right edge to the left of its mark, inside the picture', () => {
    const svg = timelineSvg({
      drill: 'late', passed: true, lost: 0, writes: events(30), faultAt: T0 + 5000, backAt: T0 + 7000, healedAt: T0 + 12_000,
      wholeAt: T0 + 29_900, secondsWithoutWrites: 2, goalSeconds: 11,
    });
    assert.match(svg, /text-anchor="end" fill="#555555">whole \+24\.9 s</);
    assert.match(svg, /<text x="[\d.]+" y="\d+" fill="#c77700">heal \+7 s</, 'a label with room stays right of its mark');
  });

  it('leaves out what never happened, and escapes the names it prints', () => {
    const svg = timelineSvg({
      drill: 'a<b&c', passed: false, lost: 3, writes: events(10, [5000, 10_000]), faultAt: T0 + 5000, backAt: null, healedAt: T0 + 8000,
      wholeAt: null, secondsWithoutWrites: 5, goalSeconds: 2,
    });
    assert.match(svg, /a&lt;b&amp;c: FAILED, LOST 3/);
    assert.doesNotMatch(svg, /data-mark="writes back"|data-mark="whole"|class="orders"/);
  });
});
