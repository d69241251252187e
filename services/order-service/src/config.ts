// The service's configuration: one JSON file (rendered by roles/order_service; secrets included, so the file is
// readable by the service's user only), read once at start and checked with zod. A wrong or missing setting stops the
// service before it opens any connection, with every problem named by its path.
import { loadConfig as loadWith, parseConfig as parseWith } from '@oms/service-common/config';
import { z } from 'zod';

const file = z.string().min(1).describe('a file path');
const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port');
const tls = z.strictObject({ ca: file, cert: file, key: file });

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
  postgres: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    database: z.string().min(1),
    user: z.string().min(1),
    tls,
    /** names the server certificate may carry: behind HAProxy it is whichever Patroni member leads (default: host) */
    serverNames: z.array(z.string().min(1)).min(1).optional(),
    poolSize: z.number().int().min(1).max(200).default(16),
    statementTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
  }),
  redis: z.strictObject({
    sentinels: z.array(hostPort).min(1),
    masterName: z.string().min(1),
    user: z.string().min(1),
    password: z.string().min(16, 'must be at least 16 characters'),
    tls,
    /** catalog entries live this long, plus up to `ttlJitterSeconds` so they do not all expire together */
    catalogTtlSeconds: z.number().int().min(1).default(300),
    ttlJitterSeconds: z.number().int().min(0).default(60),
  }),
  kafka: z.strictObject({
    brokers: z.array(hostPort).min(1),
    user: z.string().min(1),
    password: z.string().min(16, 'must be at least 16 characters'),
    /** the brokers' CLIENT listener asks for a client certificate besides SCRAM */
    tls,
    topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name'),
  }),
  auth: z.strictObject({
    publicKey: file,
    issuer: z.string().min(1),
    audience: z.string().min(1),
    clockSkewSeconds: z.number().int().min(0).max(300).default(30),
  }),
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
