// The kit's dashboards (dashboards/dashboards.yml), written once and rendered twice: as Grafana's JSON model for
// operators who run Grafana, and as a Prometheus console page that Prometheus on the monitoring host serves itself
// (server-side: each panel a table of its series' current values, no JavaScript).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

export class DashboardError extends Error {
  override name = 'DashboardError';
}

export const UNITS = ['reqps', 's', 'percentunit', 'short', 'bytes'] as const;
export type Unit = (typeof UNITS)[number];

export interface Panel { title: string; expr: string; unit: Unit; legend: string[] }
export interface Dashboard { uid: string; title: string; description: string; panels: Panel[] }

const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The dashboards of a dashboards.yml text; every problem is named by its dashboard and panel. */
export function parseDashboards(text: string): Dashboard[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new DashboardError(`dashboards.yml does not parse: ${(error as Error).message}`);
  }
  const list = (doc as { dashboards?: unknown } | null)?.dashboards;
  if (!Array.isArray(list) || list.length === 0) throw new DashboardError('dashboards.yml: `dashboards` must be a non-empty list');
  const problems: string[] = [];
  const uids = new Set<string>();
  const out = list.map((d: Record<string, unknown>, i): Dashboard => {
    const where = `dashboard ${typeof d.uid === 'string' ? d.uid : `#${String(i + 1)}`}`;
    if (typeof d.uid !== 'string' || !/^[a-z][a-z0-9-]{2,39}$/.test(d.uid)) problems.push(`${where}: uid must be 3-40 lower-case letters, digits and dashes`);
    else if (uids.has(d.uid)) problems.push(`${where}: uid used twice`);
    else uids.add(d.uid);
    for (const key of ['title', 'description'] as const) if (typeof d[key] !== 'string' || d[key] === '') problems.push(`${where}: ${key} is required`);
    const panels = Array.isArray(d.panels) ? d.panels as Record<string, unknown>[] : [];
    if (panels.length === 0) problems.push(`${where}: panels must be a non-empty list`);
    return {
      uid: String(d.uid), title: String(d.title), description: String(d.description),
      panels: panels.map((p, j): Panel => {
        const at = `${where}, panel ${typeof p.title === 'string' ? `'${p.title}'` : `#${String(j + 1)}`}`;
        if (typeof p.title !== 'string' || p.title === '') problems.push(`${at}: title is required`);
        if (typeof p.expr !== 'string' || p.expr.trim() === '') problems.push(`${at}: expr is required`);
        else if (p.expr.includes('`')) problems.push(`${at}: expr may not contain a backquote`);
        if (!UNITS.includes(p.unit as Unit)) problems.push(`${at}: unit must be one of ${UNITS.join(', ')}, not ${JSON.stringify(p.unit)}`);
        const legend = p.legend === undefined ? [] : p.legend;
        if (!Array.isArray(legend) || !legend.every((l) => typeof l === 'string' && LABEL.test(l))) problems.push(`${at}: legend must be a list of label names`);
        for (const key of Object.keys(p)) if (!['title', 'expr', 'unit', 'legend'].includes(key)) problems.push(`${at}: unknown key ${key}`);
        return { title: String(p.title), expr: String(p.expr).trim(), unit: p.unit as Unit, legend: Array.isArray(legend) ? legend as string[] : [] };
      }),
    };
  });
  if (problems.length > 0) throw new DashboardError(problems.join('\n'));
  return out;
}

/** Every panel's expression checked by promtool (as recording rules of a throw-away file); [] when all are valid. */
export function invalidExpressions(dashboards: Dashboard[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'oms-dashboards-'));
  try {
    const panels = dashboards.flatMap((d) => d.panels.map((p) => ({ d, p })));
    const problems: string[] = [];
    // one file per panel: promtool names the rule file, not the rule, that is wrong
    panels.forEach(({ d, p }, i) => {
      const file = join(dir, `${String(i)}.yml`);
      writeFileSync(file, stringify({ groups: [{ name: 'check', rules: [{ record: 'dashboard:check', expr: p.expr }] }] }));
      try {
        execFileSync('promtool', ['check', 'rules', file], { stdio: 'pipe' });
      } catch (error) {
        const out = `${String((error as { stdout?: Buffer }).stdout ?? '')}${String((error as { stderr?: Buffer }).stderr ?? '')}`;
        problems.push(`dashboard ${d.uid}, panel '${p.title}': ${out.split('\n').filter((l) => /error|parse|unexpected/i.test(l)).join(' ').trim() || 'promtool refused it'}`);
      }
    });
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const grafanaLegend = (legend: string[]): string => legend.map((l) => `{{${l}}}`).join(' ');

/** Grafana's JSON model: one time series panel per panel, two a row, on a data source chosen at import. */
export function grafanaJson(d: Dashboard): string {
  const model = {
    __inputs: [{ name: 'DS_PROMETHEUS', label: 'Prometheus', description: 'The kit\'s Prometheus (the monitoring host)', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' }],
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['oms'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    panels: d.panels.map((p, i) => ({
      id: i + 1,
      type: 'timeseries',
      title: p.title,
      datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: p.legend.length > 0 }, tooltip: { mode: 'multi', sort: 'none' } },
      targets: [{ refId: 'A', datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, expr: p.expr, legendFormat: p.legend.length > 0 ? grafanaLegend(p.legend) : '__auto', range: true }],
    })),
  };
  return `${JSON.stringify(model, null, 2)}\n`;
}

const FORMAT: Record<Unit, string> = {
  reqps: '{{ printf "%.2f" .Value }}/s',
  s: '{{ humanizeDuration .Value }}',
  percentunit: '{{ humanizePercentage .Value }}',
  short: '{{ humanize .Value }}',
  bytes: '{{ humanize1024 .Value }}B',
};

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A Prometheus console template: Prometheus evaluates each panel's expression when the page is asked for and
 * renders a table of its series (legend labels, value); "no data" where it has none.
 */
export function consoleTemplate(d: Dashboard, all: Dashboard[]): string {
  const nav = all.map((x) => (x.uid === d.uid ? `<b>${escapeHtml(x.title)}</b>` : `<a href="${x.uid}.html">${escapeHtml(x.title)}</a>`)).join(' · ');
  const panels = d.panels.map((p, i) => {
    const name = p.legend.length > 0 ? p.legend.map((l) => `{{ .Labels.${l} }}`).join(' ') : 'value';
    const sort = p.legend[0] !== undefined ? ` | sortByLabel "${p.legend[0]}"` : '';
    return [
      `<section class="panel" id="panel-${String(i + 1)}"><h2>${escapeHtml(p.title)}</h2>`,
      `<table>{{ range query \`${p.expr}\`${sort} }}<tr><td>${name}</td><td class="v">${FORMAT[p.unit]}</td></tr>{{ else }}<tr><td class="none" colspan="2">no data</td></tr>{{ end }}</table>`,
      '</section>',
    ].join('\n');
  });
  return [
    `{{/* ${d.uid}: generated from dashboards/dashboards.yml by npm run dashboards; do not edit */}}`,
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(d.title)}</title><meta http-equiv="refresh" content="30">`,
    '<style>body{font:14px system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}nav{margin-bottom:12px}',
    '.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:10px}',
    '.panel{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px 10px}h1{font-size:20px;margin:4px 0}',
    'h2{font-size:13px;margin:2px 0 6px;color:#555}table{width:100%;border-collapse:collapse}td{padding:2px 4px;border-top:1px solid #eee}',
    'td.v{text-align:right;font-variant-numeric:tabular-nums;font-weight:600}td.none{color:#a00}</style></head><body>',
    `<nav>${nav}</nav><h1>${escapeHtml(d.title)}</h1><p>${escapeHtml(d.description)} Evaluated at {{ with query "time()" }}{{ . | first | value | humanizeTimestamp }}{{ end }}.</p>`,
    '<div class="grid">',
    ...panels,
    '</div></body></html>',
    '',
  ].join('\n');
}

export interface Outputs { path: string; text: string }

/** Every file `npm run dashboards` writes, relative to the repository. */
export function renderAll(repo: string): Outputs[] {
  const dashboards = parseDashboards(readFileSync(join(repo, 'dashboards', 'dashboards.yml'), 'utf8'));
  return dashboards.flatMap((d) => [
    { path: join('dashboards', 'grafana', `${d.uid}.json`), text: grafanaJson(d) },
    { path: join('roles', 'prometheus', 'files', 'consoles', `${d.uid}.html`), text: consoleTemplate(d, dashboards) },
  ]);
}
