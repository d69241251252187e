// The composition root's body: builds the clients from the configuration, the app, the HTTPS server (mutual TLS:
// only the gateway's certificate may call), the outbox relay, the recovery sweep and the purge of old rows; and stops
// them in the order of docs/architecture.md: not ready -> drain -> close server -> stop relay, sweep, purge -> Kafka, Redis, pool.
// main.ts runs it as a process; the tests run it in-process against real servers.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { clientTls, createKafka, createPool, SessionProducer } from '@oms/service-common/clients';
import { keepConnected, sentinelClient } from '@oms/service-common/redis';
import { listen } from '@oms/service-common/http';
import type pg from 'pg';
import type { Logger } from 'pino';
import { KeySet, publicKeyFromPem } from './auth/jwt.ts';
import { CatalogCache } from './catalog/cache.ts';
import type { Config } from './config.ts';
import { createApp } from './http/app.ts';
import { createMetrics, type Metrics } from './ops/metrics.ts';
import { sweepOnce } from './orders/recovery.ts';
import { purgeOnce, type Purged } from './ops/retention.ts';
import { refundOnce } from './payments/refunds.ts';
import { periodic } from '@oms/service-common/periodic';
import { OutboxRelay } from './outbox/relay.ts';
import { SimulatedProvider, type PaymentProvider } from './payments/provider.ts';

export interface RunningService {
  /** https://address:port */
  url: string;
  port: number;
  /** the loopback operations listener's port, when configured */
  opsPort: number | undefined;
  metrics: Metrics;
  pool: pg.Pool;
  relay: OutboxRelay;
  /** resolves pending orders now (the sweep also runs on its own every recovery.everySeconds) */
  sweep(): Promise<number>;
  /** voids or refunds the charges of cancelled orders now (it also runs every recovery.everySeconds); returns how many */
  refund(): Promise<number>;
  /** deletes rows past their retention now (it also runs on its own every retention.everyMinutes) */
  purge(): Promise<Purged>;
  stop(): Promise<void>;
}

const file = (path: string): string => readFileSync(path, 'utf8');

export async function startService(config: Config, log: Logger, options: { payments?: PaymentProvider } = {}): Promise<RunningService> {
  const metrics = createMetrics();
  const payments = options.payments ?? new SimulatedProvider();
  // read first: a key set that is missing or broken stops the service before it connects anywhere
  const keys = config.auth.keySet === undefined
    ? KeySet.of(publicKeyFromPem(file(config.auth.publicKey ?? '')))
    : KeySet.fromFile(config.auth.keySet, (level, message) => { log[level]({ keySet: config.auth.keySet }, message); });
  log.info({ keys: keys.ids() }, 'verifying bearer tokens with these keys');

  const pool = createPool(config.postgres, 'order-service', log);

  const redis = sentinelClient({ sentinels: config.redis.sentinels, masterName: config.redis.masterName, user: config.redis.user, password: config.redis.password, tls: clientTls(config.redis.tls) }, {
    // the cache must never slow a request down: no queue while disconnected, short timeouts, PostgreSQL answers instead
    enableOfflineQueue: false, commandTimeout: 250, maxRetriesPerRequest: 0,
  });
  redis.on('error', (error: Error) => { log.debug({ err: error }, 'redis connection error'); });
  const closeRedis = keepConnected(redis, () => { log.warn('the Redis client had ended in a failover; connecting it again'); });

  const kafka = createKafka(config.kafka, 'order-service');
  const producer = new SessionProducer(kafka);
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();

  const catalog = new CatalogCache(redis, { ttlSeconds: config.redis.catalogTtlSeconds, jitterSeconds: config.redis.ttlJitterSeconds }, metrics, log);
  const relay = new OutboxRelay(pool, producer, admin, { topic: config.kafka.topic, ...config.outbox }, metrics, log);
  const sweepDeps = { pool, payments, catalog, log };
  let accepting = false;

  const app = createApp({
    pool, payments, paymentTimeoutMs: config.payments.timeoutMs, catalog, metrics, log,
    jwt: { keys, issuer: config.auth.issuer, audience: config.auth.audience, clockSkewSeconds: config.auth.clockSkewSeconds },
    ready: async () => {
      if (!accepting) return { ready: false, checks: { service: 'stopping or starting' } };
      try {
        await pool.query('SELECT 1');
        return { ready: true, checks: { postgres: 'ok', redis: redis.status } };
      } catch (error) {
        return { ready: false, checks: { postgres: error instanceof Error ? error.message : String(error), redis: redis.status } };
      }
    },
  });

  const server: Server = createServer({
    ca: file(config.http.tls.ca), cert: file(config.http.tls.cert), key: file(config.http.tls.key),
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
  }, app);
  // a certificate of the kit's CA is not enough: only the named callers (the gateway) get past the handshake
  server.on('secureConnection', (socket: TLSSocket) => {
    const cn: unknown = socket.getPeerCertificate().subject.CN;
    const name = typeof cn === 'string' ? cn : '';
    if (!config.http.allowedClientNames.includes(name)) {
      log.warn({ client: name, remote: socket.remoteAddress }, 'client certificate not allowed; connection closed');
      socket.destroy();
    }
  });
  server.keepAliveTimeout = 65_000; // longer than the gateway's upstream keepalive_timeout: the gateway closes first
  server.headersTimeout = 66_000; // above keepAliveTimeout, so an idle kept-alive connection is never cut mid-request
  server.requestTimeout = 30_000;
  const port = await listen(server, config.http.port, config.http.address);
  // the operations endpoints for the host itself, without a client certificate (nothing else is served there)
  const ops = config.ops === undefined ? undefined : createHttpServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/livez' || req.url === '/readyz' || req.url === '/metrics')) { app(req, res); return; }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
  });
  const opsPort = ops === undefined || config.ops === undefined ? undefined : await listen(ops, config.ops.port, config.ops.address);

  relay.start();
  const sweep = periodic('recovery sweep', config.recovery.everySeconds * 1000, () => sweepOnce(sweepDeps, config.recovery.pendingAfterSeconds), log);
  const refunds = periodic('refunds of cancelled orders', config.recovery.everySeconds * 1000, () => refundOnce({ pool, payments, log }), log);
  const purge = periodic('purge of old rows', config.retention.everyMinutes * 60_000, () => purgeOnce(pool, config.retention, metrics), log);
  accepting = true;
  log.info({ port, address: config.http.address, opsPort }, 'order-service ready');

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= (async () => {
    accepting = false; // 1. not ready: the gateway's health checks take this instance out
    log.info('shutting down: draining requests');
    const closed = new Promise<void>((resolve) => { server.close(() => { resolve(); }); }); // 2-3. drain, then close
    server.closeIdleConnections();
    const drain = setTimeout(() => { server.closeAllConnections(); }, config.http.drainSeconds * 1000);
    await closed;
    clearTimeout(drain);
    await relay.stop(); // 4. relay, sweep and purge
    await Promise.all([sweep.stop(), refunds.stop(), purge.stop()]);
    await producer.disconnect().catch(() => undefined); // 5. Kafka, Redis, pool
    await admin.disconnect().catch(() => undefined);
    closeRedis();
    await pool.end();
    ops?.closeAllConnections();
    if (ops) await new Promise<void>((resolve) => { ops.close(() => { resolve(); }); });
    log.info('stopped');
  })());

  return { url: `https://${config.http.address === '0.0.0.0' ? '127.0.0.1' : config.http.address}:${String(port)}`, port, opsPort, metrics, pool, relay, sweep: sweep.run, refund: refunds.run, purge: purge.run, stop };
}
