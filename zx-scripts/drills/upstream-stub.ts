// A stand-in for the order-service behind the gateway, until the services are deployed (issue 10): the same port,
// the same mutual TLS (the app host's certificate, which names order-service.<domain>; only the gateway's client
// certificate is let in), and just enough API for the gateway's tests and drills:
//   POST /api/v1/drill/writes {"id": "..."}  records the id (appended to <records>/<host>.ids before the answer: an
//                                            acknowledged write is on disk), answers 201
//   GET  /api/v1/...                         200 with what the gateway sent: method, path, query, headers, the
//                                            client certificate's CN, and which host answered
//   anything else under /api/v1/             200 with the same (the WAF tests send bodies of every kind)
// Runs in an app host's network namespace, started by the controller (agent.ts, ensureUpstreamStub).
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { parseArgs, required, runAgentMain } from './agent-io.ts';

const MAX_BODY = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) reject(new Error('body too large'));
    });
    req.on('end', () => { resolve(body); });
    req.on('error', reject);
  });
}

function answer(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const need = (name: string): string => required(args, name);
  const host = need('host');
  const pki = need('pki');
  const records = need('records');
  const allowed = need('allow-cn');
  mkdirSync(records, { recursive: true });
  const idsFile = join(records, `${host}.ids`);

  const server = createServer({
    cert: readFileSync(join(pki, 'hosts', host, 'server.crt')),
    key: readFileSync(join(pki, 'hosts', host, 'server.key')),
    ca: readFileSync(join(pki, 'trust-bundle.pem')),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  }, (req, res) => {
    // an https server's sockets are TLS sockets; rejectUnauthorized means a verified client certificate is there
    const cn = (req.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate().subject.CN;
    if (cn !== allowed) {
      answer(res, 403, { error: `client certificate ${String(cn)} is not ${allowed}` });
      return;
    }
    const url = new URL(req.url ?? '/', 'https://stub');
    readBody(req).then((body) => {
      if (req.method === 'POST' && url.pathname === '/api/v1/drill/writes') {
        const id = (JSON.parse(body) as { id?: unknown }).id;
        if (typeof id !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(id)) {
          answer(res, 400, { error: 'id must be a string of letters, digits and ._:-' });
          return;
        }
        appendFileSync(idsFile, id + '\n');
        answer(res, 201, { id, host });
        return;
      }
      answer(res, 200, { host, method: req.method, path: url.pathname, query: url.search, headers: req.headers, clientCn: cn, bodyLength: body.length });
    }, (error: unknown) => { answer(res, 400, { error: String(error) }); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(need('port')), need('address'), () => { resolve(); });
  });
  process.stdout.write(`listening ${need('address')}:${need('port')}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => { server.close(() => { resolve(); }); server.closeAllConnections(); });
  });
}

runAgentMain('upstream-stub', main);
