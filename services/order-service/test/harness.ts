// The order service in-process against real servers on loopback (zx-scripts/testkit: PostgreSQL, Redis + Sentinel,
// Kafka), called over HTTPS with the gateway's client certificate, as the gateway calls it.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { freePort } from '@oms/zx-scripts/testkit/daemon';
import { startLocalStack, type LocalStack } from '@oms/zx-scripts/testkit/stack';
import { mintToken, type Role } from '../src/auth/jwt.ts';
import { parseConfig, type Config } from '../src/config.ts';
import { createLogger } from '@oms/service-common/logger';
import { startService, type RunningService } from '../src/service.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** the parsed JSON body (undefined when the body is not JSON) */
  body: any;
}

/** A request as the test sent it, and the service's status: the order API's own traffic, replayed at the gateway's WAF. */
export interface RecordedCall {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  status: number;
}

export interface Harness {
  stack: LocalStack;
  service: RunningService;
  config: Config;
  /** the service's log lines (JSON objects) */
  logs: Record<string, unknown>[];
  /** every call made through `call`, in order */
  recorded: RecordedCall[];
  /** a signed token; customers get an email claim unless `email` is null */
  token(subject: string, role?: Role, email?: string | null): string;
  call(method: string, path: string, options?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; identity?: 'gateway-to-app' | 'order-service' }): Promise<Reply>;
  restart(overrides?: (c: Config) => void): Promise<void>;
  stop(): Promise<void>;
}

const ISSUER = 'oms-test-idp';
const AUDIENCE = 'oms-api';

/**
 * Starts the servers and the service. `logsTo`: where the service's log lines go instead of `logs` (the benchmark
 * passes a sink that only takes them, as journald would, without the tests' parsing).
 */
export async function startHarness(overrides: (c: Config) => void = () => undefined, options: { logsTo?: Writable } = {}): Promise<Harness> {
  const stack = await startLocalStack({ postgres: true, redis: { user: 'order-service', keyPrefix: 'oms:' }, kafka: true });
  const { postgres, redis, kafka } = stack;
  if (!postgres || !redis || !kafka) throw new Error('internal: stack incomplete');
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const publicKey = join(stack.dir, 'jwt.pub');
  writeFileSync(publicKey, keys.publicKey);
  const client = stack.pki.client('order-service');
  const port = await freePort();
  const config = (): Config => {
    const c = parseConfig({
      http: { address: '127.0.0.1', port, tls: { ca: stack.pki.ca, cert: stack.pki.server.cert, key: stack.pki.server.key }, allowedClientNames: ['gateway-to-app'], drainSeconds: 5 },
      ops: { port: 0 },
      postgres: { host: postgres.host, port: postgres.port, database: 'orders', user: 'order_service', tls: client, serverNames: ['localhost'], poolSize: 24 },
      redis: { sentinels: [`127.0.0.1:${String(redis.sentinelPort)}`], masterName: redis.masterName, user: redis.user.name, password: redis.user.password, tls: client },
      kafka: { brokers: [kafka.bootstrap], user: 'order-service', password: kafka.passwords['order-service'], tls: client, topic: 'oms.order-events' },
      auth: { publicKey, issuer: ISSUER, audience: AUDIENCE },
      payments: { timeoutMs: 300 },
      outbox: { pollMs: 50, batchSize: 100 },
      recovery: { pendingAfterSeconds: 5, everySeconds: 3600 },
    }, 'test configuration');
    overrides(c);
    return c;
  };
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({ write(chunk: Buffer, _enc, done) { for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>); done(); } });
  const log = createLogger({ service: 'order-service', level: options.logsTo ? 'info' : 'debug', destination: options.logsTo ?? destination });
  let cfg = config();
  let service: RunningService;
  try {
    service = await startService(cfg, log);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  const agents = new Map<string, Agent>();
  const agent = (identity: string): Agent => {
    let a = agents.get(identity);
    if (!a) {
      const tls = stack.pki.client(identity as 'gateway-to-app');
      a = new Agent({ keepAlive: true, ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), servername: 'localhost', maxSockets: 64 });
      agents.set(identity, a);
    }
    return a;
  };

  const recorded: RecordedCall[] = [];
  const harness: Harness = {
    stack, config: cfg, logs, recorded,
    get service() { return service; },
    token: (subject, role = 'customer', email = role === 'customer' ? `${subject.replace(/[^A-Za-z0-9.-]/g, '-')}@shop.example` : null) =>
      mintToken({ privateKeyPem: keys.privateKey, issuer: ISSUER, audience: AUDIENCE, subject, role, ...(email === null ? {} : { email }), ttlSeconds: 600 }),
    call: (method, path, options = {}) => new Promise((resolve, reject) => {
      const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const headers: Record<string, string> = {
        ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...options.headers,
      };
      const req = request(`${service.url}${path}`, { method, headers, agent: agent(options.identity ?? 'gateway-to-app'), timeout: 15_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => {
          let body: unknown;
          try { body = JSON.parse(text); } catch { body = undefined; }
          recorded.push({ method, path, headers, ...(payload === undefined ? {} : { body: payload }), status: res.statusCode ?? 0 });
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      });
      req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: no answer in 15 s`)); });
      req.on('error', reject);
      req.end(payload);
    }),
    restart: async (more) => {
      await service.stop();
      cfg = config();
      more?.(cfg);
      harness.config = cfg;
      service = await startService(cfg, log);
    },
    stop: async () => {
      for (const a of agents.values()) a.destroy();
      await service.stop();
      await stack.stop();
    },
  };
  return harness;
}

export const newKey = (): string => `test-${randomUUID()}`;

/** A valid order request for these items. */
export function orderBody(items: { productId: string; quantity: number }[], paymentToken = 'tok_approve_visa'): Record<string, unknown> {
  return {
    items,
    shippingAddress: { name: "Zoë O'Brien", line1: '1 Rue de la Paix', city: 'Paris', postcode: '75002', country: 'FR' },
    paymentToken,
  };
}

/** Where the service tests leave their API traffic for the gateway's WAF test (zx-scripts/lab/e2e/gateway.ts). */
export const CORPUS_FILE = new URL('../../../reports/corpus/order-api.json', import.meta.url).pathname;

/**
 * The well-formed API requests of a run: every call under /api/v1 the service did not refuse as malformed (400, 405,
 * 413, 415). Refusals of well-formed requests (401, 402, 403, 404, 409, 422) stay in: they are ordinary traffic too.
 */
export function wellFormed(calls: RecordedCall[]): RecordedCall[] {
  return calls.filter((c) => c.path.startsWith('/api/v1/') && ![400, 405, 413, 415].includes(c.status));
}

export function writeCorpus(calls: RecordedCall[]): void {
  mkdirSync(dirname(CORPUS_FILE), { recursive: true });
  writeFileSync(CORPUS_FILE, `${JSON.stringify(wellFormed(calls), null, 1)}\n`);
}
