// The service's configuration: one JSON file (rendered by roles/order_service; secrets included, so the file is
// readable by the service's user only), read once at start and checked with zod. A wrong or missing setting stops the
// service before it opens any connection, with every problem named by its path.
import { loadConfig as loadWith, parseConfig as parseWith } from '@oms/service-common/config';
import { fileSchema, hostPortSchema, kafkaSchema, postgresSchema, secretSchema, tlsFilesSchema, topicSchema } from '@oms/service-common/clients';
import { opsListenerSchema } from '@oms/service-common/http';
import { z } from 'zod';

const tls = tlsFilesSchema;

export const configSchema = z.strictObject({
  http: z.strictObject({
    address: z.string().default('0.0.0.0'),
    port: z.number().int().min(1).max(65535),
    /** mutual TLS: only these client certificate CNs may call (the gateway) */
    tls,
    allowedClientNames: z.array(z.string().min(1)).min(1),
    /** seconds the server waits for requests in progress on shutdown */
    drainSeconds: z.number().min(0).max(120).default(10),
  }),
  /** /livez, /readyz, /metrics in plain HTTP on loopback, for the host's own checks (optional) */
  ops: opsListenerSchema.optional(),
  postgres: postgresSchema,
  redis: z.strictObject({
    sentinels: z.array(hostPortSchema).min(1),
    masterName: z.string().min(1),
    user: z.string().min(1),
    password: secretSchema,
    tls,
    /** catalog entries live this long, plus up to `ttlJitterSeconds` so they do not all expire together */
    catalogTtlSeconds: z.number().int().min(1).default(300),
    ttlJitterSeconds: z.number().int().min(0).default(60),
  }),
  kafka: kafkaSchema.extend({ topic: topicSchema }),
  /** the identity provider's keys: its key set (a JWKS file, read again when it changes) or one PEM public key */
  auth: z.strictObject({
    keySet: fileSchema.optional(),
    publicKey: fileSchema.optional(),
    issuer: z.string().min(1),
    audience: z.string().min(1),
    clockSkewSeconds: z.number().int().min(0).max(300).default(30),
  }).refine((a) => (a.keySet === undefined) !== (a.publicKey === undefined), { message: 'give keySet (a JWKS file) or publicKey (a PEM file), not both or neither' }),
  payments: z.strictObject({
    /** the provider's answer must come within this time, else the order waits for the recovery sweep */
    timeoutMs: z.number().int().min(100).max(60_000).default(3000),
  }).default({ timeoutMs: 3000 }),
  outbox: z.strictObject({
    pollMs: z.number().int().min(10).max(60_000).default(200),
    batchSize: z.number().int().min(1).max(1000).default(100),
  }).default({ pollMs: 200, batchSize: 100 }),
  recovery: z.strictObject({
    /** an order still waiting for its payment this long is resolved by the sweep */
    pendingAfterSeconds: z.number().int().min(5).default(60),
    everySeconds: z.number().int().min(1).default(15),
  }).default({ pendingAfterSeconds: 60, everySeconds: 15 }),
  /** how long rows are kept that no request needs any more; the purge runs every everyMinutes, batch rows a statement */
  retention: z.strictObject({
    /** outbox events published this long ago (they are in Kafka, whose own retention then applies) */
    outboxDays: z.number().int().min(1).max(3650).default(7),
    /** finished Idempotency-Keys: a retry after this long is a new order (24 h, as the large payment APIs keep them) */
    idempotencyKeyHours: z.number().int().min(1).max(24 * 365).default(24),
    everyMinutes: z.number().int().min(1).max(24 * 60).default(10),
    batch: z.number().int().min(10).max(100_000).default(5000),
  }).default({ outboxDays: 7, idempotencyKeyHours: 24, everyMinutes: 10, batch: 5000 }),
});

export type Config = z.infer<typeof configSchema>;

export { ConfigError } from '@oms/service-common/config';

/** Checks a parsed configuration; throws a ConfigError naming every problem ("postgres.port: ..."). */
export function parseConfig(value: unknown, source = 'configuration'): Config {
  return parseWith(configSchema, value, source);
}

/** Reads and checks the configuration file. */
export function loadConfig(path: string): Config {
  return loadWith(configSchema, path);
}
