// The PKI with real tools: openssl verifies every certificate, real TLS 1.3 handshakes prove mTLS, Java's keytool
// reads the PKCS12 keystores, and the CLI refuses bad input without writing anything.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { connect, createServer } from 'node:tls';
import { loadInventory } from '@oms/zx-scripts/lib/inventory';
import { SERVICE_IDENTITIES, init, issue, leafSpecs, pkiPaths, rotate } from './pki.ts';

const repo = resolve(import.meta.dirname, '../..');
const inventoryDir = join(repo, 'inventories/lab');
const inventory = loadInventory(inventoryDir);
const specs = leafSpecs(inventory);
const tmp = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

function certs(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'certs/src/cli.ts'), ...args], { encoding: 'utf8', cwd: repo });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8' });
}

/** Every file under a folder with its modification time: "nothing was written" is this snapshot unchanged. */
function snapshot(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) out[entry] = statSync(join(dir, entry)).mtimeMs;
  return out;
}

/** A TLS 1.3 server with a host certificate that requires a client certificate; resolves to 'ok' or what went wrong. */
async function handshake(server: { key: string; cert: string; ca: string }, client: { key?: string; cert?: string; ca: string }): Promise<string> {
  const tlsServer = createServer({ ...server, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    socket.end('hello\n');
  });
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  try {
    return await new Promise((done) => {
      const socket = connect({
        host: '127.0.0.1',
        port: (tlsServer.address() as AddressInfo).port,
        servername: 'db1.oms.lab',
        ca: client.ca,
        ...(client.key && client.cert ? { key: client.key, cert: client.cert } : {}),
        minVersion: 'TLSv1.3',
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () => { done(data === 'hello\n' ? 'ok' : `closed without the greeting (${data || 'nothing'})`); });
      socket.on('error', (err: Error) => { done(err.message); });
    });
  } finally {
    tlsServer.close();
  }
}

const read = (path: string): string => readFileSync(path, 'utf8');

describe('the PKI', () => {
  const dir = tmp('oms-pki-');
  const p = pkiPaths(dir);
  const server = (name: string) => ({ key: read(p.leafKey({ kind: 'server', name })), cert: read(p.leafCert({ kind: 'server', name })) });
  const client = (name: string) => ({ key: read(p.leafKey({ kind: 'client', name })), cert: read(p.leafCert({ kind: 'client', name })) });

  before(async () => {
    assert.equal((await init(dir, 'lab')).action, 'created');
    const changes = await issue(dir, specs);
    assert.equal(changes.filter((c) => c.action === 'created').length, inventory.hosts.length + SERVICE_IDENTITIES.length);
  });

  it('issues certificates that openssl verifies against the trust bundle', () => {
    const files = specs.map((s) => p.leafCert(s));
    const out = openssl('verify', '-CAfile', p.bundle, ...files);
    assert.equal(out.trim().split('\n').filter((l) => l.endsWith(': OK')).length, files.length, out);
  });

  it('puts hostname, FQDN and every address in SANs (gateways also the VIP and the API name, app hosts the order-service name), with the right key usages', () => {
    for (const host of inventory.hosts) {
      const text = openssl('x509', '-in', p.leafCert({ kind: 'server', name: host.name }), '-noout', '-ext', 'subjectAltName,extendedKeyUsage,basicConstraints');
      const sans = /Subject Alternative Name: \n\s+(.*)/.exec(text)?.[1]?.split(', ').sort();
      const want = [`DNS:${host.name}`, `DNS:${host.name}.oms.lab`, `IP Address:${host.address}`, `IP Address:${host.mgmtAddress}`];
      if (host.groups.includes('gateways')) want.push('IP Address:10.90.20.100', 'DNS:api.oms.lab');
      if (host.groups.includes('app_servers')) want.push('DNS:order-service.oms.lab');
      assert.deepEqual(sans, want.sort(), host.name);
      assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, /CA:FALSE/);
    }
    for (const id of SERVICE_IDENTITIES) {
      const text = openssl('x509', '-in', p.leafCert({ kind: 'client', name: id }), '-noout', '-subject', '-ext', 'extendedKeyUsage');
      assert.match(text, new RegExp(`CN ?= ?${id}`));
      assert.match(text, /Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
    }
  });

  it('names the CA key in authorityKeyIdentifier (not the leaf key, node-forge\'s default)', () => {
    const caSki = /Subject Key Identifier: \n\s+(\S+)/.exec(openssl('x509', '-in', p.caCert, '-noout', '-ext', 'subjectKeyIdentifier'))?.[1];
    const leaf = openssl('x509', '-in', p.leafCert({ kind: 'server', name: 'gw1' }), '-noout', '-ext', 'authorityKeyIdentifier,subjectKeyIdentifier');
    assert.ok(caSki);
    assert.match(leaf, new RegExp(`Authority Key Identifier: \\n\\s+(keyid:)?${caSki}`));
    assert.doesNotMatch(leaf, new RegExp(`Subject Key Identifier: \\n\\s+${caSki}`));
  });

  it('keeps private keys private: 0600', () => {
    assert.equal(statSync(p.caKey).mode & 0o777, 0o600);
    for (const s of specs) assert.equal(statSync(p.leafKey(s)).mode & 0o777, 0o600, s.name);
  });

  it('changes nothing on a second issue', async () => {
    const before = snapshot(dir);
    const changes = await issue(dir, specs);
    assert.ok(changes.every((c) => c.action === 'unchanged'));
    assert.deepEqual(snapshot(dir), before);
    const cli = certs('issue', '--dir', dir);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`0 created, 0 re-issued, ${String(specs.length)} unchanged`));
  });

  it('mTLS over TLS 1.3: accepts a client certificate of this CA, rejects another CA\'s and none', async () => {
    const ca = read(p.bundle);
    assert.equal(await handshake({ ...server('db1'), ca }, { ...client('order-service'), ca }), 'ok');

    const other = tmp('oms-pki-other-');
    await init(other, 'other');
    await issue(other, specs.filter((s) => s.name === 'order-service'));
    const foreign = { key: read(pkiPaths(other).leafKey({ kind: 'client', name: 'order-service' })), cert: read(pkiPaths(other).leafCert({ kind: 'client', name: 'order-service' })) };
    assert.notEqual(await handshake({ ...server('db1'), ca }, { ...foreign, ca }), 'ok', 'a certificate of another CA is refused');
    assert.notEqual(await handshake({ ...server('db1'), ca }, { ca }), 'ok', 'no client certificate is refused');
  });

  it('gives Java hosts a PKCS12 keystore that keytool reads', () => {
    const kafka1 = pkiPaths(dir).leafDir({ kind: 'server', name: 'kafka1' });
    const out = execFileSync('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', join(kafka1, 'keystore.p12'), '-storepass', read(join(kafka1, 'keystore.pass')).trim()], { encoding: 'utf8' });
    assert.match(out, /Your keystore contains 1 entry/);
    assert.match(out, /PrivateKeyEntry/);
  });

  it('flags and re-issues certificates under the renewal threshold', async () => {
    const status = certs('status', '--dir', dir, '--threshold', '400');
    assert.equal(status.code, 3, 'status exits 3 when something needs action');
    assert.match(status.stdout, /!!\s+server\s+gw1\s+\d+ days .*expires in \d+ days/);
    const reissued = await issue(dir, specs.filter((s) => s.name === 'client'), { leafDays: 397, caDays: 3650, renewBeforeDays: 400, keyBits: 2048 });
    assert.equal(reissued[0]?.action, 'reissued');
    assert.equal(certs('status', '--dir', dir).code, 0);
  });

  it('rotates the CA with an overlap: old and new certificates work together until the rotation is finished', async () => {
    const oldCert = join(tmp('oms-old-'), 'db1.crt');
    const oldKey = oldCert.replace('.crt', '.key');
    copyFileSync(p.leafCert({ kind: 'server', name: 'db1' }), oldCert);
    copyFileSync(p.leafKey({ kind: 'server', name: 'db1' }), oldKey);

    await rotate(dir, 'lab', specs, 'start');
    assert.equal((read(p.bundle).match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the bundle holds the new and the old CA');
    const bundle = read(p.bundle);
    // mid rolling restart: a server still on its old certificate, a client already on the new one
    assert.equal(await handshake({ key: read(oldKey), cert: read(oldCert), ca: bundle }, { ...client('order-service'), ca: bundle }), 'ok');
    assert.match(openssl('verify', '-CAfile', p.caCert, p.leafCert({ kind: 'server', name: 'db1' })), /OK/, 'leaves are issued by the new CA');

    const finish = certs('rotate', '--dir', dir, '--ca', 'finish');
    assert.equal(finish.code, 0, finish.stderr);
    assert.equal((read(p.bundle).match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
    assert.notEqual(await handshake({ key: read(oldKey), cert: read(oldCert), ca: read(p.bundle) }, { ...client('order-service'), ca: read(p.bundle) }), 'ok', 'the old CA is no longer trusted');
  });
});

describe('bad input: a clear error and nothing written', () => {
  it('an unknown host', async () => {
    const dir = tmp('oms-pki-');
    await init(dir, 'lab');
    const before = snapshot(dir);
    const r = certs('issue', '--dir', dir, '--host', 'gw9');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown host or identity: gw9/);
    assert.deepEqual(snapshot(dir), before);
  });

  it('an invalid address in the inventory', () => {
    const inv = tmp('oms-inv-');
    cpSync(inventoryDir, inv, { recursive: true });
    writeFileSync(join(inv, 'hosts.yml'), read(join(inv, 'hosts.yml')).replace('address: 10.90.30.11', 'address: 10.90.30.311'));
    const dir = join(tmp('oms-pki-'), 'pki');
    const r = certs('init', '--inventory', inv, '--dir', dir);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /host app1, field address: must be an IPv4 address/);
    assert.equal(spawnSync('test', ['-e', dir]).status, 1, 'nothing was created');
  });

  it('an unwritable output folder', () => {
    const file = join(tmp('oms-pki-'), 'a-file');
    writeFileSync(file, '');
    const r = certs('init', '--dir', join(file, 'pki'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot write to the PKI folder .*ENOTDIR.*nothing was written/);
  });

  it('a tampered CA key', async () => {
    const dir = tmp('oms-pki-');
    await init(dir, 'lab');
    const other = tmp('oms-pki-');
    await init(other, 'other');
    writeFileSync(pkiPaths(dir).caKey, read(pkiPaths(other).caKey), { mode: 0o600 });
    const before = snapshot(dir);
    const r = certs('issue', '--dir', dir);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CA key .* does not belong to the CA certificate/);
    assert.deepEqual(snapshot(dir), before);
  });

  it('bad command lines', () => {
    for (const args of [['mint'], ['status', '--ca', 'start'], ['rotate', '--ca', 'sideways'], ['issue', '--threshold', 'soon'], ['issue', 'extra']]) {
      const r = certs(...args, '--dir', tmp('oms-pki-'));
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: npm run certs/);
    }
  });
});
