// npm run measurements: docs/measurements.md from the reports in reports/ (measurements.ts).
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { repoRoot } from '../lab/lab.ts';
import { measurementsPage, readReports } from './measurements.ts';

const USAGE = `usage: npm run measurements [-- options]

Writes docs/measurements.md from the newest report of each drill (reports/drills/), benchmark (reports/bench/) and
lab suite run (reports/suite/) on this machine: the one page measured figures live on.

options:
  --reports DIR  the reports folder (default: reports/ in the repository)
  --out FILE     where to write the page (default: docs/measurements.md); - for standard output
  -h, --help     this text

exit: 0 written, 1 it could not be written, 2 a bad command line or a reports folder that is not there`;

function main(argv: string[]): number {
  const { values, positionals } = parseCommandLine(argv, { reports: { type: 'string' }, out: { type: 'string' } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0] ?? ''}`);
  const reports = resolve(values.reports ?? join(repoRoot, 'reports'));
  if (!existsSync(reports)) throw new UsageError(`no reports folder at ${reports}: run a drill, a benchmark or the lab suite first`);
  const found = readReports(reports);
  const page = measurementsPage(found, new Date());
  const out = values.out ?? join(repoRoot, 'docs', 'measurements.md');
  if (out === '-') process.stdout.write(page);
  else writeFileSync(out, page);
  console.error(`measurements: ${String(found.drills.length)} drills, ${String(found.benches.length)} benchmarks, ${found.suite ? 'a' : 'no'} suite record` +
    `${found.unreadable.length > 0 ? `, ${String(found.unreadable.length)} reports left out` : ''}${out === '-' ? '' : ` -> ${out}`}`);
  return 0;
}

runCli('measurements', USAGE, (argv) => Promise.resolve().then(() => main(argv)));
