// The email provider behind one small interface (as the order service's payment provider): send an email, say
// whether a Message-ID has arrived (for an attempt whose answer never came), and check that it is reachable at all.
// Failures are classified once, here: transient (try again later: the provider is down, busy or slow) or permanent
// (this email will never be accepted: a refused recipient, a message it rejects).
import { readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createTransport, type Transporter } from 'nodemailer';
import { z } from 'zod';
import { secretSchema } from '@oms/service-common/clients';

export interface OutgoingEmail {
  from: string;
  to: string;
  messageId: string;
  subject: string;
  text: string;
  html: string;
  headers: Record<string, string>;
}

export interface MailProvider {
  /** resolves once the provider accepted the email; rejects with a SendFailure */
  send(email: OutgoingEmail): Promise<void>;
  /** whether the provider has an email with this Message-ID ('unknown' when it cannot tell) */
  lookup(messageId: string): Promise<'accepted' | 'unknown'>;
  /** whether the provider answers and takes our login now */
  reachable(): Promise<boolean>;
  close(): void;
}

export class SendFailure extends Error {
  override name = 'SendFailure';
  constructor(readonly kind: 'transient' | 'permanent', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const smtpSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** starttls: submission (587) upgraded with STARTTLS, never sent in the clear; tls: TLS from the first byte (465) */
  security: z.enum(['starttls', 'tls']).default('starttls'),
  /** the provider's CA bundle (default: the system's) and the name its certificate must carry (default: host) */
  ca: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
  user: z.string().min(1),
  password: secretSchema,
  from: z.email(),
  /** Message-IDs are <event-id@messageIdDomain> */
  messageIdDomain: z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be a domain name'),
  timeoutMs: z.number().int().min(500).max(120_000).default(15_000),
  /** a provider API that finds an email by Message-ID (the lab's mail sink has one); without it, lookups say unknown */
  lookup: z.strictObject({ url: z.url(), token: secretSchema }).optional(),
});

export type SmtpConfig = z.infer<typeof smtpSchema>;

/** Network-level and 4xx failures are transient; 5xx replies are permanent, except a refused login (our setup, not the email). */
export function classify(error: unknown): SendFailure {
  if (error instanceof SendFailure) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as { responseCode?: unknown; code?: unknown; message?: unknown };
  const text = typeof e.message === 'string' ? e.message : String(error);
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  if (code !== undefined && code >= 500 && code < 600 && !(code === 535 || code === 530 || e.code === 'EAUTH')) {
    return new SendFailure('permanent', `refused by the provider: ${text}`, { cause: error });
  }
  return new SendFailure('transient', code === undefined ? `provider unreachable: ${text}` : `provider answered ${String(code)}: ${text}`, { cause: error });
}

export class SmtpProvider implements MailProvider {
  private readonly transport: Transporter;

  constructor(private readonly config: SmtpConfig) {
    this.transport = createTransport({
      host: config.host, port: config.port,
      secure: config.security === 'tls', requireTLS: config.security === 'starttls',
      auth: { user: config.user, pass: config.password },
      tls: { ...(config.ca === undefined ? {} : { ca: readFileSync(config.ca) }), servername: config.servername ?? config.host, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      pool: true, maxConnections: 4,
      connectionTimeout: config.timeoutMs, greetingTimeout: config.timeoutMs, socketTimeout: config.timeoutMs,
    });
  }

  async send(email: OutgoingEmail): Promise<void> {
    try {
      await this.transport.sendMail({ ...email, envelope: { from: email.from, to: [email.to] } });
    } catch (error) {
      throw classify(error);
    }
  }

  async lookup(messageId: string): Promise<'accepted' | 'unknown'> {
    if (!this.config.lookup) return 'unknown';
    const id = messageId.replace(/^<|>$/g, '');
    const r = await this.getJson(new URL(`${this.config.lookup.url}/messages?messageId=${encodeURIComponent(id)}`), this.config.lookup.token);
    if (r.status !== 200) throw new SendFailure('transient', `provider lookup answered ${String(r.status)}`);
    const body = r.body as { count?: unknown };
    return typeof body.count === 'number' && body.count > 0 ? 'accepted' : 'unknown';
  }

  /** GET of a JSON document; over HTTPS the provider's certificate is checked against the same CA as for SMTP */
  private getJson(url: URL, token: string): Promise<{ status: number; body: unknown }> {
    const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
    return new Promise((resolve, reject) => {
      const onResponse = (res: IncomingMessage): void => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { text += chunk; });
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) as unknown : null });
          } catch {
            reject(new SendFailure('transient', `provider lookup answered ${String(res.statusCode)} with no JSON`));
          }
        });
        res.on('error', reject);
      };
      const req = url.protocol === 'https:'
        ? httpsGet(url, { headers, timeout: this.config.timeoutMs, minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(this.config.ca === undefined ? {} : { ca: readFileSync(this.config.ca) }) }, onResponse)
        : httpGet(url, { headers, timeout: this.config.timeoutMs }, onResponse);
      req.on('timeout', () => { req.destroy(new SendFailure('transient', 'provider lookup timed out')); });
      req.on('error', (error) => { reject(error instanceof SendFailure ? error : new SendFailure('transient', `provider lookup failed: ${error.message}`, { cause: error })); });
    });
  }

  async reachable(): Promise<boolean> {
    return this.transport.verify().then(() => true, () => false);
  }

  close(): void {
    this.transport.close();
  }
}
