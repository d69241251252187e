// The sink's configuration: one JSON file (roles/mail_sink renders it; it holds the SMTP passwords and the control
// token, so it is readable by the sink's user only), checked with zod (services/common: every problem named).
import { loadConfig } from '@oms/service-common/config';
import { LOOPBACK } from '@oms/service-common/http';
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const secret = z.string().min(16, 'must be at least 16 characters');

export const configSchema = z.strictObject({
  smtp: z.strictObject({
    address: z.string().min(1).default('0.0.0.0'),
    port,
    /** the name the sink greets with (and its certificate is for) */
    hostname: z.string().min(1),
    /** starttls: plain connection upgraded by STARTTLS (submission, 587); tls: TLS from the first byte (465) */
    security: z.enum(['starttls', 'tls']).default('starttls'),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }),
    /** SMTP AUTH accounts (PLAIN or LOGIN, only over TLS) */
    users: z.array(z.strictObject({ user: z.string().min(1), password: secret })).min(1),
    maxMessageBytes: z.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024),
  }),
  control: z.strictObject({
    address: z.string().min(1).default('127.0.0.1'),
    port,
    /** bearer token of the query and behaviour API */
    token: secret,
    /** HTTPS (TLS 1.3) with the SMTP certificate: required off loopback, since the token travels with every request */
    tls: z.boolean().default(false),
  }).refine((c) => c.tls || LOOPBACK.test(c.address), { message: 'a control API off loopback needs tls: true' }),
  /** the JSON-lines file of accepted messages */
  storeFile: z.string().min(1),
});

export type SinkConfig = z.infer<typeof configSchema>;

export function loadSinkConfig(path: string): SinkConfig {
  return loadConfig(configSchema, path);
}
