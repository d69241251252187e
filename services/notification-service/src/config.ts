// The service's configuration: one JSON file (rendered by roles/notification_service; secrets included, so the file
// is readable by the service's user only), read once at start and checked with zod; every problem named by its path.
import { kafkaSchema, postgresSchema, tlsFilesSchema, topicSchema } from '@oms/service-common/clients';
import { loadConfig as loadWith, parseConfig as parseWith } from '@oms/service-common/config';
import { LOOPBACK } from '@oms/service-common/http';
import { z } from 'zod';
import { smtpSchema } from './mail/provider.ts';

export const configSchema = z.strictObject({
  /** /livez, /readyz, /metrics: plain HTTP on loopback only; anywhere else HTTPS with client certificates */
  http: z.strictObject({
    address: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535),
    tls: tlsFilesSchema.optional(),
    allowedClientNames: z.array(z.string().min(1)).min(1).optional(),
  }).refine((h) => LOOPBACK.test(h.address) || (h.tls !== undefined && h.allowedClientNames !== undefined), {
    message: 'listening beyond loopback needs tls and allowedClientNames (mutual TLS)',
  }),
  postgres: postgresSchema,
  kafka: kafkaSchema.extend({
    topic: topicSchema,
    retryTopic: topicSchema,
    deadLetterTopic: topicSchema,
    groupId: z.string().min(1).default('notification-service'),
    /** partitions handled at the same time (each one in order) */
    concurrency: z.number().int().min(1).max(64).default(3),
    /** a consumer that dies is noticed (its partitions handed to the others) after this long without heartbeats */
    sessionTimeoutMs: z.number().int().min(6000).max(300_000).default(30_000),
  }),
  smtp: smtpSchema,
  /**
   * A send is held under a lease in the inbox (lease.ts): another consumer takes an unfinished send over only after
   * leaseMs without a renewal. Longer than a renewal round trip and shorter than the session timeout, so that the
   * consumer a partition moves to can take an orphaned send over at once. The holder gives up marginMs earlier.
   */
  inbox: z.strictObject({
    leaseMs: z.number().int().min(1000).max(300_000),
    marginMs: z.number().int().min(100).max(60_000),
  }).refine((l) => l.marginMs * 2 <= l.leaseMs, { message: 'marginMs must be at most half of leaseMs' }).default({ leaseMs: 20_000, marginMs: 3000 }),
  /**
   * A send whose lease ran out afterMs ago and that no consumer took over is orphaned: its event will not come again
   * (a restore of the database brought back a row of a send whose message was consumed since). Every everyMs the
   * service asks the provider about such sends and records the ones that arrived; the others are counted
   * (oms_notifications_orphaned_sends) and left to the operator. afterMs is longer than a consumer's session timeout
   * plus a lease, so that a live redelivery always takes a send over first.
   */
  orphans: z.strictObject({
    afterMs: z.number().int().min(2000).max(24 * 3600 * 1000).default(120_000),
    everyMs: z.number().int().min(500).max(3600 * 1000).default(30_000),
  }).default({ afterMs: 120_000, everyMs: 30_000 }),
  /** inbox rows of events sent or given up are deleted after inboxDays: longer than the order events topic's retention */
  retention: z.strictObject({
    inboxDays: z.number().int().min(1).max(3650).default(30),
    everyMinutes: z.number().int().min(1).max(24 * 60).default(10),
    batch: z.number().int().min(10).max(100_000).default(5000),
  }).default({ inboxDays: 30, everyMinutes: 10, batch: 5000 }),
  retry: z.strictObject({
    /** the wait before attempt 2, 3, ...: the last attempt is delays + 1, then the dead-letter topic */
    delaysMs: z.array(z.number().int().min(0).max(24 * 3600 * 1000)).min(1).max(20),
    /** consecutive transient failures that mean the provider is down: sending pauses until a probe finds it again */
    breakerThreshold: z.number().int().min(1).max(100),
    probeEveryMs: z.number().int().min(100).max(600_000),
  }).default({ delaysMs: [1000, 5000, 30_000, 120_000, 600_000], breakerThreshold: 3, probeEveryMs: 2000 }),
}).refine((c) => c.inbox.leaseMs < c.kafka.sessionTimeoutMs, {
  message: 'must be shorter than kafka.sessionTimeoutMs (the consumer a partition moves to must be able to take an orphaned send over)',
  path: ['inbox', 'leaseMs'],
}).refine((c) => c.orphans.afterMs > c.kafka.sessionTimeoutMs + c.inbox.leaseMs, {
  message: 'must be longer than kafka.sessionTimeoutMs + inbox.leaseMs (a redelivered message takes a send over before it counts as orphaned)',
  path: ['orphans', 'afterMs'],
});

export type Config = z.infer<typeof configSchema>;

export function parseConfig(value: unknown, source = 'configuration'): Config {
  return parseWith(configSchema, value, source);
}

export function loadConfig(path: string): Config {
  return loadWith(configSchema, path);
}
