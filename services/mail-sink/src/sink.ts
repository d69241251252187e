// The sink: an SMTP server that only takes mail over TLS from authenticated senders, keeps every accepted message
// durably (store.ts) before it answers 250, and behaves as told (behaviour.ts); beside it a small HTTP API, behind a
// bearer token, to query what arrived and to change the behaviour. main.ts runs it as a process; tests in-process.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { listen } from '@oms/service-common/http';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { affects, behaviourSchema, NORMAL, refuses, type Behaviour } from './behaviour.ts';
import type { SinkConfig } from './config.ts';
import { MessageStore, type StoredMessage } from './store.ts';

export interface RunningSink {
  smtpPort: number;
  controlUrl: string;
  store: MessageStore;
  behaviour(): Behaviour;
  setBehaviour(next: Behaviour): void;
  stop(): Promise<void>;
}

/** An SMTP error with its reply code (smtp-server answers with `responseCode`). */
function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

function readAll(stream: SMTPServerDataStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
    stream.once('error', reject);
  });
}

export async function startSink(config: SinkConfig, log: Logger): Promise<RunningSink> {
  const store = new MessageStore(config.storeFile);
  let behaviour: Behaviour = NORMAL;

  const smtp = new SMTPServer({
    name: config.smtp.hostname,
    banner: 'oms lab mail sink',
    secure: config.smtp.security === 'tls',
    key: readFileSync(config.smtp.tls.key),
    cert: readFileSync(config.smtp.tls.cert),
    minVersion: 'TLSv1.2',
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false, // AUTH only once the connection is encrypted; without AUTH no MAIL FROM
    authOptional: false,
    size: config.smtp.maxMessageBytes,
    disabledCommands: [],
    logger: false,
    onAuth(auth, _session, callback) {
      const account = config.smtp.users.find((u) => u.user === auth.username);
      if (account && typeof auth.password === 'string' && sameSecret(account.password, auth.password)) {
        callback(null, { user: account.user });
        return;
      }
      log.warn({ user: auth.username }, 'SMTP authentication refused');
      callback(smtpError(535, '5.7.8 Authentication credentials invalid'));
    },
    onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void) {
      const affected = affects(behaviour, session.user);
      const answer = (): void => {
        if (affected && behaviour.mode === 'tempfail') callback(smtpError(451, '4.3.0 Temporary failure: the provider is having trouble, try again later'));
        else callback();
      };
      if (affected && behaviour.envelopeDelayMs) setTimeout(answer, behaviour.envelopeDelayMs);
      else answer();
    },
    onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, callback: (error?: Error | null) => void) {
      if (refuses(behaviour, address.address)) callback(smtpError(550, `5.1.1 <${address.address}>: no such mailbox`));
      else callback();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void) {
      readAll(stream).then(async (raw) => {
        if (stream.sizeExceeded) throw smtpError(552, `5.3.4 Message larger than ${String(config.smtp.maxMessageBytes)} bytes`);
        const affected = affects(behaviour, session.user);
        if (affected && behaviour.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
        if (affected && behaviour.mode === 'tempfail') throw smtpError(451, '4.3.0 Temporary failure: the provider is having trouble, try again later');
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        const message = store.add({ from, to: session.envelope.rcptTo.map((r) => r.address) }, raw);
        log.info({ seq: message.seq, messageId: message.messageId, orderId: message.orderId, to: message.to }, 'message accepted');
        callback(null, `2.0.0 Ok: queued as ${String(message.seq)}`);
      }).catch((error: unknown) => { callback(error instanceof Error ? error : new Error(String(error))); });
    },
  });
  smtp.on('error', (error) => { log.warn({ err: error }, 'SMTP connection error'); });
  await new Promise<void>((resolve, reject) => {
    smtp.server.once('error', reject);
    smtp.listen(config.smtp.port, config.smtp.address, () => { smtp.server.off('error', reject); resolve(); });
  });
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      log.error({ err: error }, 'control request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  };
  const control: Server = config.control.tls
    ? createHttpsServer({ key: readFileSync(config.smtp.tls.key), cert: readFileSync(config.smtp.tls.cert), minVersion: 'TLSv1.3' }, onRequest)
    : createServer(onRequest);
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const brief = (m: StoredMessage, raw: boolean): Omit<StoredMessage, 'raw'> => {
    if (raw) return m;
    const rest: Partial<StoredMessage> = { ...m };
    delete rest.raw;
    return rest as Omit<StoredMessage, 'raw'>;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sink');
    if (url.pathname === '/livez') { send(res, 200, { ok: true }); return; }
    if (!sameSecret(req.headers.authorization ?? '', `Bearer ${config.control.token}`)) { send(res, 401, { error: 'a bearer token is required' }); return; }
    if (req.method === 'GET' && url.pathname === '/stats') { send(res, 200, store.stats()); return; }
    if (req.method === 'GET' && url.pathname === '/messages') {
      const raw = url.searchParams.get('raw') === '1';
      const messageId = url.searchParams.get('messageId');
      const orderId = url.searchParams.get('orderId');
      const after = Number(url.searchParams.get('after') ?? '0');
      const limit = Number(url.searchParams.get('limit') ?? '1000');
      if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        send(res, 400, { error: 'after must be a whole number >= 0 and limit from 1 to 10000' });
        return;
      }
      const found = messageId !== null ? store.withMessageId(messageId) : orderId !== null ? store.forOrder(orderId) : store.list(after, limit);
      send(res, 200, { count: found.length, messages: found.map((m) => brief(m, raw)) });
      return;
    }
    if (url.pathname === '/behaviour' && req.method === 'GET') { send(res, 200, behaviour); return; }
    if (url.pathname === '/behaviour' && req.method === 'PUT') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      let parsed;
      try {
        parsed = behaviourSchema.safeParse(JSON.parse(body));
      } catch {
        send(res, 400, { error: 'the body is not JSON' });
        return;
      }
      if (!parsed.success) { send(res, 400, { error: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') }); return; }
      behaviour = parsed.data;
      log.info({ behaviour }, 'behaviour changed');
      send(res, 200, behaviour);
      return;
    }
    send(res, 404, { error: `no ${req.method ?? ''} ${url.pathname}` });
  }

  const controlPort = await listen(control, config.control.port, config.control.address);
  log.info({ smtpPort, controlPort }, 'mail sink ready');

  let stopped: Promise<void> | undefined;
  return {
    smtpPort,
    controlUrl: `${config.control.tls ? 'https' : 'http'}://${config.control.address === '0.0.0.0' ? '127.0.0.1' : config.control.address}:${String(controlPort)}`,
    store,
    behaviour: () => behaviour,
    setBehaviour: (next) => { behaviour = behaviourSchema.parse(next); },
    stop: () => (stopped ??= (async () => {
      await new Promise<void>((resolve) => { smtp.close(() => { resolve(); }); });
      control.closeAllConnections();
      await new Promise<void>((resolve) => { control.close(() => { resolve(); }); });
      store.close();
    })()),
  };
}
