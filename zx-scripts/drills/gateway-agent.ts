// The internet's side of the gateway tests: runs in the lab's client namespace (ext zone) and talks HTTPS to the
// gateways' virtual IP by the API's name, verifying its certificate against the lab CA. Each request comes from one
// of the client's many source addresses (lab_source_addresses). The users' load is k6's (zx-scripts/load/).
//   seed                                             a staff user puts the lab catalog (zx-scripts/lab/catalog.ts); prints the statuses
//   order [--product ID] [--subject S] [--header 'k: v']...
//                                                    one order, paid; prints {status, headers, body}
//   probe --path P [--method M] [--header 'k: v']... [--body B] [--from ADDR] [--tls-max-version TLSv1.2]
//                                                    one request; prints {status, headers, body} or {error}
//   burst --path P --count N [--from ADDR] [--method M] [--body B] [--header 'k: v']...
//                                                    N requests one after another from one address ({i} in a header
//                                                    value is the request's number); prints the statuses and the last answer
//   replay                                           stdin: [{method, path, headers, body?}] (a recorded API test run);
//                                                    sends each from the next address of the second half of the source
//                                                    addresses (the tests' single probes use the first); prints each answer's status and body
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import type { Role } from '@oms/order-service/auth/jwt';
import { DRILL_PRODUCT, LAB_CATALOG, labToken } from '../lab/catalog.ts';
import { emitLast, message, parseArgs, runAgentMain } from './agent-io.ts';

export interface GatewayAgentConfig {
  pki: string;
  vip: string;
  name: string;
  sourceAddresses: string[];
  /** the private key (a file) of the lab's stand-in identity provider */
  idpKey: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const config = JSON.parse(process.env['OMS_AGENT_CONFIG'] ?? '{}') as GatewayAgentConfig;
const ca = readFileSync(join(config.pki, 'trust-bundle.pem'));

interface Call {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  from?: string | undefined;
  timeoutMs?: number;
  /** gives up when the TLS connection is not up within this time (default: timeoutMs) */
  connectTimeoutMs?: number;
  tlsMaxVersion?: SecureVersion;
}

/** A failed call; afterSend: the request had been written out in full (the upstream may have acted on it). */
export class CallError extends Error {
  constructor(text: string, readonly afterSend: boolean) { super(text); }
}

/** One HTTPS request to the VIP on a new connection (no keep-alive: every request finds the VIP anew). */
export function call(c: Call): Promise<Answer> {
  const options: RequestOptions = {
    host: config.vip,
    servername: config.name,
    port: 443,
    method: c.method,
    path: c.path,
    ca,
    agent: false,
    minVersion: 'TLSv1.2',
    ...(c.tlsMaxVersion ? { maxVersion: c.tlsMaxVersion, minVersion: 'TLSv1' } : {}),
    ...(c.from ? { localAddress: c.from } : {}),
    headers: { host: config.name, ...(c.body === undefined ? {} : { 'content-type': 'application/json' }), ...c.headers },
    timeout: c.timeoutMs ?? 5000,
  };
  return new Promise((resolve, reject) => {
    let sent = false;
    const fail = (error: Error): void => { reject(new CallError(error.message, sent)); };
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
      res.on('error', fail);
    });
    req.on('finish', () => { sent = true; });
    req.on('timeout', () => { req.destroy(new Error(`no answer within ${String(c.timeoutMs ?? 5000)} ms`)); });
    if (c.connectTimeoutMs !== undefined) {
      const limit = c.connectTimeoutMs;
      const timer = setTimeout(() => { req.destroy(new Error(`no connection within ${String(limit)} ms`)); }, limit);
      req.on('socket', (socket) => { socket.once('secureConnect', () => { clearTimeout(timer); }); });
      req.on('close', () => { clearTimeout(timer); });
    }
    req.on('error', fail);
    req.end(c.body);
  });
}

/** Once connected, an order has this long to be answered (a database failover holds it that long). */
const ORDER_TIMEOUT_MS = 30_000;

const tokens = new Map<string, string>();
/** A bearer token of the lab's identity provider, one per subject and role. */
export function tokenFor(subject: string, role: Role): string {
  const key = `${role}:${subject}`;
  let token = tokens.get(key);
  if (token === undefined) {
    token = labToken(config.idpKey, subject, role);
    tokens.set(key, token);
  }
  return token;
}

/** An order of one unit of a product, paid with a card the simulated provider approves. */
export function orderCall(product: string, subject: string, key: string): Call {
  return {
    method: 'POST',
    path: '/api/v1/orders',
    headers: { authorization: `Bearer ${tokenFor(subject, 'customer')}`, 'idempotency-key': key },
    body: JSON.stringify({
      items: [{ productId: product, quantity: 1 }],
      shippingAddress: { name: "Ada O'Lovelace", line1: '12 Analytical Row', city: 'London', postcode: 'N1 9GU', country: 'GB' },
      paymentToken: 'tok_approve_lab',
    }),
  };
}

function headersOf(args: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of args) {
    const i = h.indexOf(':');
    if (i < 1) throw new Error(`--header takes 'name: value', got '${h}'`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return headers;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // --header may repeat: take those out before the single-valued arguments
  const headerArgs: string[] = [];
  const others: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--header') headerArgs.push(rest[++i] ?? '');
    else others.push(rest[i] ?? '');
  }
  const args = parseArgs(others);
  const str = (name: string): string | undefined => { const v = args.get(name); return typeof v === 'string' ? v : undefined; };
  const base = (): Call => {
    const body = str('body');
    const from = str('from');
    const tls = str('tls-max-version');
    return {
      method: str('method') ?? (body === undefined ? 'GET' : 'POST'),
      path: str('path') ?? '/',
      headers: headersOf(headerArgs),
      ...(body === undefined ? {} : { body }),
      ...(from === undefined ? {} : { from }),
      ...(tls === undefined ? {} : { tlsMaxVersion: tls as SecureVersion }),
    };
  };
  switch (command) {
    case 'probe':
      try {
        await emitLast(await call(base()));
      } catch (error) {
        await emitLast({ error: message(error) });
      }
      return;
    case 'burst': {
      const statuses: number[] = [];
      let last: Answer | undefined;
      for (let i = 0; i < Number(str('count') ?? 1); i++) {
        const c = base();
        last = await call({ ...c, headers: Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k, v.replaceAll('{i}', String(i))])) });
        statuses.push(last.status);
      }
      await emitLast({ statuses, last });
      return;
    }
    case 'seed': {
      const statuses: Record<string, number> = {};
      for (const { id, ...product } of LAB_CATALOG) {
        const a = await call({ method: 'PUT', path: `/api/v1/products/${id}`, headers: { authorization: `Bearer ${tokenFor('lab-staff', 'staff')}` }, body: JSON.stringify(product), from: config.sourceAddresses[0] });
        if (a.status !== 200 && a.status !== 201) throw new Error(`PUT /api/v1/products/${id}: ${String(a.status)} ${a.body}`);
        statuses[id] = a.status;
      }
      await emitLast({ statuses });
      return;
    }
    case 'order': {
      const subject = str('subject') ?? 'lab-shopper';
      const order = orderCall(str('product') ?? DRILL_PRODUCT, subject, `lab-order-${String(Date.now())}-${String(process.pid)}`);
      await emitLast(await call({ ...order, headers: { ...headersOf(headerArgs), ...order.headers }, from: str('from') ?? config.sourceAddresses[0], timeoutMs: ORDER_TIMEOUT_MS }));
      return;
    }
    case 'replay': {
      const calls = JSON.parse(readFileSync(0, 'utf8')) as Call[];
      const answers: { status: number; body: string }[] = [];
      const from = config.sourceAddresses.slice(Math.floor(config.sourceAddresses.length / 2));
      for (const [i, c] of calls.entries()) {
        const a = await call({ method: c.method, path: c.path, headers: c.headers ?? {}, ...(c.body === undefined ? {} : { body: c.body }), from: from[i % from.length] });
        answers.push({ status: a.status, body: a.body.slice(0, 300) });
      }
      await emitLast({ answers });
      return;
    }
    default:
      throw new Error(`usage: gateway-agent seed|order|probe|burst|replay ... (got '${String(command)}')`);
  }
}

runAgentMain('gateway-agent', main);
