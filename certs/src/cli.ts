// npm run certs -- <command>: the kit's PKI from an inventory.
import { basename, resolve } from 'node:path';
import { parseCommandLine, refuseOtherOptions, runCli, UsageError } from '@oms/zx-scripts/lib/cli';
import { loadInventory } from '@oms/zx-scripts/lib/inventory';
import { DEFAULT_OPTIONS, PkiError, init, issue, leafSpecs, rotate, status, type Change, type LeafSpec } from './pki.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

const USAGE = `usage: npm run certs -- <command> [options]

commands:
  init                    create the CA (once; an existing CA is kept)
  issue [--host NAME]...  issue every host and service certificate the inventory implies that is missing,
                          expiring, or no longer matches it; good ones are left alone
  status [--json]         every certificate with its days to expiry; flags the ones to act on (exit 3 if any)
  rotate [--ca start|finish]
                          re-issue every leaf with a new key; --ca start also makes a new CA and keeps the old
                          one in the trust bundle until --ca finish

options:
  --inventory DIR         inventory (default: inventories/lab)
  --dir DIR               PKI folder (default: /var/lib/omslab/pki/<inventory name>)
  --threshold DAYS        re-issue / flag certificates with fewer days left (default: ${DEFAULT_OPTIONS.renewBeforeDays})`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {
    inventory: { type: 'string', default: resolve(repoRoot, 'inventories/lab') },
    dir: { type: 'string' },
    host: { type: 'string', multiple: true },
    threshold: { type: 'string' },
    json: { type: 'boolean', default: false },
    ca: { type: 'string' },
  });
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra.join(' ')}`);
  const threshold = values.threshold === undefined ? DEFAULT_OPTIONS.renewBeforeDays : Number(values.threshold);
  if (!Number.isInteger(threshold) || threshold < 0) throw new UsageError(`--threshold takes a whole number of days, got '${values.threshold ?? ''}'`);
  const options = { ...DEFAULT_OPTIONS, renewBeforeDays: threshold };
  const inventory = loadInventory(values.inventory);
  const name = basename(resolve(values.inventory));
  const dir = resolve(values.dir ?? `/var/lib/omslab/pki/${name}`);
  const only = values.host ?? [];
  const all = leafSpecs(inventory);
  const unknown = only.filter((h) => !all.some((s) => s.name === h));
  if (unknown.length > 0) throw new PkiError(`unknown host or identity: ${unknown.join(', ')} (not in ${values.inventory}); nothing was issued`);
  const specs: LeafSpec[] = only.length > 0 ? all.filter((s) => only.includes(s.name)) : all;
  const given = { host: values.host !== undefined, json: values.json, ca: values.ca !== undefined, threshold: values.threshold !== undefined };
  const allowed = (...options: (keyof typeof given)[]): void => { refuseOtherOptions(command, given, options); };

  switch (command) {
    case 'init': {
      allowed();
      report([await init(dir, name, options)], dir);
      return 0;
    }
    case 'issue': {
      allowed('host', 'threshold');
      report(await issue(dir, specs, options), dir);
      return 0;
    }
    case 'status': {
      allowed('json', 'threshold', 'host');
      const rows = status(dir, specs, options);
      if (values.json) {
        console.log(JSON.stringify(rows, null, 2));
      } else {
        for (const r of rows) {
          console.log(`${r.problem ? '!!' : 'ok'}  ${r.kind.padEnd(11)} ${r.name.padEnd(22)} ${String(r.daysLeft).padStart(5)} days  ${r.notAfter}${r.problem ? `  ${r.problem}` : ''}`);
        }
      }
      return rows.some((r) => r.problem) ? 3 : 0;
    }
    case 'rotate': {
      allowed('ca', 'host');
      const ca = values.ca ?? 'none';
      if (ca !== 'none' && ca !== 'start' && ca !== 'finish') throw new UsageError(`--ca takes start or finish, got '${ca}'`);
      if (ca !== 'none' && only.length > 0) throw new UsageError('--ca rotates every certificate; it does not take --host');
      report(await rotate(dir, name, specs, ca, options), dir);
      return 0;
    }
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function report(changes: Change[], dir: string): void {
  for (const c of changes) if (c.action !== 'unchanged') console.log(`${c.action.padEnd(9)} ${c.kind.padEnd(6)} ${c.name}${c.reason ? ` (${c.reason})` : ''}`);
  const count = (a: Change['action']): number => changes.filter((c) => c.action === a).length;
  console.log(`certs: ${count('created')} created, ${count('reissued')} re-issued, ${count('unchanged')} unchanged in ${dir}`);
}

runCli('certs', USAGE, main, [PkiError]);
