import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { init, issue, leafSpecs, loadCa, status } from '@oms/certs/pki';
import { loadInventory } from '../lib/inventory.ts';
import { BundleError, exportBundle, openBundle, restoreBundle } from './bundle.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const PASS = 'correct horse battery staple';
const specs = leafSpecs(loadInventory(join(repoRoot, 'inventories/lab')));

/** Every file under `dir` with its mode and content, for comparing two state folders. */
function snapshot(dir: string, sub: string[] = ['pki', 'secrets', 'ssh']): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = join(dir, rel);
    if (statSync(abs).isDirectory()) {
      for (const n of readdirSync(abs)) walk(join(rel, n));
    } else {
      out.set(rel, `${(statSync(abs).mode & 0o777).toString(8)} ${readFileSync(abs, 'base64')}`);
    }
  };
  for (const s of sub) if (existsSync(join(dir, s))) walk(s);
  return out;
}

describe('controller bundle', () => {
  let root: string;
  let state: string;
  let bundle: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'oms-bundle-'));
    state = join(root, 'old-controller');
    await init(join(state, 'pki', 'lab'), 'lab');
    await issue(join(state, 'pki', 'lab'), specs);
    mkdirSync(join(state, 'secrets'), { mode: 0o700 });
    writeFileSync(join(state, 'secrets', 'pgbackrest-cipher'), 'the repository key\n', { mode: 0o600 });
    mkdirSync(join(state, 'ssh'), { mode: 0o700 });
    writeFileSync(join(state, 'ssh', 'id_ed25519'), 'an ssh key\n', { mode: 0o600 });
    writeFileSync(join(state, 'ssh', 'known_hosts'), 'db1 ssh-ed25519 AAAA\n', { mode: 0o644 });
    // not carried: made again by `lab up`
    mkdirSync(join(state, 'apt-proxy'));
    writeFileSync(join(state, 'apt-proxy', 'cache'), 'x');
    bundle = join(root, 'controller.bundle');
    exportBundle(state, bundle, PASS);
  });
  after(() => { rmSync(root, { recursive: true, force: true }); });

  it('a new controller restores the PKI, secrets and SSH key byte for byte, modes kept; its CA issues nothing new', () => {
    const fresh = join(root, 'new-controller');
    const result = restoreBundle(bundle, fresh, PASS);
    assert.deepEqual(snapshot(fresh), snapshot(state));
    assert.equal(existsSync(join(fresh, 'apt-proxy')), false);
    assert.deepEqual(result.movedAside, []);
    assert.equal(statSync(join(fresh, 'pki', 'lab', 'ca', 'ca.key')).mode & 0o777, 0o600);
    loadCa(join(fresh, 'pki', 'lab'));
    // every certificate the old controller issued is good under the restored CA: nothing to re-issue
    assert.deepEqual(status(join(fresh, 'pki', 'lab'), specs).filter((r) => r.problem), []);
    assert.equal(readFileSync(bundle).includes(Buffer.from('the repository key')), false, 'the bundle holds a secret in clear');
  });

  it('a wrong passphrase, a changed byte and a changed header are refused, and nothing is written', () => {
    const target = join(root, 'refused');
    assert.throws(() => restoreBundle(bundle, target, 'not the passphrase at all'), /does not decrypt with this passphrase/);
    const raw = readFileSync(bundle);
    const flipped = Buffer.from(raw);
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] ?? 0) ^ 0xff;
    writeFileSync(join(root, 'flipped.bundle'), flipped);
    assert.throws(() => openBundle(join(root, 'flipped.bundle'), PASS), /does not decrypt/);
    const text = raw.toString('latin1');
    const older = Buffer.from(text.replace(/"created":"\d{4}/, '"created":"1999'), 'latin1');
    writeFileSync(join(root, 'header.bundle'), older);
    assert.throws(() => openBundle(join(root, 'header.bundle'), PASS), /does not decrypt/);
    writeFileSync(join(root, 'short.bundle'), raw.subarray(0, 20));
    assert.throws(() => openBundle(join(root, 'short.bundle'), PASS), /cut short|damaged header/);
    writeFileSync(join(root, 'other.bundle'), 'hello');
    assert.throws(() => openBundle(join(root, 'other.bundle'), PASS), /not a controller bundle/);
    assert.throws(() => openBundle(join(root, 'missing.bundle'), PASS), /no bundle at/);
    assert.equal(existsSync(target), false);
  });

  it('restore refuses a state folder that has a PKI; --replace moves it aside, never deletes it', () => {
    const used = join(root, 'used');
    mkdirSync(join(used, 'pki', 'lab'), { recursive: true });
    writeFileSync(join(used, 'pki', 'lab', 'marker'), 'the PKI that was there');
    assert.throws(() => restoreBundle(bundle, used, PASS), (e: unknown) => e instanceof BundleError && /already has pki.*--replace/.test(e.message));
    assert.equal(readFileSync(join(used, 'pki', 'lab', 'marker'), 'utf8'), 'the PKI that was there');
    assert.equal(existsSync(join(used, 'secrets')), false, 'a refused restore wrote the folders that were not there');
    const result = restoreBundle(bundle, used, PASS, { replace: true, now: new Date('2026-12-05T10:00:00Z') });
    assert.deepEqual(result.movedAside, [join(used, 'pki.before-restore-20261205T100000Z')]);
    assert.equal(readFileSync(join(used, 'pki.before-restore-20261205T100000Z', 'lab', 'marker'), 'utf8'), 'the PKI that was there');
    assert.deepEqual(snapshot(used), snapshot(state));
    assert.deepEqual(readdirSync(used).filter((n) => n.startsWith('.restore-')), [], 'the staging folder was left behind');
  });

  it('export refuses a short passphrase, an existing file, a folder that is not a state folder and a link', () => {
    assert.throws(() => exportBundle(state, join(root, 'a.bundle'), 'short'), /at least 16/);
    assert.throws(() => exportBundle(state, bundle, PASS), /exists; the bundle is never written over a file/);
    assert.throws(() => exportBundle(join(root, 'nothing'), join(root, 'b.bundle'), PASS), /has no pki folder/);
    assert.throws(() => exportBundle(state, join(root, 'no-such-folder', 'c.bundle'), PASS), /does not exist/);
    const linked = join(root, 'linked');
    mkdirSync(join(linked, 'pki'), { recursive: true });
    symlinkSync('/etc/passwd', join(linked, 'pki', 'passwd'));
    assert.throws(() => exportBundle(linked, join(root, 'd.bundle'), PASS), /neither a file nor a folder/);
    for (const n of ['a', 'b', 'd']) assert.equal(existsSync(join(root, `${n}.bundle`)), false);
  });

  it('the command line: export, inspect and restore; no passphrase or a wrong one exits 2 with the reason', () => {
    const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'zx-scripts/controller/cli.ts'), ...args], { encoding: 'utf8', env: { ...process.env, OMS_BUNDLE_PASSPHRASE: '', ...env } });
    const passFile = join(root, 'pass');
    writeFileSync(passFile, `${PASS}\n`, { mode: 0o600 });
    const out = join(root, 'cli.bundle');
    const exported = run(['export', '--state', state, '--out', out, '--passphrase-file', passFile]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, /pki: \d+ files, secrets: 1 files, ssh: 2 files/);
    const inspected = run(['inspect', '--in', out], { OMS_BUNDLE_PASSPHRASE: PASS });
    assert.equal(inspected.status, 0, inspected.stderr);
    assert.match(inspected.stdout, /0600 +\d+ +pki\/lab\/ca\/ca\.key/);
    const restored = run(['restore', '--in', out, '--state', join(root, 'cli-new'), '--passphrase-file', passFile]);
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, /lab: CA .*key matches/);
    const none = run(['restore', '--in', out, '--state', join(root, 'cli-none')]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /give the passphrase with --passphrase-file/);
    const wrong = run(['restore', '--in', out, '--state', join(root, 'cli-wrong')], { OMS_BUNDLE_PASSPHRASE: 'a wrong passphrase, long' });
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /does not decrypt/);
    const flag = run(['export', '--in', out, '--out', join(root, 'x.bundle')], { OMS_BUNDLE_PASSPHRASE: PASS });
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /export does not take --in/);
    assert.equal(existsSync(join(root, 'cli-none')) || existsSync(join(root, 'cli-wrong')) || existsSync(join(root, 'x.bundle')), false);
  });
});
