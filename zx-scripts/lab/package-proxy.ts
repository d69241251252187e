// The lab hosts' package source: a small caching HTTP proxy the controller serves on the management network.
// Hosts have no route to the internet; apt on each host uses this proxy (roles/common sets Acquire::http::Proxy).
//
// Why not apt-cacher-ng: with 14 hosts asking for the same InRelease at once it left a client hanging for
// minutes ("Failure to move file out of the way", seen on these machines). Here each file is fetched once
// however many hosts ask for it at the same time.
//
// - Only GET/HEAD, only plain http, only to the allowed upstream hosts (Debian's): the proxy is no way out.
// - Content-addressed files (pool/ and by-hash/ paths: a new version is a new path) are cached on disk, and
//   kept across labs, so a second lab installs packages without downloading them again.
// - Everything else (InRelease, which changes in place) passes through uncached.
//
// Usage: node --import tsx package-proxy.ts --listen ADDR:PORT --cache DIR --allow HOST[,HOST] --pidfile FILE
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

const CACHEABLE = /\/(pool|by-hash)\//;
const PASSED_REQUEST_HEADERS = ['accept', 'cache-control', 'if-modified-since', 'if-none-match', 'if-range', 'range', 'user-agent'];
const PASSED_RESPONSE_HEADERS = ['content-length', 'content-type', 'last-modified', 'etag', 'content-range', 'accept-ranges', 'cache-control', 'expires'];
const UPSTREAM_TIMEOUT_MS = 60_000;

export interface ProxyOptions {
  listen: { host: string; port: number };
  cacheDir: string;
  allow: ReadonlySet<string>;
  /** one line per request; the daemon writes them to its access log */
  log?: (line: string) => void;
}

class UpstreamError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function startPackageProxy(options: ProxyOptions) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const inFlight = new Map<string, Promise<void>>();
  let tmpCounter = 0;

  const log = (req: IncomingMessage, status: number, source: string): void => {
    (options.log ?? console.log)(`${new Date().toISOString()} ${req.socket.remoteAddress ?? '-'} ${req.method ?? '-'} ${req.url ?? '-'} ${status} ${source}`);
  };
  const fail = (req: IncomingMessage, res: ServerResponse, status: number, message: string): void => {
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(`${message}\n`);
    log(req, status, 'refused');
  };

  /** Downloads a cacheable file once; concurrent callers for the same file wait for the same download. */
  const fetchToCache = (url: URL, file: string): Promise<void> => {
    const key = file;
    const pending = inFlight.get(key);
    if (pending) return pending;
    const job = (async () => {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.part-${process.pid}-${++tmpCounter}`;
      try {
        const upstream = await get(url, {}, agent);
        if (upstream.statusCode !== 200) {
          upstream.resume();
          throw new UpstreamError(upstream.statusCode ?? 502, `upstream answered ${upstream.statusCode ?? '?'} for ${url.href}`);
        }
        const expected = Number(upstream.headers['content-length'] ?? NaN);
        await pipeline(upstream, createWriteStream(tmp));
        if (Number.isFinite(expected) && statSync(tmp).size !== expected) {
          throw new UpstreamError(502, `short download of ${url.href}: ${statSync(tmp).size} of ${expected} bytes`);
        }
        renameSync(tmp, file);
      } finally {
        rmSync(tmp, { force: true });
      }
    })().finally(() => inFlight.delete(key));
    inFlight.set(key, job);
    return job;
  };

  const serveCached = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const file = normalize(join(options.cacheDir, url.hostname, decodeURIComponent(url.pathname)));
    if (!file.startsWith(join(options.cacheDir, url.hostname) + '/')) {
      fail(req, res, 400, 'bad path');
      return;
    }
    let source = 'hit';
    if (!existsSync(file)) {
      source = 'miss';
      await fetchToCache(url, file);
    }
    res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
    await pipeline(createReadStream(file), res);
    log(req, 200, source);
  };

  const passThrough = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const headers: Record<string, string> = {};
    for (const name of PASSED_REQUEST_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const upstream = await get(url, headers, agent, req.method ?? 'GET');
    const out: Record<string, string> = {};
    for (const name of PASSED_RESPONSE_HEADERS) {
      const value = upstream.headers[name];
      if (typeof value === 'string') out[name] = value;
    }
    res.writeHead(upstream.statusCode ?? 502, out);
    await pipeline(upstream, res);
    log(req, upstream.statusCode ?? 502, 'pass');
  };

  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      fail(req, res, 400, 'this is a proxy: request absolute http:// URLs');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(req, res, 405, 'only GET and HEAD');
      return;
    }
    if (url.protocol !== 'http:' || !options.allow.has(url.hostname)) {
      fail(req, res, 403, `not an allowed package source: ${url.protocol}//${url.hostname}`);
      return;
    }
    const handler = req.method === 'GET' && CACHEABLE.test(url.pathname) ? serveCached : passThrough;
    handler(req, res, url).catch((err: unknown) => {
      const status = err instanceof UpstreamError ? err.status : 502;
      fail(req, res, status, err instanceof Error ? err.message : String(err));
    });
  });
  server.listen(options.listen.port, options.listen.host);
  return server;
}

function get(url: URL, headers: Record<string, string>, agent: Agent, method = 'GET'): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent, timeout: UPSTREAM_TIMEOUT_MS }, resolve);
    req.on('timeout', () => { req.destroy(new UpstreamError(504, `upstream timed out: ${url.href}`)); });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      cache: { type: 'string' },
      allow: { type: 'string' },
      pidfile: { type: 'string' },
    },
    strict: true,
  });
  const listen = /^([\d.]+):(\d+)$/.exec(values.listen ?? '');
  if (!listen || !values.cache || !values.allow) {
    console.error('usage: package-proxy --listen ADDR:PORT --cache DIR --allow HOST[,HOST] [--pidfile FILE]');
    process.exit(2);
  }
  const server = startPackageProxy({
    listen: { host: listen[1] ?? '', port: Number(listen[2]) },
    cacheDir: values.cache,
    allow: new Set(values.allow.split(',')),
  });
  await once(server, 'listening');
  if (values.pidfile) writeFileSync(values.pidfile, `${process.pid}\n`);
  console.log(`package proxy on ${values.listen}, cache ${values.cache}, upstreams ${values.allow}`);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
