// npm run dashboards [-- --check]
// Renders dashboards/dashboards.yml into Grafana's JSON model (dashboards/grafana/) and Prometheus console pages
// (roles/prometheus/files/consoles/, deployed by roles/prometheus). --check writes nothing and exits 1 when a file is
// not what the source renders.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { DashboardError, invalidExpressions, parseDashboards, renderAll } from './dashboards.ts';

const repo = resolve(import.meta.dirname, '../..');

const USAGE = `usage: npm run dashboards [-- --check]

  renders dashboards/dashboards.yml into dashboards/grafana/UID.json and roles/prometheus/files/consoles/UID.html
  --check   write nothing; exit 1 when a rendered file is missing or differs`;

function run(argv: string[]): number {
  const { values, positionals } = parseCommandLine(argv, { check: { type: 'boolean', default: false } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
  const invalid = invalidExpressions(parseDashboards(readFileSync(join(repo, 'dashboards', 'dashboards.yml'), 'utf8')));
  if (invalid.length > 0) throw new DashboardError(`expressions promtool refuses:\n${invalid.join('\n')}`);
  const outputs = renderAll(repo);
  const stale = outputs.filter((o) => !existsSync(join(repo, o.path)) || readFileSync(join(repo, o.path), 'utf8') !== o.text);
  if (values.check) {
    for (const o of stale) console.error(`dashboards: ${o.path} is not what dashboards/dashboards.yml renders (run npm run dashboards)`);
    return stale.length > 0 ? 1 : 0;
  }
  for (const o of stale) {
    mkdirSync(dirname(join(repo, o.path)), { recursive: true });
    writeFileSync(join(repo, o.path), o.text);
    console.log(`dashboards: wrote ${o.path}`);
  }
  console.log(`dashboards: ${String(outputs.length)} files, ${String(stale.length)} changed`);
  return 0;
}

// runCli takes a promise: the synchronous work runs inside it, so that its errors are reported like any tool's
runCli('dashboards', USAGE, (argv) => Promise.resolve().then(() => run(argv)), [DashboardError]);
