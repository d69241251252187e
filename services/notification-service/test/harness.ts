// The notification service in-process against real servers on loopback: PostgreSQL and Kafka (zx-scripts/testkit)
// and the lab's mail sink (services/mail-sink). Events are published as the order service's relay publishes them.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { parseConfig as parseWith } from '@oms/service-common/config';
import { createLogger } from '@oms/service-common/logger';
import { startLocalStack, type LocalStack } from '@oms/zx-scripts/testkit/stack';
import { configSchema as sinkConfigSchema } from '@oms/mail-sink/config';
import { startSink, type RunningSink } from '@oms/mail-sink/sink';
import { parseConfig, type Config } from '../src/config.ts';
import type { EventType } from '../src/events.ts';
import type { MailProvider } from '../src/mail/provider.ts';
import { startNotificationService, type RunningNotifications } from '../src/service.ts';

export const TOPIC = 'oms.order-events';
export const RETRY_TOPIC = 'oms.order-events.notification-retry';
export const DLT_TOPIC = 'oms.order-events.notification-dlt';
const SINK_PASSWORD = randomUUID();
const SINK_TOKEN = randomUUID();

export interface TestEvent {
  id: string;
  type: EventType;
  occurredAt: string;
  data: { orderId: string; customerId: string; customerEmail: string; status: string; totalCents: number; currency: string; lines: { productId: string; quantity: number; unitPriceCents: number }[] };
}

export function orderEvent(type: EventType = 'order.created', orderId: string = randomUUID()): TestEvent {
  return {
    id: randomUUID(), type, occurredAt: new Date().toISOString(),
    data: { orderId, customerId: 'cust-1', customerEmail: 'ada@shop.example', status: 'PENDING_PAYMENT', totalCents: 1299, currency: 'EUR', lines: [{ productId: 'BOOK-0001', quantity: 1, unitPriceCents: 1299 }] },
  };
}

export interface NotificationHarness {
  stack: LocalStack;
  sink: RunningSink;
  config: Config;
  /** the config as a file, for running the service as a process (main.ts) */
  configFile: string;
  logs: Record<string, unknown>[];
  readonly service: RunningNotifications;
  /** publishes events as the relay does (key = order id, event id header, and `headers`), or raw values (poison) */
  publish(events: (TestEvent | { raw: string; key?: string })[], headers?: Record<string, string>): Promise<void>;
  /** a super-user admin client (offsets, topic reads) */
  admin: Admin;
  /** every message of a topic so far, values and headers as text */
  read(topic: string): Promise<{ key: string; value: string; headers: Record<string, string> }[]>;
  waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
  restart(overrides?: (c: Config) => void, provider?: MailProvider): Promise<void>;
  stopService(): Promise<void>;
  /** `provider`: another provider than the sink's SMTP (a test's wrapper around it) */
  startService(overrides?: (c: Config) => void, provider?: MailProvider): Promise<void>;
  stop(): Promise<void>;
}

export async function startNotificationHarness(overrides: (c: Config) => void = () => undefined): Promise<NotificationHarness> {
  const stack = await startLocalStack({ postgres: true, kafka: true });
  const { postgres, kafka } = stack;
  if (!postgres || !kafka) throw new Error('internal: stack incomplete');
  const quiet = createLogger({ service: 'mail-sink', level: 'silent' });
  const sink = await startSink(parseWith(sinkConfigSchema, {
    smtp: { address: '127.0.0.1', port: 0, hostname: 'localhost', tls: { cert: stack.pki.server.cert, key: stack.pki.server.key }, users: [{ user: 'notification-service', password: SINK_PASSWORD }] },
    control: { port: 0, token: SINK_TOKEN, tls: true }, // the lookup goes over HTTPS with the kit's CA, as deployed
    storeFile: join(stack.dir, 'mail.jsonl'),
  }), quiet);
  const client = stack.pki.client('notification-service');
  const config = (more: (c: Config) => void = () => undefined): Config => {
    const c = parseConfig({
      http: { address: '127.0.0.1', port: 0 },
      postgres: { host: postgres.host, port: postgres.port, database: 'notifications', user: 'notification_service', tls: client, serverNames: ['localhost'], poolSize: 8 },
      kafka: { brokers: [kafka.bootstrap], user: 'notification-service', password: kafka.passwords['notification-service'], tls: client, topic: TOPIC, retryTopic: RETRY_TOPIC, deadLetterTopic: DLT_TOPIC, concurrency: 3, sessionTimeoutMs: 6000 },
      smtp: {
        host: '127.0.0.1', port: sink.smtpPort, security: 'starttls', ca: stack.pki.ca, servername: 'localhost', user: 'notification-service', password: SINK_PASSWORD,
        from: 'orders@oms.example', messageIdDomain: 'notifications.oms.example', timeoutMs: 5000, lookup: { url: sink.controlUrl, token: SINK_TOKEN },
      },
      retry: { delaysMs: [300, 600, 900], breakerThreshold: 3, probeEveryMs: 300 },
      inbox: { leaseMs: 4000, marginMs: 1000 },
    }, 'test configuration');
    overrides(c);
    more(c);
    return c;
  };
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({ write(chunk: Buffer, _enc, done) { for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>); done(); } });
  const log = createLogger({ service: 'notification-service', level: 'debug', destination });

  const relayLike = new Kafka({
    clientId: 'order-service-test', brokers: [kafka.bootstrap], logLevel: logLevel.NOTHING,
    ssl: { ca: readFileSync(client.ca, 'utf8'), cert: readFileSync(stack.pki.client('order-service').cert, 'utf8'), key: readFileSync(stack.pki.client('order-service').key, 'utf8') },
    sasl: { mechanism: 'scram-sha-512', username: 'order-service', password: kafka.passwords['order-service'] ?? '' },
  });
  const producer: Producer = relayLike.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const superUser = new Kafka({
    clientId: 'test-admin', brokers: [kafka.internalBootstrap], logLevel: logLevel.NOTHING,
    ssl: { ca: readFileSync(stack.pki.ca, 'utf8'), cert: readFileSync(stack.pki.server.cert, 'utf8'), key: readFileSync(stack.pki.server.key, 'utf8') },
  });
  const admin = superUser.admin();
  await admin.connect();

  let cfg = config();
  let service: RunningNotifications | undefined = await startNotificationService(cfg, log);
  const configFile = join(stack.dir, 'notification-service.json');
  writeFileSync(configFile, JSON.stringify(cfg), { mode: 0o600 });

  const harness: NotificationHarness = {
    stack, sink, logs, configFile,
    get config() { return cfg; },
    get service() {
      if (!service) throw new Error('the service is stopped');
      return service;
    },
    admin,
    publish: async (events, headers = {}) => {
      await producer.send({
        topic: TOPIC, acks: -1,
        messages: events.map((e) => ('raw' in e
          ? { key: e.key ?? randomUUID(), value: e.raw }
          : { key: e.data.orderId, value: JSON.stringify(e), headers: { ...headers, 'event-id': e.id, 'event-type': e.type } })),
      });
    },
    read: async (topic) => {
      const offsets = await admin.fetchTopicOffsets(topic);
      const total = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
      const seen: { key: string; value: string; headers: Record<string, string> }[] = [];
      if (total === 0) return seen;
      const consumer = superUser.consumer({ groupId: `test-reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error(`read ${String(seen.length)} of ${String(total)} messages of ${topic}`)); }, 20_000);
          void consumer.run({
            eachMessage: async ({ message }) => {
              const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : v)]));
              seen.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '', headers });
              if (seen.length >= total) { clearTimeout(timer); resolve(); }
              await Promise.resolve();
            },
          });
        });
      } finally {
        await consumer.disconnect();
      }
      return seen;
    },
    waitFor: async (what, check, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs / 1000)} s waiting for ${what}`);
        await sleep(100);
      }
    },
    stopService: async () => {
      await service?.stop();
      service = undefined;
    },
    startService: async (more, provider) => {
      cfg = config(more);
      service = await startNotificationService(cfg, log, provider ? { provider } : {});
    },
    restart: async (more, provider) => {
      await harness.stopService();
      await harness.startService(more, provider);
    },
    stop: async () => {
      await service?.stop();
      await producer.disconnect();
      await admin.disconnect();
      await sink.stop();
      await stack.stop();
    },
  };
  return harness;
}
