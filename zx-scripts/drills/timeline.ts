// A drill's timeline as a picture (SVG, written next to its JSON report): the drill's own writes and the users' orders
// per second, acknowledged and failed, with the fault, the writes' return, the heal and the return to whole marked,
// and the time without writes shaded. Plain SVG with no script or external reference: any browser opens it.
import { escapeXml } from '../lib/svg.ts';
import type { WriteEvent } from './framework.ts';

export interface TimelineInput {
  drill: string;
  passed: boolean;
  lost: number;
  /** the drill's own load, and the users' orders when it ran under them */
  writes: readonly WriteEvent[];
  orders?: readonly WriteEvent[];
  /** epoch ms; null where it never happened */
  faultAt: number;
  backAt: number | null;
  healedAt: number;
  wholeAt: number | null;
  secondsWithoutWrites: number;
  goalSeconds: number;
}

const W = 960;
const H = 360;
const LEFT = 56;
const RIGHT = 16;
const TOP = 48;
const BOTTOM = 44;

const esc = escapeXml;
const fixed = (n: number): string => String(Math.round(n * 10) / 10);

/** Per-second counts of the events' ends from `from`: acknowledged and failed (failed and unknown). */
export function perSecond(events: readonly WriteEvent[], from: number, seconds: number): { ok: number[]; failed: number[] } {
  const ok = new Array<number>(seconds).fill(0);
  const failed = new Array<number>(seconds).fill(0);
  for (const e of events) {
    const i = Math.floor((e.end - from) / 1000);
    if (i < 0 || i >= seconds) continue;
    if (e.outcome === 'ok') ok[i] = (ok[i] ?? 0) + 1;
    else if (e.outcome === 'failed' || e.outcome === 'unknown') failed[i] = (failed[i] ?? 0) + 1;
  }
  return { ok, failed };
}

export function timelineSvg(t: TimelineInput): string {
  const all = [...t.writes, ...(t.orders ?? [])];
  const from = Math.min(t.faultAt, ...all.map((e) => e.start));
  const to = Math.max(t.faultAt + 1000, t.healedAt, t.wholeAt ?? 0, ...all.map((e) => e.end));
  const seconds = Math.max(1, Math.ceil((to - from) / 1000));
  const writes = perSecond(t.writes, from, seconds);
  const orders = t.orders ? perSecond(t.orders, from, seconds) : undefined;
  const top = Math.max(1, ...writes.ok.map((n, i) => n + (writes.failed[i] ?? 0)), ...(orders?.ok ?? []));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const x = (ms: number): number => LEFT + ((ms - from) / (seconds * 1000)) * plotW;
  const y = (n: number): number => TOP + plotH - (n / top) * plotH;
  const bar = plotW / seconds;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${String(W)}" height="${String(H)}" viewBox="0 0 ${String(W)} ${String(H)}" font-family="sans-serif" font-size="12">`);
  parts.push(`<title>${esc(t.drill)}: ${t.passed ? 'passed' : 'FAILED'}</title>`);
  parts.push(`<rect width="${String(W)}" height="${String(H)}" fill="#ffffff"/>`);
  parts.push(`<text x="${String(LEFT)}" y="20" font-size="15" font-weight="bold">${esc(t.drill)}: ${t.passed ? 'passed' : 'FAILED'}, LOST ${String(t.lost)}</text>`);
  parts.push(`<text x="${String(LEFT)}" y="38" fill="#444">${fixed(t.secondsWithoutWrites)} s without writes (goal ${fixed(t.goalSeconds)} s); the drill's writes per second (green, failed red)${orders ? ', the users\' orders per second (blue)' : ''}</text>`);
  // the time without writes, from the fault to their return
  const outageEnd = t.backAt ?? to;
  parts.push(`<rect class="outage" x="${fixed(x(t.faultAt))}" y="${String(TOP)}" width="${fixed(Math.max(1, x(outageEnd) - x(t.faultAt)))}" height="${String(plotH)}" fill="#fde2e2"/>`);
  for (let i = 0; i < seconds; i++) {
    const ok = writes.ok[i] ?? 0;
    const failed = writes.failed[i] ?? 0;
    const bx = LEFT + i * bar;
    if (ok > 0) parts.push(`<rect class="ok" x="${fixed(bx)}" y="${fixed(y(ok))}" width="${fixed(Math.max(0.5, bar - 0.5))}" height="${fixed(y(0) - y(ok))}" fill="#3a9d5d"/>`);
    if (failed > 0) parts.push(`<rect class="failed" x="${fixed(bx)}" y="${fixed(y(ok + failed))}" width="${fixed(Math.max(0.5, bar - 0.5))}" height="${fixed(y(ok) - y(ok + failed))}" fill="#d64545"/>`);
  }
  if (orders) {
    const points = orders.ok.map((n, i) => `${fixed(LEFT + (i + 0.5) * bar)},${fixed(y(n))}`).join(' ');
    parts.push(`<polyline class="orders" points="${points}" fill="none" stroke="#2f6fd6" stroke-width="1.5"/>`);
  }
  // axes: seconds from the fault below, per second at the left
  parts.push(`<line x1="${String(LEFT)}" y1="${fixed(y(0))}" x2="${String(W - RIGHT)}" y2="${fixed(y(0))}" stroke="#333"/>`);
  parts.push(`<line x1="${String(LEFT)}" y1="${String(TOP)}" x2="${String(LEFT)}" y2="${fixed(y(0))}" stroke="#333"/>`);
  parts.push(`<text x="${String(LEFT - 6)}" y="${String(TOP + 4)}" text-anchor="end">${String(top)}/s</text>`);
  parts.push(`<text x="${String(LEFT - 6)}" y="${fixed(y(0) + 4)}" text-anchor="end">0</text>`);
  const step = [5, 10, 15, 30, 60, 120, 300].find((s) => (to - from) / 1000 / s <= 12) ?? 600;
  for (let s = Math.ceil((from - t.faultAt) / 1000 / step) * step; t.faultAt + s * 1000 <= to; s += step) {
    const tx = x(t.faultAt + s * 1000);
    parts.push(`<line x1="${fixed(tx)}" y1="${fixed(y(0))}" x2="${fixed(tx)}" y2="${fixed(y(0) + 4)}" stroke="#333"/>`);
    parts.push(`<text x="${fixed(tx)}" y="${fixed(y(0) + 16)}" text-anchor="middle">${s > 0 ? '+' : ''}${String(s)} s</text>`);
  }
  parts.push(`<text x="${String(W - RIGHT)}" y="${String(H - 6)}" text-anchor="end" fill="#444">seconds from the fault</text>`);
  const marks: [string, number | null, string][] = [
    ['fault', t.faultAt, '#b00020'],
    ['writes back', t.backAt, '#1b7f3b'],
    ['heal', t.healedAt, '#c77700'],
    ['whole', t.wholeAt, '#555555'],
  ];
  marks.forEach(([name, at, colour], i) => {
    if (at === null) return;
    const mx = x(at);
    const label = name === 'fault' ? name : `${name} +${fixed((at - t.faultAt) / 1000)} s`;
    parts.push(`<line class="mark" data-mark="${name}" x1="${fixed(mx)}" y1="${String(TOP)}" x2="${fixed(mx)}" y2="${fixed(y(0))}" stroke="${colour}" stroke-dasharray="4 3"/>`);
    // a label that would run past the right edge (about 7 px a character) is written to the left of its mark
    const leftOfMark = mx + 3 + 7 * label.length > W - RIGHT;
    parts.push(`<text x="${fixed(leftOfMark ? mx - 3 : mx + 3)}" y="${String(TOP + 12 + i * 13)}"${leftOfMark ? ' text-anchor="end"' : ''} fill="${colour}">${esc(label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
