// The composition root's body: the clients from the configuration, the consumer group (order events and the retry
// topic) feeding the notifier, the ops server (/livez, /readyz, /metrics); stopped in the order of docs/architecture.md: not
// ready -> the consumer finishes the message in hand and commits -> Kafka producer, provider, ops server, pool.
// main.ts runs it as a process; the tests run it in-process against real servers.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Consumer } from 'kafkajs';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createKafka, createPool, SessionProducer } from '@oms/service-common/clients';
import { listen } from '@oms/service-common/http';
import { periodic } from '@oms/service-common/periodic';
import type { Config } from './config.ts';
import { Inbox } from './inbox.ts';
import { SmtpProvider, type MailProvider } from './mail/provider.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { Notifier, ProviderBreaker } from './notifier.ts';

export interface RunningNotifications {
  /** http(s)://address:port of the ops server */
  url: string;
  metrics: Metrics;
  pool: pg.Pool;
  consumer: Consumer;
  /** deletes inbox rows past their retention now (it also runs every retention.everyMinutes); returns how many */
  purge(): Promise<number>;
  /** resolves orphaned sends now (it also runs every orphans.everyMs) */
  sweepOrphans(): Promise<{ recorded: number; left: number }>;
  stop(): Promise<void>;
}

export async function startNotificationService(config: Config, log: Logger, options: { provider?: MailProvider } = {}): Promise<RunningNotifications> {
  const metrics = createMetrics();
  const pool = createPool(config.postgres, 'notification-service', log);
  const provider = options.provider ?? new SmtpProvider(config.smtp);
  const kafka = createKafka(config.kafka, 'notification-service');
  const producer = new SessionProducer(kafka);
  await producer.connect();
  const consumer = kafka.consumer({ groupId: config.kafka.groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 500, sessionTimeout: config.kafka.sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(config.kafka.sessionTimeoutMs / 3)) });
  await consumer.connect();
  await consumer.subscribe({ topics: [config.kafka.topic, config.kafka.retryTopic], fromBeginning: true });

  const breaker = new ProviderBreaker(config.retry.breakerThreshold, config.retry.probeEveryMs, () => provider.reachable(), (open) => { metrics.providerUp.set(open ? 0 : 1); });
  // the owner name in the inbox's leases: this process, readable in the table
  const owner = `${hostname()}/${String(process.pid)}/${randomUUID().slice(0, 8)}`;
  const inbox = new Inbox(pool, owner, config.inbox.leaseMs);
  const purge = periodic('purge of the inbox', config.retention.everyMinutes * 60_000, async () => {
    const n = await inbox.purge(config.retention.inboxDays, config.retention.batch);
    metrics.purged.inc(n);
    return n;
  }, log);
  const notifier = new Notifier(inbox, provider, producer, breaker, {
    topics: { events: config.kafka.topic, retry: config.kafka.retryTopic, deadLetter: config.kafka.deadLetterTopic },
    retryDelaysMs: config.retry.delaysMs, from: config.smtp.from, messageIdDomain: config.smtp.messageIdDomain, lease: config.inbox,
  }, metrics, log);

  const orphans = periodic('sweep of orphaned sends', config.orphans.everyMs, () => notifier.sweepOrphans(config.orphans.afterMs), log);

  let joined = false;
  let accepting = false;
  const resumeTimers = new Set<NodeJS.Timeout>();
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => { joined = true; log.info({ assignment: payload.memberAssignment }, 'joined the consumer group'); });
  consumer.on(consumer.events.CRASH, ({ payload }) => { joined = false; log.warn({ err: payload.error, restart: payload.restart }, 'consumer crashed'); });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => { metrics.lag.set({ topic: payload.topic, partition: String(payload.partition) }, Number(payload.offsetLag)); });

  await consumer.run({
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.kafka.concurrency,
    eachBatch: async (payload) => {
      const { batch } = payload;
      for (const m of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        const handled = await notifier.handle(
          { topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) },
          { heartbeat: () => { payload.heartbeat().catch(() => undefined); } },
        );
        if (handled.kind === 'later') {
          // not resolved: after the pause this message is fetched again
          const resume = payload.pause();
          const timer = setTimeout(() => { resumeTimers.delete(timer); resume(); }, Math.min(handled.inMs, 60_000));
          resumeTimers.add(timer);
          log.debug({ topic: batch.topic, partition: batch.partition, offset: m.offset, inMs: handled.inMs, why: handled.why }, 'partition paused');
          break;
        }
        payload.resolveOffset(m.offset);
        await payload.commitOffsetsIfNecessary();
        await payload.heartbeat();
      }
    },
  });

  const ready = async (): Promise<{ ready: boolean; checks: Record<string, string> }> => {
    if (!accepting) return { ready: false, checks: { service: 'stopping or starting' } };
    const checks: Record<string, string> = { consumer: joined ? 'ok' : 'not in the group', provider: breaker.open ? 'down (sending paused)' : 'ok' };
    try {
      await pool.query('SELECT 1');
      checks.postgres = 'ok';
    } catch (error) {
      checks.postgres = error instanceof Error ? error.message : String(error);
    }
    // the provider being down is not a reason to be taken out: events wait in Kafka and sending resumes by itself
    return { ready: joined && checks.postgres === 'ok', checks };
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (status: number, type: string, body: string): void => { res.writeHead(status, { 'content-type': type }).end(body); };
    if (req.method !== 'GET') { send(405, 'application/json', JSON.stringify({ error: 'GET only' })); return; }
    if (req.url === '/livez') { send(200, 'application/json', JSON.stringify({ live: true })); return; }
    if (req.url === '/readyz') {
      void ready().then((r) => { send(r.ready ? 200 : 503, 'application/json', JSON.stringify(r)); });
      return;
    }
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => { send(200, metrics.registry.contentType, text); });
      return;
    }
    send(404, 'application/json', JSON.stringify({ error: 'not found' }));
  };
  const tls = config.http.tls;
  const server: Server = tls
    ? createHttpsServer({ ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, handler)
    : createHttpServer(handler);
  if (tls) {
    const allowed = config.http.allowedClientNames ?? [];
    server.on('secureConnection', (socket: TLSSocket) => {
      const cn: unknown = socket.getPeerCertificate().subject.CN;
      if (typeof cn !== 'string' || !allowed.includes(cn)) socket.destroy();
    });
  }
  const port = await listen(server, config.http.port, config.http.address);
  accepting = true;
  log.info({ port }, 'notification-service ready');

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= (async () => {
    accepting = false;
    log.info('shutting down: finishing the message in hand');
    for (const timer of resumeTimers) clearTimeout(timer);
    await consumer.disconnect(); // waits for the batch in progress, which stops after its current message
    await purge.stop();
    await orphans.stop();
    await producer.disconnect().catch(() => undefined);
    provider.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    await pool.end();
    log.info('stopped');
  })());

  return { url: `${tls ? 'https' : 'http'}://${config.http.address}:${String(port)}`, metrics, pool, consumer, purge: purge.run, sweepOrphans: orphans.run, stop };
}
