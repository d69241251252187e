// A benchmark's curves as a picture (SVG, written beside its JSON report): on the left what each step achieved a
// second against the load it offered (connections, clients or an arrival rate), on the right its p95 and p99 latency;
// a ceiling (the database's, measured in the same run) and a latency goal drawn as lines where the benchmark has them.
// Plain SVG with no script or external reference.
import { escapeXml } from '../lib/svg.ts';

export interface CurvePoint {
  /** the load offered: connections, clients, or orders a second */
  x: number;
  /** what the step achieved a second */
  perSecond: number;
  p95: number;
  p99: number;
}

export interface Curve { name: string; points: CurvePoint[] }

export interface CurvesInput {
  title: string;
  subtitle: string;
  /** what x is: "connections", "clients", "orders a second offered" */
  xLabel: string;
  curves: Curve[];
  ceiling?: { perSecond: number; label: string };
  latencyGoalMs?: number;
}

const W = 960;
const H = 400;
const PLOT_W = 380;
const PLOT_H = 250;
const TOP = 76;
const LEFTS = [70, 560];
const COLOURS = ['#1565c0', '#2e7d32', '#c62828', '#6a1b9a', '#ef6c00'];

const fixed = (n: number): string => String(Math.round(n * 10) / 10);

/** A scale from [min, max] onto [from, to]: logarithmic (base 2) when every value is > 0 and they span 8x or more. */
function scale(values: number[], from: number, to: number): { at: (v: number) => number; ticks: number[] } {
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (min > 0 && max / min >= 8) {
    const lo = Math.log2(min);
    const hi = Math.log2(max);
    const ticks: number[] = [];
    for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) ticks.push(2 ** e);
    return { at: (v) => from + ((Math.log2(v) - lo) / (hi - lo)) * (to - from), ticks };
  }
  const lo = Math.min(0, min);
  const hi = max > lo ? max : lo + 1;
  return { at: (v) => from + ((v - lo) / (hi - lo)) * (to - from), ticks: [lo, (lo + hi) / 2, hi] };
}

/** A y scale from 0 to a round top above every value. */
function yScale(values: number[]): { at: (v: number) => number; top: number } {
  const max = Math.max(1, ...values);
  const step = 10 ** Math.floor(Math.log10(max));
  const top = Math.ceil((max * 1.1) / step) * step;
  return { at: (v) => TOP + PLOT_H - (v / top) * PLOT_H, top };
}

export function curvesSvg(input: CurvesInput): string {
  const points = input.curves.flatMap((c) => c.points);
  if (points.length === 0) throw new Error(`${input.title}: no step to draw`);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(W)}" height="${String(H)}" viewBox="0 0 ${String(W)} ${String(H)}" font-family="sans-serif" font-size="12">`,
    `<rect width="${String(W)}" height="${String(H)}" fill="#fff"/>`,
    `<text x="16" y="22" font-size="15" font-weight="bold">${escapeXml(input.title)}</text>`,
    `<text x="16" y="40" fill="#444">${escapeXml(input.subtitle)}</text>`,
  ];
  const panels: { left: number; title: string; values: (p: CurvePoint) => number[]; extra: number[] }[] = [
    { left: LEFTS[0] ?? 0, title: 'achieved a second', values: (p) => [p.perSecond], extra: input.ceiling ? [input.ceiling.perSecond] : [] },
    { left: LEFTS[1] ?? 0, title: 'latency, ms (p95 solid, p99 dashed)', values: (p) => [p.p95, p.p99], extra: input.latencyGoalMs === undefined ? [] : [input.latencyGoalMs] },
  ];
  const x = scale(points.map((p) => p.x), 0, PLOT_W);
  for (const [i, panel] of panels.entries()) {
    const y = yScale([...points.flatMap(panel.values), ...panel.extra]);
    const px = (v: number): number => panel.left + x.at(v);
    out.push(`<text x="${String(panel.left)}" y="${String(TOP - 10)}" font-weight="bold">${escapeXml(panel.title)}</text>`);
    out.push(`<line x1="${String(panel.left)}" y1="${String(TOP + PLOT_H)}" x2="${String(panel.left + PLOT_W)}" y2="${String(TOP + PLOT_H)}" stroke="#888"/>`);
    out.push(`<line x1="${String(panel.left)}" y1="${String(TOP)}" x2="${String(panel.left)}" y2="${String(TOP + PLOT_H)}" stroke="#888"/>`);
    out.push(`<text x="${String(panel.left - 6)}" y="${String(TOP + 4)}" text-anchor="end">${fixed(y.top)}</text>`);
    out.push(`<text x="${String(panel.left - 6)}" y="${String(TOP + PLOT_H + 4)}" text-anchor="end">0</text>`);
    for (const t of x.ticks) out.push(`<text x="${fixed(px(t))}" y="${String(TOP + PLOT_H + 18)}" text-anchor="middle">${fixed(t)}</text>`);
    out.push(`<text x="${String(panel.left + PLOT_W)}" y="${String(TOP + PLOT_H + 36)}" text-anchor="end" fill="#444">${escapeXml(input.xLabel)}</text>`);
    const level = i === 0 ? input.ceiling : input.latencyGoalMs === undefined ? undefined : { perSecond: input.latencyGoalMs, label: `goal ${fixed(input.latencyGoalMs)} ms` };
    if (level) {
      out.push(`<line class="level" x1="${String(panel.left)}" y1="${fixed(y.at(level.perSecond))}" x2="${String(panel.left + PLOT_W)}" y2="${fixed(y.at(level.perSecond))}" stroke="#b00020" stroke-dasharray="6 4"/>`);
      out.push(`<text x="${String(panel.left + PLOT_W)}" y="${fixed(y.at(level.perSecond) - 4)}" text-anchor="end" fill="#b00020">${escapeXml(level.label)}</text>`);
    }
    for (const [c, curve] of input.curves.entries()) {
      const colour = COLOURS[c % COLOURS.length] ?? '#000';
      const sorted = [...curve.points].sort((a, b) => a.x - b.x);
      const series = i === 0 ? [{ pick: (p: CurvePoint) => p.perSecond, dash: '' }] : [{ pick: (p: CurvePoint) => p.p95, dash: '' }, { pick: (p: CurvePoint) => p.p99, dash: ' stroke-dasharray="5 3"' }];
      for (const s of series) {
        out.push(`<polyline class="curve" data-curve="${escapeXml(curve.name)}" fill="none" stroke="${colour}" stroke-width="2"${s.dash} points="${sorted.map((p) => `${fixed(px(p.x))},${fixed(y.at(s.pick(p)))}`).join(' ')}"/>`);
        for (const p of sorted) out.push(`<circle cx="${fixed(px(p.x))}" cy="${fixed(y.at(s.pick(p)))}" r="2.5" fill="${colour}"/>`);
      }
    }
  }
  input.curves.forEach((curve, c) => {
    out.push(`<rect x="${String(16 + c * 230)}" y="${String(H - 22)}" width="12" height="12" fill="${COLOURS[c % COLOURS.length] ?? '#000'}"/>`);
    out.push(`<text x="${String(32 + c * 230)}" y="${String(H - 12)}">${escapeXml(curve.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
