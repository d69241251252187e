// The services' clients of PostgreSQL and Kafka, built the same way everywhere: TLS 1.3 with the kit's CA and the
// service's own client certificate; PostgreSQL's server certificate checked against the names it may carry (behind
// HAProxy, whichever Patroni member leads); Kafka with SASL SCRAM-SHA-512 on top of the certificate.
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Kafka, logLevel, type Producer, type ProducerConfig, type ProducerRecord, type RecordMetadata } from 'kafkajs';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';

export const fileSchema = z.string().min(1).describe('a file path');
export const hostPortSchema = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port');
export const tlsFilesSchema = z.strictObject({ ca: fileSchema, cert: fileSchema, key: fileSchema });
export const secretSchema = z.string().min(16, 'must be at least 16 characters');

export const postgresSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  database: z.string().min(1),
  user: z.string().min(1),
  tls: tlsFilesSchema,
  /** names the server certificate may carry: behind HAProxy it is whichever Patroni member leads (default: host) */
  serverNames: z.array(z.string().min(1)).min(1).optional(),
  poolSize: z.number().int().min(1).max(200).default(16),
  statementTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
});

export const kafkaSchema = z.strictObject({
  brokers: z.array(hostPortSchema).min(1),
  user: z.string().min(1),
  password: secretSchema,
  /** the brokers' CLIENT listener asks for a client certificate besides SCRAM */
  tls: tlsFilesSchema,
});

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name');
export { topicName as topicSchema };

const file = (path: string): string => readFileSync(path, 'utf8');

/** The TLS options of a client with the kit's CA and its own certificate. */
export function clientTls(files: z.infer<typeof tlsFilesSchema>): { ca: string; cert: string; key: string; rejectUnauthorized: true; minVersion: 'TLSv1.3' } {
  return { ca: file(files.ca), cert: file(files.cert), key: file(files.key), rejectUnauthorized: true, minVersion: 'TLSv1.3' };
}

export function createPool(config: z.infer<typeof postgresSchema>, applicationName: string, log: Logger): pg.Pool {
  const serverNames = config.serverNames ?? [config.host];
  const pool = new pg.Pool({
    host: config.host, port: config.port, database: config.database, user: config.user,
    max: config.poolSize, application_name: applicationName,
    statement_timeout: config.statementTimeoutMs, query_timeout: config.statementTimeoutMs + 1000,
    connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000, keepAlive: true,
    ssl: {
      ...clientTls(config.tls),
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        serverNames.some((n) => checkServerIdentity(n, cert) === undefined) ? undefined : new Error(`the PostgreSQL certificate is for none of ${serverNames.join(', ')}`),
    },
  });
  // an idle client's connection dropped (failover, restart): pg removes it from the pool; nothing else to do
  pool.on('error', (error) => { log.warn({ err: error }, 'idle PostgreSQL connection lost'); });
  return pool;
}

export function createKafka(config: z.infer<typeof kafkaSchema>, clientId: string): Kafka {
  return new Kafka({
    clientId, brokers: config.brokers,
    ssl: clientTls(config.tls),
    sasl: { mechanism: 'scram-sha-512', username: config.user, password: config.password },
    connectionTimeout: 3000, authenticationTimeout: 5000, requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
    logLevel: logLevel.NOTHING,
  });
}

/**
 * An idempotent Kafka producer that starts a new producer session (a new producer id) after any failed send.
 *
 * kafkajs 2.2.4 gives a failed send's sequence numbers back to the next send, whatever that one carries. When the
 * failed send had in fact been appended (its answer lost: a broker killed, a timeout), the next send to that partition
 * with as many messages gets the same sequence numbers, the broker takes it for a retry of the appended batch, answers
 * success as for a duplicate, and keeps none of it: acknowledged messages that are not in the topic (the
 * kafka-controller-kill drill under load lost 4 outbox events this way, after OUT_OF_ORDER_SEQUENCE_NUMBER answers).
 * A new session's numbers start afresh, so nothing new can be mistaken for something old; what the failed send may
 * have appended is sent again by its caller (the outbox relay, the notification retries), and consumers deduplicate
 * by event id. kafkajs's own retries inside one send() resend the same batch, which is what sequence numbers are for.
 */
export class SessionProducer {
  private session: Promise<Producer> | undefined;

  constructor(private readonly kafka: Kafka, private readonly config: ProducerConfig = { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }) {}

  /** Connects the first session (sends connect one themselves when there is none). */
  async connect(): Promise<void> {
    await this.current();
  }

  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    const session = this.current();
    const producer = await session;
    try {
      return await producer.send(record);
    } catch (error) {
      if (this.session === session) {
        this.session = undefined;
        void producer.disconnect().catch(() => undefined); // sends still in flight on it fail, and are sent again
      }
      throw error;
    }
  }

  async disconnect(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) await (await session).disconnect();
  }

  private current(): Promise<Producer> {
    if (!this.session) {
      const producer = this.kafka.producer(this.config);
      const session = producer.connect().then(() => producer);
      session.catch(() => { if (this.session === session) this.session = undefined; });
      this.session = session;
    }
    return this.session;
  }
}
