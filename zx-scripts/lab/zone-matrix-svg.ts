// The zone matrix as a picture (SVG): a row per source zone, a column per destination zone, each cell the flows the
// check found open and blocked there, green where flows are allowed and open, grey where everything is blocked, red
// where the firewall did not do what the design says. Plain SVG with no script or external reference.
import { escapeXml } from '../lib/svg.ts';
import type { MatrixReport } from './zone-matrix.ts';

/** The zones in the order of the design's picture (outside in, then the operators' zones); others after, by name. */
const ORDER = ['ext', 'dmz', 'app', 'data', 'ops', 'mgmt', 'controller'];
const CELL_W = 132;
const CELL_H = 58;
const HEAD_W = 110;
const TOP = 92;

const rank = (zone: string): number => (ORDER.includes(zone) ? ORDER.indexOf(zone) : ORDER.length);

export function zoneMatrixSvg(report: MatrixReport): string {
  const pairs = Object.keys(report.byZones).map((k) => k.split(' -> ') as [string, string]);
  const sorted = (zones: string[]): string[] => [...new Set(zones)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const from = sorted(pairs.map(([f]) => f));
  const to = sorted(pairs.map(([, t]) => t));
  const width = HEAD_W + to.length * CELL_W + 16;
  const height = TOP + from.length * CELL_H + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(width)}" height="${String(height)}" viewBox="0 0 ${String(width)} ${String(height)}" font-family="sans-serif" font-size="12">`,
    '<style>.open{fill:#cdebcf}.blocked{fill:#ececec}.mismatched{fill:#f5c2c2}.none{fill:#fff}text.n{font-variant-numeric:tabular-nums}</style>',
    `<rect width="${String(width)}" height="${String(height)}" fill="#fff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">Zone matrix: ${String(report.checked)} flows on ${String(report.ports.length)} ports, ${String(report.mismatches.length)} mismatch${report.mismatches.length === 1 ? '' : 'es'}</text>`,
    `<text x="12" y="42">${String(report.allowedOpen)} allowed and open, ${String(report.forbiddenBlocked)} forbidden and blocked, in ${String(report.seconds)} s; rows: from, columns: to</text>`,
  ];
  to.forEach((zone, i) => out.push(`<text x="${String(HEAD_W + i * CELL_W + CELL_W / 2)}" y="${String(TOP - 10)}" text-anchor="middle" font-weight="bold">${escapeXml(zone)}</text>`));
  from.forEach((source, r) => {
    const y = TOP + r * CELL_H;
    out.push(`<text x="12" y="${String(y + CELL_H / 2 + 4)}" font-weight="bold">${escapeXml(source)}</text>`);
    to.forEach((dest, c) => {
      const x = HEAD_W + c * CELL_W;
      const counts = report.byZones[`${source} -> ${dest}`];
      const kind = counts === undefined ? 'none' : counts.mismatched > 0 ? 'mismatched' : counts.open > 0 ? 'open' : 'blocked';
      out.push(`<rect class="${kind}" data-zones="${escapeXml(`${source} -> ${dest}`)}" x="${String(x)}" y="${String(y)}" width="${String(CELL_W - 4)}" height="${String(CELL_H - 4)}" rx="3" stroke="#bbb"/>`);
      if (counts === undefined) {
        out.push(`<text x="${String(x + CELL_W / 2 - 2)}" y="${String(y + CELL_H / 2 + 2)}" text-anchor="middle" fill="#999">not probed</text>`);
        return;
      }
      out.push(`<text class="n" x="${String(x + 8)}" y="${String(y + 20)}">${String(counts.open)} open</text>`);
      out.push(`<text class="n" x="${String(x + 8)}" y="${String(y + 38)}">${String(counts.blocked)} blocked</text>`);
      if (counts.mismatched > 0) out.push(`<text class="n" x="${String(x + 8)}" y="${String(y + 52)}" fill="#a00" font-weight="bold">${String(counts.mismatched)} MISMATCHED</text>`);
    });
  });
  out.push(`<text x="12" y="${String(height - 14)}" fill="#555">time (NTP to the controller): ${String(report.ntp.open)} open, ${String(report.ntp.blocked)} blocked, ${String(report.ntp.mismatched)} mismatched</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
