// npm run screenshot -- [--page UID] [--out FILE] [--under-load SECONDS] [--width PX] [--height PX]
// A picture of one of the kit's console pages (dashboards/dashboards.yml, rendered by Prometheus on the monitoring
// host) as the lab shows it now, taken with headless Chromium from Debian (lib/chromium.ts). The page is asked
// for as Prometheus' own clients ask: from inside the monitoring host's namespace with the `prometheus` client
// certificate; the pages are plain HTML evaluated on the server (no script, no asset), so the browser renders the
// saved answer and needs no certificate of its own, nor any network. --under-load runs the users' load (npm run load's shoppers) for
// SECONDS and takes the picture 20 s before its end, when the 1-minute and 5-minute rates have filled.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromiumBinary, screenshotHtml } from '../lib/chromium.ts';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { loadInventory, type Inventory } from '../lib/inventory.ts';
import { consolePage } from '../drills/monitoring.ts';
import { defaultInventory, repoRoot, status } from '../lab/lab.ts';
import { DEFAULT_USERS, loadConfig, LoadInputError, runK6 } from '../load/k6.ts';
import { parseDashboards } from './dashboards.ts';
import { timeStamp } from '../lib/run-id.ts';

const USAGE = `usage: npm run screenshot -- [options]

Takes a PNG of one of the kit's console pages as the lab's monitoring host renders it now, with headless Chromium
(Debian's chromium, which npm run bootstrap installs). Needs the lab (npm run lab -- up).

  --page UID            a dashboard of dashboards/dashboards.yml (default oms-overview)
  --out FILE            where the PNG goes (default docs/images/UID.png)
  --under-load SECONDS  run the users' load (k6's shoppers) for SECONDS (90-3600) and take the picture 20 s before
                        its end
  --width PX, --height PX   the browser window (default 1280 x 1100; 320-4000)

exit: 0 the picture was written, 1 it could not be taken, 2 a bad command line or a lab that is not up`;

export interface ScreenshotOptions { page: string; out: string; underLoad: number | undefined; width: number; height: number }

/** The command line as options; every problem is a UsageError naming the option. */
export function screenshotOptions(argv: string[], pages: readonly string[]): ScreenshotOptions | 'help' {
  const { values, positionals } = parseCommandLine(argv, {
    page: { type: 'string' }, out: { type: 'string' }, 'under-load': { type: 'string' }, width: { type: 'string' }, height: { type: 'string' },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
  const page = values.page ?? 'oms-overview';
  if (!pages.includes(page)) throw new UsageError(`unknown page '${page}' (pages: ${pages.join(', ')})`);
  const out = values.out ?? join('docs', 'images', `${page}.png`);
  if (!out.endsWith('.png')) throw new UsageError(`--out names a .png file, got '${out}'`);
  const whole = (name: string, value: string | undefined, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`--${name} takes a whole number from ${String(min)} to ${String(max)}, got '${value}'`);
    return Number(value);
  };
  const underLoad = values['under-load'] === undefined ? undefined : whole('under-load', values['under-load'], 0, 90, 3600);
  return { page, out, underLoad, width: whole('width', values.width, 1280, 320, 4000), height: whole('height', values.height, 1100, 320, 4000) };
}

/** The page as Prometheus renders it now, asked for from the monitoring host with its client certificate. */
async function renderedPage(inventory: Inventory, page: string): Promise<string> {
  const r = await consolePage(inventory, page);
  if (r.exitCode !== 0) throw new Error(`console page ${page}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

async function main(argv: string[]): Promise<number> {
  const pages = parseDashboards(readFileSync(join(repoRoot, 'dashboards', 'dashboards.yml'), 'utf8')).map((d) => d.uid);
  const options = screenshotOptions(argv, pages);
  if (options === 'help') { console.log(USAGE); return 0; }
  const inventory = loadInventory(defaultInventory);
  if (!(await status(defaultInventory)).up) throw new LoadInputError('the lab is not up (npm run lab -- up)');
  chromiumBinary();
  let load: Promise<{ code: number | null }> | undefined;
  if (options.underLoad !== undefined) {
    const run = `screenshot-${timeStamp()}`;
    const config = loadConfig(inventory, { run, seconds: options.underLoad, users: DEFAULT_USERS, thresholds: false, ackLog: false, outDir: join(repoRoot, 'reports', 'load', run) });
    console.log(`screenshot: the users' load for ${String(options.underLoad)} s (reports/load/${run}); the picture in ${String(options.underLoad - 20)} s`);
    load = runK6(inventory, config, () => undefined);
    await sleep((options.underLoad - 20) * 1000);
  }
  const at = new Date();
  const html = await renderedPage(inventory, options.page);
  const out = resolve(repoRoot, options.out);
  // the page's own refresh would only reload the saved copy
  const size = screenshotHtml(html.replace(/<meta http-equiv="refresh"[^>]*>/i, ''), out, options.width, options.height);
  console.log(`screenshot: ${options.out}: ${options.page} at ${at.toISOString()}, ${String(size.width)} x ${String(size.height)} px, ${String(Math.round(readFileSync(out).length / 1024))} KiB`);
  if (load) {
    const { code } = await load;
    console.log(`screenshot: the load ended (k6 exit ${String(code)})`);
  }
  return 0;
}

if (process.argv[1] === import.meta.filename) runCli('screenshot', USAGE, main, [LoadInputError]);
