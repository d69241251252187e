// npm run release -- build SERVICE... [--out DIR] [--keep N] [--json]
// Builds the release archive of each service (zx-scripts/release/release.ts); roles/order_service,
// roles/notification_service and roles/mail_sink run it on the controller and ship the archive to their hosts.
import { resolve } from 'node:path';
import { parseCommandLine, runCli, UsageError } from '../lib/cli.ts';
import { buildRelease, pruneReleases, releasableServices, ReleaseError } from './release.ts';

const repo = resolve(import.meta.dirname, '../..');

const USAGE = `usage: npm run release -- build SERVICE... [--out DIR] [--keep N] [--json]

  build      compile each service with tsc and pack it with its production dependencies into
             DIR/<service>-<version>.tar.gz; an archive of the same version (same inputs) is reused
  --out DIR  where archives go (default: .toolchain/releases)
  --keep N   archives kept per service, the newest (default: 5)
  --json     print [{service, version, archive, built}] instead of a line per service

services: ${releasableServices(repo).join(', ')}`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {
    out: { type: 'string', default: resolve(repo, '.toolchain/releases') },
    keep: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  });
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, ...services] = positionals;
  if (command !== 'build') throw new UsageError(command === undefined ? 'a command is required' : `unknown command '${command}'`);
  if (services.length === 0) throw new UsageError('name at least one service');
  const keep = Number(values.keep);
  if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep takes a whole number >= 1, got '${values.keep}'`);
  const out = resolve(values.out);
  const releases = [];
  for (const service of services) {
    const release = await buildRelease(repo, service, out);
    pruneReleases(out, service, keep);
    releases.push(release);
    if (!values.json) console.log(`${service} ${release.version}: ${release.built ? 'built' : 'up to date'} (${release.archive})`);
  }
  if (values.json) console.log(JSON.stringify(releases));
  return 0;
}

runCli('release', USAGE, main, [ReleaseError]);
