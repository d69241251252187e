// The dashboards: the rendered files are what dashboards/dashboards.yml renders, every expression is valid PromQL,
// a broken source is refused with the dashboard and panel named, and every console page renders in a real
// Prometheus (Debian's, the monitoring host's package, started on loopback with an empty configuration).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { consoleTemplate, DashboardError, invalidExpressions, parseDashboards, renderAll } from './dashboards.ts';

const repo = resolve(import.meta.dirname, '../..');
const source = (): string => readFileSync(join(repo, 'dashboards', 'dashboards.yml'), 'utf8');

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => { done(port); });
    });
  });
}

describe('dashboards', () => {
  it('the Grafana models and console pages in the repository are what dashboards.yml renders (npm run dashboards)', () => {
    for (const o of renderAll(repo)) assert.equal(readFileSync(join(repo, o.path), 'utf8'), o.text, `${o.path} is stale: run npm run dashboards`);
  });

  it('every panel\'s expression is valid PromQL (promtool)', () => {
    const dashboards = parseDashboards(source());
    assert.ok(dashboards.some((d) => d.uid === 'oms-overview'), 'the overview exists');
    assert.deepEqual(invalidExpressions(dashboards), []);
    const found = invalidExpressions([{ uid: 'oms-overview', title: 't', description: 'd', panels: [{ title: 'broken', expr: 'sum(rate(x[5m]) by', unit: 'short', legend: [] }] }]);
    assert.equal(found.length, 1);
    assert.match(found[0] ?? '', /dashboard oms-overview, panel 'broken'/);
  });

  it('a broken source is refused, each problem named by its dashboard and panel', () => {
    const refused = (text: string, pattern: RegExp): void => {
      assert.throws(() => parseDashboards(text), (e: unknown) => e instanceof DashboardError && pattern.test(e.message), text);
    };
    refused('dashboards: [', /does not parse/);
    refused('dashboards: []', /non-empty list/);
    refused('dashboards:\n  - {uid: Bad Uid, title: t, description: d, panels: [{title: p, expr: up, unit: short}]}', /dashboard Bad Uid: uid must be/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: up, unit: short}]}\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: up, unit: short}]}', /dashboard oms-a: uid used twice/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: []}', /dashboard oms-a: panels must be a non-empty list/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, unit: short}]}', /dashboard oms-a, panel 'p': expr is required/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: up, unit: furlongs}]}', /panel 'p': unit must be one of reqps, s, percentunit, short, bytes, not "furlongs"/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: up, unit: short, legend: [in-stance]}]}', /panel 'p': legend must be a list of label names/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: "up`", unit: short}]}', /panel 'p': expr may not contain a backquote/);
    refused('dashboards:\n  - {uid: oms-a, title: t, description: d, panels: [{title: p, expr: up, unit: short, colour: red}]}', /panel 'p': unknown key colour/);
  });

  it('every console page renders in a real Prometheus: each panel\'s table, with its series or "no data"', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-consoles-'));
    const port = await freePort();
    const dashboards = parseDashboards(source());
    const first = dashboards[0];
    assert.ok(first);
    // the repository's pages, and a copy of the first with a template error, which must not pass for a page
    const consoles = join(dir, 'consoles');
    cpSync(join(repo, 'roles', 'prometheus', 'files', 'consoles'), consoles, { recursive: true });
    mkdirSync(join(dir, 'libraries'));
    writeFileSync(join(consoles, 'oms-broken-test.html'), consoleTemplate({ ...first, uid: 'oms-broken-test' }, dashboards).replace('{{ end }}</table>', '</table>'));
    writeFileSync(join(dir, 'prometheus.yml'), 'global: {}\n');
    const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${String(port)}`, `--web.console.templates=${consoles}`, `--web.console.libraries=${join(dir, 'libraries')}`],
    { stdio: 'ignore' });
    try {
      const base = `http://127.0.0.1:${String(port)}`;
      for (let i = 0; ; i++) {
        const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false);
        if (ready) break;
        assert.ok(i < 100, 'Prometheus did not become ready within 10 s');
        await sleep(100);
      }
      for (const d of dashboards) {
        const page = await fetch(`${base}/consoles/${d.uid}.html`);
        const html = await page.text();
        assert.equal(page.status, 200, `${d.uid}: ${html.slice(0, 300)}`);
        for (const p of d.panels) assert.ok(html.includes(`<h2>${p.title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</h2>`), `${d.uid}: panel '${p.title}'`);
        // an empty Prometheus: every panel says "no data", except the ones that add a value of their own
        const empty = (html.match(/no data/g) ?? []).length;
        assert.ok(empty >= d.panels.length - 1 && empty <= d.panels.length, `${d.uid}: ${String(empty)} panels without data of ${String(d.panels.length)}`);
        for (const other of dashboards.filter((x) => x.uid !== d.uid)) assert.ok(html.includes(`href="${other.uid}.html"`), `${d.uid} links ${other.uid}`);
      }
      // a template error is Prometheus' 500, which the status check above catches
      const broken = await fetch(`${base}/consoles/oms-broken-test.html`);
      assert.equal(broken.status, 500);
      assert.match(await broken.text(), /error parsing template/);
      t.diagnostic(`${String(dashboards.length)} console pages rendered by Prometheus ${base}`);
    } finally {
      prometheus.kill('SIGTERM');
      await new Promise((done) => { prometheus.once('close', done); });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
