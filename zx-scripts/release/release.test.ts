// The release builder: where installed packages go in a release, and a real build of the mail sink unpacked and
// started from its archive with the Node.js the hosts run (the controller's here), answering on loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { $ } from 'zx';
import { freePort } from '../testkit/daemon.ts';
import { localPki } from '../testkit/pki.ts';
import { buildRelease, inputsFingerprint, releasePathOf, ReleaseError } from './release.ts';

const repo = resolve(import.meta.dirname, '../..');

describe('release', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oms-release-'));
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('puts hoisted packages, a service\'s own versions and common\'s own versions where Node.js finds them', () => {
    assert.equal(releasePathOf(repo, 'mail-sink', `${repo}/node_modules/pino`), 'node_modules/pino');
    assert.equal(releasePathOf(repo, 'mail-sink', `${repo}/node_modules/a/node_modules/b`), 'node_modules/a/node_modules/b');
    assert.equal(releasePathOf(repo, 'mail-sink', `${repo}/services/mail-sink/node_modules/nodemailer`), 'node_modules/nodemailer');
    assert.equal(releasePathOf(repo, 'mail-sink', `${repo}/services/common/node_modules/zod`), 'node_modules/@oms/service-common/node_modules/zod');
    assert.equal(releasePathOf(repo, 'mail-sink', `${repo}/node_modules/@oms/service-common`), null, 'the workspaces are compiled, not copied');
    assert.equal(releasePathOf(repo, 'mail-sink', repo), null);
    assert.throws(() => releasePathOf(repo, 'mail-sink', `${repo}/services/order-service/node_modules/x`), ReleaseError);
  });

  it('a version is a fingerprint of the inputs: the same sources give the same one, another service another', () => {
    assert.equal(inputsFingerprint(repo, 'mail-sink'), inputsFingerprint(repo, 'mail-sink'));
    assert.notEqual(inputsFingerprint(repo, 'mail-sink'), inputsFingerprint(repo, 'order-service'));
  });

  it('refuses an unknown service', async () => {
    await assert.rejects(buildRelease(repo, 'common', dir), /unknown service 'common'/);
    await assert.rejects(buildRelease(repo, '../x', dir), ReleaseError);
  });

  it('the command line refuses a bad argument or service with exit 2 and says why', async () => {
    const cli = join(repo, 'zx-scripts', 'release', 'cli.ts');
    const bogus = await $({ nothrow: true })`${process.execPath} --import tsx ${cli} build mail-sink --bogus`.quiet();
    assert.equal(bogus.exitCode, 2);
    assert.match(bogus.stderr, /Unknown option '--bogus'[\s\S]*usage: npm run release -- build SERVICE/);
    const unknown = await $({ nothrow: true })`${process.execPath} --import tsx ${cli} build nope`.quiet();
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /unknown service 'nope' \(services with a release: mail-sink, notification-service, order-service\)/);
    const keep = await $({ nothrow: true })`${process.execPath} --import tsx ${cli} build mail-sink --keep 0`.quiet();
    assert.equal(keep.exitCode, 2);
    assert.match(keep.stderr, /--keep takes a whole number >= 1/);
  });

  it('builds the mail sink into an archive that runs on its own, and reuses it for the same inputs', { timeout: 180_000 }, async () => {
    const first = await buildRelease(repo, 'mail-sink', join(dir, 'out'));
    assert.equal(first.built, true);
    assert.match(first.version, /^0\.1\.0-[0-9a-f]{12}$/);
    const again = await buildRelease(repo, 'mail-sink', join(dir, 'out'));
    assert.deepEqual(again, { ...first, built: false });

    // unpacked far from the repository: nothing may resolve through the workspace's node_modules
    const unpacked = join(dir, 'unpacked');
    await $`mkdir -p ${unpacked} && tar -xzf ${first.archive} -C ${unpacked}`.quiet();
    const home = join(unpacked, `mail-sink-${first.version}`);
    assert.deepEqual(JSON.parse(readFileSync(join(home, 'RELEASE.json'), 'utf8')), { service: 'mail-sink', version: first.version, node: process.version, inputs: inputsFingerprint(repo, 'mail-sink') });

    const pki = await localPki(join(dir, 'pki'));
    const [smtpPort, controlPort] = [await freePort(), await freePort()];
    const token = 'release-test-token-0123456789';
    const config = join(dir, 'sink.json');
    writeFileSync(config, JSON.stringify({
      smtp: { address: '127.0.0.1', port: smtpPort, hostname: 'localhost', tls: { cert: pki.server.cert, key: pki.server.key }, users: [{ user: 'notifications', password: 'a-password-of-16+' }] },
      control: { address: '127.0.0.1', port: controlPort, token },
      storeFile: join(dir, 'store.jsonl'),
    }));
    const sink = spawn(process.execPath, [join(home, 'src', 'main.js'), config], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let output = '';
    sink.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    sink.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    try {
      let stats: Response | undefined;
      for (let i = 0; i < 100 && stats === undefined; i++) {
        stats = await fetch(`http://127.0.0.1:${String(controlPort)}/stats`, { headers: { authorization: `Bearer ${token}` } }).catch(async () => { await new Promise((r) => setTimeout(r, 100)); return undefined; });
      }
      assert.ok(stats, `the released sink did not answer: ${output}`);
      assert.equal(stats.status, 200);
    } finally {
      sink.kill('SIGTERM');
      await new Promise((r) => sink.once('close', r));
    }

    // a bad configuration: exit 2 with the problem named, as from the sources
    writeFileSync(config, JSON.stringify({ smtp: {} }));
    const bad = await $({ nothrow: true, cwd: '/' })`${process.execPath} ${join(home, 'src', 'main.js')} ${config}`.quiet();
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /smtp\.port/);
  });
});
