// npm run controller -- <command>: the controller's state (PKI, secrets, SSH key) as an encrypted bundle.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCa, PkiError } from '@oms/certs/pki';
import { parseCommandLine, refuseOtherOptions, runCli, UsageError } from '../lib/cli.ts';
import { stateDir as defaultStateDir } from '../lab/state.ts';
import { BUNDLED, BundleError, exportBundle, MIN_PASSPHRASE, openBundle, restoreBundle, type BundledFile } from './bundle.ts';

const USAGE = `usage: npm run controller -- <command> [options]

commands:
  export --out FILE         write the state folder's ${BUNDLED.join(', ')} as one encrypted file (never over an existing one)
  inspect --in FILE         decrypt and check a bundle; list what it holds; writes nothing
  restore --in FILE [--replace]
                            write a bundle's folders into the state folder; folders already there are refused,
                            or with --replace moved aside to <folder>.before-restore-<time>; then every CA in
                            pki/ is checked (its key belongs to its certificate)

options:
  --passphrase-file FILE    the passphrase (first line; at least ${MIN_PASSPHRASE} characters); or the environment
                            variable OMS_BUNDLE_PASSPHRASE. Never on the command line: other users see it there.
  --state DIR               the controller's state folder (default: $OMS_LAB_STATE or /var/lib/omslab)`;

function passphrase(file: string | undefined): string {
  if (file !== undefined) {
    if (!existsSync(file)) throw new BundleError(`no passphrase file at ${file}`);
    return readFileSync(file, 'utf8').split('\n')[0] ?? '';
  }
  const env = process.env['OMS_BUNDLE_PASSPHRASE'];
  if (env === undefined || env === '') throw new UsageError('give the passphrase with --passphrase-file FILE or OMS_BUNDLE_PASSPHRASE');
  return env;
}

function summary(files: BundledFile[]): string {
  const per = BUNDLED.map((d) => {
    const mine = files.filter((f) => f.path.startsWith(`${d}/`));
    return `${d}: ${mine.length} files`;
  });
  const bytes = files.reduce((n, f) => n + f.size, 0);
  return `${per.join(', ')} (${bytes} bytes)`;
}

/** Every CA under pki/ must load: its key present, private to its owner and belonging to its certificate. */
function checkCas(state: string): string[] {
  const pki = join(state, 'pki');
  if (!existsSync(pki)) return [];
  return readdirSync(pki, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.includes('.before-restore-')).map((e) => {
    const ca = loadCa(join(pki, e.name));
    const field = ca.cert.subject.getField('CN') as { value?: unknown } | null;
    const cn = field?.value;
    return `${e.name}: CA ${String(cn)}, key matches, valid until ${ca.cert.validity.notAfter.toISOString().slice(0, 10)}`;
  });
}

function main(argv: string[]): number {
  const { values, positionals } = parseCommandLine(argv, {
    out: { type: 'string' },
    in: { type: 'string' },
    state: { type: 'string' },
    'passphrase-file': { type: 'string' },
    replace: { type: 'boolean', default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra.join(' ')}`);
  const state = resolve(values.state ?? defaultStateDir);
  const given = { out: values.out !== undefined, in: values.in !== undefined, replace: values.replace };
  const only = (allowed: (keyof typeof given)[]): void => { refuseOtherOptions(command, given, allowed); };
  switch (command) {
    case 'export': {
      only(['out']);
      if (values.out === undefined) throw new UsageError('export needs --out FILE');
      const files = exportBundle(state, resolve(values.out), passphrase(values['passphrase-file']));
      console.log(`wrote ${resolve(values.out)} from ${state}: ${summary(files)}`);
      console.log('keep it away from the controller, and the passphrase away from the bundle');
      return 0;
    }
    case 'inspect': {
      only(['in']);
      if (values.in === undefined) throw new UsageError('inspect needs --in FILE');
      const { header, files } = openBundle(resolve(values.in), passphrase(values['passphrase-file']));
      console.log(`made ${header.created} from ${header.source}: ${summary(files)}`);
      for (const f of files) console.log(`  ${f.mode.toString(8).padStart(4, '0')} ${String(f.size).padStart(7)}  ${f.path}`);
      return 0;
    }
    case 'restore': {
      only(['in', 'replace']);
      if (values.in === undefined) throw new UsageError('restore needs --in FILE');
      const result = restoreBundle(resolve(values.in), state, passphrase(values['passphrase-file']), { replace: values.replace });
      for (const aside of result.movedAside) console.log(`moved aside: ${aside}`);
      console.log(`restored into ${state} the bundle made ${result.created} from ${result.source}: ${summary(result.files)}`);
      for (const line of checkCas(state)) console.log(`  ${line}`);
      return 0;
    }
    default:
      throw new UsageError(command === undefined ? 'a command is needed' : `unknown command ${command}`);
  }
}

runCli('controller', USAGE, (argv) => Promise.resolve().then(() => main(argv)), [BundleError, PkiError]);
