// The email provider behind one small interface (as the order service's payment provider): send an email, say
// whether a Message-ID has arrived (for an attempt whose answer never came), and check that it is reachable at all.
// Failures are classified once, here: transient (try again later: the provider is down, busy or slow) or permanent
// (this email will never be accepted: a refused recipient, a message it rejects).
import { readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Transform, type TransformCallback } from 'node:stream';
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

/** What a send runs under (lease.ts): aborted when the lease is lost; `valid()` is asked just before the email's end. */
export interface SendHold {
  signal: AbortSignal;
  valid(): boolean;
}

export interface MailProvider {
  /**
   * Resolves once the provider accepted the email; rejects with a SendFailure, or with the hold's abort reason when
   * the hold was lost first (then the provider was never given the end of the email, so it did not accept it).
   */
  send(email: OutgoingEmail, hold?: SendHold): Promise<void>;
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

/**
 * Passes the composed email through and, at its very end, asks the hold once more: a hold lost by then fails the
 * stream, and nodemailer never writes the end of DATA (the line a provider accepts the email on).
 */
class HoldFence extends Transform {
  constructor(private readonly hold: SendHold) { super(); }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void { done(null, chunk); }
  override _flush(done: TransformCallback): void {
    if (this.hold.valid()) done();
    else done(this.hold.signal.reason instanceof Error ? this.hold.signal.reason : new Error('the send was given up'));
  }
}

/** the hold of each send in progress, found again by its signal in the stream plugin (nodemailer copies mail data) */
const holds = new WeakMap<AbortSignal, SendHold>();

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
    this.transport.use('stream', (mail, done) => {
      const { signal } = mail.data as { signal?: AbortSignal };
      const hold = signal && holds.get(signal);
      if (hold) mail.message.transform(() => new HoldFence(hold));
      done();
    });
  }

  async send(email: OutgoingEmail, hold?: SendHold): Promise<void> {
    const options = { ...email, envelope: { from: email.from, to: [email.to] }, ...(hold ? { signal: hold.signal } : {}) };
    if (hold) holds.set(hold.signal, hold);
    try {
      await this.transport.sendMail(options);
    } catch (error) {
      if (hold && !hold.valid()) throw hold.signal.reason instanceof Error ? hold.signal.reason : error;
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
