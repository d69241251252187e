// A service's release, built on the controller and shipped to the hosts as one archive (roles/node_runtime deploys
// it): the service compiled by tsc to JavaScript, @oms/service-common compiled beside it, and exactly the production
// dependencies npm ci installed for it (the same versions the tests ran against, from package-lock.json).
//
//   <release>/package.json              {name, version, type: module}
//   <release>/RELEASE.json              service, version, the Node.js it was built with, the inputs' fingerprint
//   <release>/src/main.js               the entry point: node src/main.js CONFIG.json
//   <release>/node_modules/...          the production dependency closure (npm ls --omit=dev)
//   <release>/node_modules/@oms/service-common/src/*.js
//
// The version is the package's version and a fingerprint of everything that goes into the build (the sources, the
// lockfile, the compiler settings, this file): the same inputs give the same version, so a deploy of unchanged code
// changes nothing, and an archive already built for a version is reused.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class ReleaseError extends Error {
  override name = 'ReleaseError';
}

export interface Release {
  service: string;
  version: string;
  /** the archive (tar.gz) whose top folder is the release */
  archive: string;
  /** true when this call built it, false when an archive of this version was there already */
  built: boolean;
}

const COMMON = 'common';
const COMMON_PACKAGE = '@oms/service-common';

/** The services a release can be built for: folders of services/ with a src/main.ts (common is a library). */
export function releasableServices(repo: string): string[] {
  return readdirSync(join(repo, 'services'))
    .filter((name) => name !== COMMON && existsSync(join(repo, 'services', name, 'src', 'main.ts')))
    .sort();
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

/** The fingerprint of a service's build inputs (hex). */
export function inputsFingerprint(repo: string, service: string): string {
  const files = [
    ...sourceFiles(join(repo, 'services', service, 'src')),
    join(repo, 'services', service, 'package.json'),
    ...sourceFiles(join(repo, 'services', COMMON, 'src')),
    join(repo, 'services', COMMON, 'package.json'),
    join(repo, 'package-lock.json'),
    join(repo, 'tsconfig.json'),
    join(repo, 'zx-scripts', 'release', 'release.ts'),
  ];
  const hash = createHash('sha256');
  hash.update(process.version); // the compiler's and the dependencies' output may depend on the Node.js major
  for (const file of files) hash.update(relative(repo, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** Where a path of the production dependency closure goes in the release (null: not copied). */
export function releasePathOf(repo: string, service: string, installed: string): string | null {
  const rel = relative(repo, installed);
  if (rel === '' || rel.startsWith('..')) return null;
  const parts = rel.split('/');
  if (parts[0] === 'node_modules') {
    if (parts[1] === '@oms') return null; // the workspaces themselves: compiled, not copied
    return rel;
  }
  // a workspace's own node_modules (a version that differs from the hoisted one)
  if (parts[0] === 'services' && parts[2] === 'node_modules') {
    const inner = parts.slice(2).join('/');
    if (parts[1] === service) return inner;
    if (parts[1] === COMMON) return `node_modules/${COMMON_PACKAGE}/${inner}`;
  }
  throw new ReleaseError(`${rel}: a production dependency outside the places a release takes them from`);
}

async function productionClosure(repo: string, service: string): Promise<string[]> {
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable', '--workspace', `services/${service}`], { cwd: repo, maxBuffer: 16 * 1024 * 1024 })
    .catch((error: unknown) => { throw new ReleaseError(`npm ls for ${service} failed (run npm ci first): ${(error as { stderr?: string }).stderr ?? String(error)}`); });
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Copies one installed package without the packages nested in it (those are in the closure on their own). */
function copyPackage(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => !relative(from, src).split('/').includes('node_modules'),
  });
}

async function compile(repo: string, service: string, staging: string): Promise<void> {
  const out = join(staging, 'tsc');
  const config = join(staging, 'tsconfig.json');
  writeFileSync(config, JSON.stringify({
    extends: join(repo, 'tsconfig.json'),
    compilerOptions: {
      noEmit: false, outDir: out, rootDir: join(repo, 'services'), rewriteRelativeImportExtensions: true,
      sourceMap: true, declaration: false, incremental: false, typeRoots: [join(repo, 'node_modules', '@types')],
    },
    include: [],
    // common's sources as root files: reached only through its package name, tsc would take them for a library's
    files: [join(repo, 'services', service, 'src', 'main.ts'), ...sourceFiles(join(repo, 'services', COMMON, 'src'))],
  }, null, 2));
  await run(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', config], { cwd: repo, maxBuffer: 16 * 1024 * 1024 })
    .catch((error: unknown) => { throw new ReleaseError(`tsc failed for ${service}:\n${(error as { stdout?: string }).stdout ?? String(error)}`); });
  const app = join(staging, 'app');
  mkdirSync(app);
  renameSync(join(out, service, 'src'), join(app, 'src'));
  const common = join(app, 'node_modules', COMMON_PACKAGE);
  mkdirSync(common, { recursive: true });
  if (existsSync(join(out, COMMON, 'src'))) renameSync(join(out, COMMON, 'src'), join(common, 'src'));
  const commonPackage = JSON.parse(readFileSync(join(repo, 'services', COMMON, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(common, 'package.json'), JSON.stringify({ ...commonPackage, exports: { './*': './src/*.js' } }, null, 2) + '\n');
}

/**
 * Builds the release of one service into `outDir` (<service>-<version>.tar.gz), unless an archive of that version is
 * there already.
 */
export async function buildRelease(repo: string, service: string, outDir: string): Promise<Release> {
  if (!releasableServices(repo).includes(service)) {
    throw new ReleaseError(`unknown service '${service}' (services with a release: ${releasableServices(repo).join(', ')})`);
  }
  const pkg = JSON.parse(readFileSync(join(repo, 'services', service, 'package.json'), 'utf8')) as { name: string; version: string };
  const fingerprint = inputsFingerprint(repo, service);
  const version = `${pkg.version}-${fingerprint.slice(0, 12)}`;
  const folder = `${service}-${version}`;
  const archive = join(outDir, `${folder}.tar.gz`);
  if (existsSync(archive)) return { service, version, archive, built: false };

  mkdirSync(outDir, { recursive: true });
  const staging = join(outDir, `.build-${folder}-${String(process.pid)}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    await compile(repo, service, staging);
    const app = join(staging, 'app');
    for (const installed of await productionClosure(repo, service)) {
      const to = releasePathOf(repo, service, installed);
      if (to !== null && !existsSync(join(app, to))) copyPackage(installed, join(app, to));
    }
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: pkg.name, version, private: true, type: 'module' }, null, 2) + '\n');
    writeFileSync(join(app, 'RELEASE.json'), JSON.stringify({ service, version, node: process.version, inputs: fingerprint }, null, 2) + '\n');
    // the release must load: every import of the entry point's module graph resolves (nothing starts: main.js is
    // not imported, its dependencies are)
    await run(process.execPath, ['--input-type=module', '-e',
      `for (const f of ${JSON.stringify(readdirSync(join(app, 'src')).filter((f) => f.endsWith('.js') && f !== 'main.js'))}) await import('./src/' + f);`],
    { cwd: app }).catch((error: unknown) => { throw new ReleaseError(`the release of ${service} does not load: ${(error as { stderr?: string }).stderr ?? String(error)}`); });
    renameSync(app, join(staging, folder));
    const partial = `${archive}.partial`;
    await run('tar', ['--create', '--gzip', '--file', partial, '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-C', staging, folder]);
    renameSync(partial, archive);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return { service, version, archive, built: true };
}

/** Removes archives of a service other than the newest `keep` (by modification time). */
export function pruneReleases(outDir: string, service: string, keep: number): string[] {
  if (!existsSync(outDir)) return [];
  const mine = readdirSync(outDir)
    .filter((f) => f.startsWith(`${service}-`) && f.endsWith('.tar.gz') && /^\d/.test(f.slice(service.length + 1)))
    .map((f) => ({ f, at: statSync(join(outDir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  const gone = mine.slice(keep).map((m) => m.f);
  for (const f of gone) rmSync(join(outDir, f));
  return gone;
}
