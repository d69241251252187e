// The hosts' package proxy against a real HTTP upstream on loopback (standing in for deb.debian.org).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPackageProxy } from './package-proxy.ts';

const PACKAGE = Buffer.alloc(256 * 1024, 7);
const hits = new Map<string, number>();
let upstream: Server;
let proxy: Server;
let upstreamHost: string;
let cacheDir: string;

function port(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** A request through the proxy, as apt makes it: absolute URL in the request line. */
function viaProxy(url: string, method = 'GET'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: port(proxy), method, path: url }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }); });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the package proxy', () => {
  before(async () => {
    upstream = createServer((req, res) => {
      const path = req.url ?? '';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path.endsWith('/pool/main/p/pkg_1.0_amd64.deb')) {
        // slow enough that concurrent requests overlap
        setTimeout(() => {
          res.writeHead(200, { 'content-length': PACKAGE.length });
          res.end(PACKAGE);
        }, 200);
      } else if (path.endsWith('/dists/bookworm/InRelease')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`release ${hits.get(path) ?? 0}`);
      } else if (path.endsWith('/pool/main/t/truncated_1.0_amd64.deb')) {
        res.writeHead(200, { 'content-length': 1000 });
        res.end(Buffer.alloc(10)); // the connection closes short of the promised length
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamHost = `127.0.0.1:${port(upstream)}`;
    cacheDir = mkdtempSync(join(tmpdir(), 'oms-proxy-cache-'));
    proxy = startPackageProxy({ listen: { host: '127.0.0.1', port: 0 }, cacheDir, allow: new Set(['127.0.0.1']), log: () => undefined });
    await once(proxy, 'listening');
  });

  after(() => {
    proxy.closeAllConnections();
    proxy.close();
    upstream.closeAllConnections();
    upstream.close();
  });

  it('downloads a package once however many hosts ask for it at the same time, then serves it from cache', async () => {
    const url = `http://${upstreamHost}/debian/pool/main/p/pkg_1.0_amd64.deb`;
    const answers = await Promise.all(Array.from({ length: 14 }, () => viaProxy(url)));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.ok(a.body.equals(PACKAGE), 'every host gets the whole package');
    }
    assert.equal(hits.get('/debian/pool/main/p/pkg_1.0_amd64.deb'), 1, 'one upstream download for 14 concurrent requests');
    const later = await viaProxy(url);
    assert.ok(later.body.equals(PACKAGE));
    assert.equal(hits.get('/debian/pool/main/p/pkg_1.0_amd64.deb'), 1, 'served from cache afterwards');
  });

  it('passes files that change in place (InRelease) through uncached', async () => {
    const url = `http://${upstreamHost}/debian/dists/bookworm/InRelease`;
    assert.equal((await viaProxy(url)).body.toString(), 'release 1');
    assert.equal((await viaProxy(url)).body.toString(), 'release 2');
  });

  it('passes upstream errors on, and caches nothing of a download cut short', async () => {
    assert.equal((await viaProxy(`http://${upstreamHost}/debian/pool/main/m/missing_1.0_amd64.deb`)).status, 404);
    const cut = await viaProxy(`http://${upstreamHost}/debian/pool/main/t/truncated_1.0_amd64.deb`);
    assert.equal(cut.status, 502);
    const cached = join(cacheDir, '127.0.0.1', 'debian/pool/main/t');
    assert.ok(!existsSync(cached) || readdirSync(cached).length === 0, 'no partial file left in the cache');
  });

  it('is no way out: only GET/HEAD, only plain http, only allowed hosts', async () => {
    assert.equal((await viaProxy('http://example.org/debian/dists/bookworm/InRelease')).status, 403);
    assert.equal((await viaProxy(`http://${upstreamHost}/debian/dists/bookworm/InRelease`, 'POST')).status, 405);
    assert.equal((await viaProxy('/not-absolute')).status, 400);
  });
});
