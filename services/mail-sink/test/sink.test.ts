// The mail sink against a real SMTP client (nodemailer), on loopback with the kit's own certificates.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTransport } from 'nodemailer';
import { ConfigError, parseConfig } from '@oms/service-common/config';
import { createLogger } from '@oms/service-common/logger';
import { localPki, type LocalPki } from '@oms/zx-scripts/testkit/pki';
import { configSchema, loadSinkConfig, type SinkConfig } from '../src/config.ts';
import { startSink, type RunningSink } from '../src/sink.ts';

const PASSWORD = 'sink-password-0123456789';
const TOKEN = 'control-token-0123456789';
const log = createLogger({ service: 'mail-sink', level: 'silent' });

describe('mail sink (SMTP over TLS, AUTH, durable store, behaviour for drills)', () => {
  let dir: string;
  let pki: LocalPki;
  let config: SinkConfig;
  let sink: RunningSink;

  const transport = (options: { user?: string; password?: string; ignoreTLS?: boolean } = {}) => createTransport({
    host: '127.0.0.1', port: sink.smtpPort, secure: false, requireTLS: options.ignoreTLS !== true, ignoreTLS: options.ignoreTLS === true,
    auth: { user: options.user ?? 'notification-service', pass: options.password ?? PASSWORD },
    tls: { ca: readFileSync(pki.server.ca), servername: 'localhost', rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 10_000,
  });
  const mail = (eventId: string, orderId: string, to = 'customer@shop.example') => ({
    from: 'orders@oms.example', to, subject: `Order ${orderId}`, text: 'Thank you for your order.',
    messageId: `<${eventId}@notifications.oms.example>`, headers: { 'X-Oms-Order-Id': orderId, 'X-Oms-Event-Id': eventId, 'X-Oms-Event-Type': 'order.created' },
  });
  const control = async (path: string, init: { method?: string; body?: string; token?: string } = {}): Promise<{ status: number; body: any }> => {
    const r = await fetch(`${sink.controlUrl}${path}`, { method: init.method ?? 'GET', ...(init.body === undefined ? {} : { body: init.body }), headers: { authorization: `Bearer ${init.token ?? TOKEN}`, 'content-type': 'application/json' } });
    return { status: r.status, body: await r.json() };
  };
  const smtpCode = async (p: Promise<unknown>): Promise<number | undefined> => p.then(() => 250, (e: unknown) => (e as { responseCode?: number }).responseCode);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oms-sink-'));
    pki = await localPki(join(dir, 'pki'));
    config = parseConfig(configSchema, {
      smtp: { address: '127.0.0.1', port: 0, hostname: 'localhost', tls: { cert: pki.server.cert, key: pki.server.key }, users: [{ user: 'notification-service', password: PASSWORD }, { user: 'alertmanager', password: PASSWORD }] },
      control: { port: 0, token: TOKEN },
      storeFile: join(dir, 'messages.jsonl'),
    });
    sink = await startSink(config, log);
  });
  after(async () => {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts mail over STARTTLS from an authenticated sender, and finds it by Message-ID and by order', async () => {
    const info = await transport().sendMail(mail('e-1', 'o-1'));
    assert.match(info.response, /^250 /);
    const byId = await control('/messages?messageId=e-1@notifications.oms.example');
    assert.equal(byId.body.count, 1);
    assert.equal(byId.body.messages[0].orderId, 'o-1');
    assert.equal(byId.body.messages[0].eventType, 'order.created');
    assert.equal(byId.body.messages[0].raw, undefined);
    assert.deepEqual(byId.body.messages[0].to, ['customer@shop.example']);
    assert.equal((await control('/messages?orderId=o-1&raw=1')).body.messages[0].raw.includes('Thank you for your order.'), true);
  });

  it('refuses AUTH on a plain connection, a wrong password, and mail without AUTH', async () => {
    assert.notEqual(await smtpCode(transport({ ignoreTLS: true }).sendMail(mail('e-x', 'o-x'))), 250);
    assert.equal(await smtpCode(transport({ password: 'wrong-password-0123456789' }).sendMail(mail('e-x', 'o-x'))), 535);
    const anonymous = createTransport({ host: '127.0.0.1', port: sink.smtpPort, requireTLS: true, tls: { ca: readFileSync(pki.server.ca), servername: 'localhost' } });
    assert.equal(await smtpCode(anonymous.sendMail(mail('e-x', 'o-x'))), 530);
    assert.equal((await control('/messages?orderId=o-x')).body.count, 0);
  });

  it('counts the same Message-ID twice as a duplicate', async () => {
    const before = (await control('/stats')).body;
    await transport().sendMail(mail('e-2', 'o-2'));
    await transport().sendMail(mail('e-2', 'o-2'));
    const stats = (await control('/stats')).body;
    assert.equal(stats.messages - before.messages, 2);
    assert.equal(stats.messageIds - before.messageIds, 1);
    assert.equal(stats.duplicates - before.duplicates, 1);
  });

  it('answers 451 while told to fail, keeps nothing, then accepts again', async () => {
    assert.equal((await control('/behaviour', { method: 'PUT', body: JSON.stringify({ mode: 'tempfail', delayMs: 0, rejectRecipients: [] }) })).status, 200);
    assert.equal(await smtpCode(transport().sendMail(mail('e-3', 'o-3'))), 451);
    assert.equal((await control('/messages?orderId=o-3')).body.count, 0);
    sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    assert.equal(await smtpCode(transport().sendMail(mail('e-3', 'o-3'))), 250);
    assert.equal((await control('/messages?orderId=o-3')).body.count, 1);
  });

  it('fails only the accounts it is told to: the alert relay\'s mail goes through while the shop\'s is refused', async () => {
    sink.setBehaviour({ mode: 'tempfail', delayMs: 0, rejectRecipients: [], accounts: ['notification-service'] });
    try {
      assert.equal(await smtpCode(transport().sendMail(mail('e-6', 'o-6'))), 451);
      assert.equal(await smtpCode(transport({ user: 'alertmanager', password: PASSWORD }).sendMail(mail('e-7', 'o-7'))), 250);
      assert.equal((await control('/messages?orderId=o-6')).body.count, 0);
      assert.equal((await control('/messages?orderId=o-7')).body.count, 1);
      assert.equal((await control('/behaviour', { method: 'PUT', body: JSON.stringify({ mode: 'tempfail', delayMs: 0, rejectRecipients: [], accounts: [] }) })).status, 400, 'an empty list of accounts is refused');
    } finally {
      sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
  });

  it('refuses a bad recipient for good (550), and answers late when told to be slow', async () => {
    sink.setBehaviour({ mode: 'accept', delayMs: 300, rejectRecipients: ['@bounce.example'] });
    try {
      assert.equal(await smtpCode(transport().sendMail(mail('e-4', 'o-4', 'nobody@bounce.example'))), 550);
      const t0 = performance.now();
      assert.equal(await smtpCode(transport().sendMail(mail('e-5', 'o-5'))), 250);
      assert.ok(performance.now() - t0 >= 300, 'the answer to DATA waited for the delay');
    } finally {
      sink.setBehaviour({ mode: 'accept', delayMs: 0, rejectRecipients: [] });
    }
  });

  it('keeps what it accepted across a restart', async () => {
    const stats = (await control('/stats')).body;
    await sink.stop();
    sink = await startSink(config, log);
    assert.deepEqual((await control('/stats')).body, stats);
    assert.equal((await control('/messages?orderId=o-1')).body.count, 1);
  });

  it('guards its control API with the token and refuses a bad behaviour or paging', async () => {
    assert.equal((await fetch(`${sink.controlUrl}/stats`)).status, 401);
    assert.equal((await control('/stats', { token: 'wrong' })).status, 401);
    assert.equal((await fetch(`${sink.controlUrl}/livez`)).status, 200);
    const bad = await control('/behaviour', { method: 'PUT', body: JSON.stringify({ mode: 'explode', delayMs: -1, rejectRecipients: [] }) });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /mode/);
    assert.match(bad.body.error, /delayMs/);
    assert.equal((await control('/behaviour', { method: 'PUT', body: '{' })).status, 400);
    assert.equal((await control('/messages?limit=0')).status, 400);
    assert.deepEqual(sink.behaviour(), { mode: 'accept', delayMs: 0, rejectRecipients: [] });
  });

  it('refuses a bad configuration with every problem named', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ smtp: { port: 70000, hostname: '', tls: { cert: 'c' }, users: [{ user: 'u', password: 'short' }] }, control: { port: 1 }, storeFile: '' }));
    assert.throws(() => loadSinkConfig(file), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      for (const path of ['smtp.port', 'smtp.hostname', 'smtp.tls.key', 'smtp.users.0.password', 'control.token', 'storeFile']) assert.match(error.message, new RegExp(path.replace(/\./g, '\\.')));
      return true;
    });
  });
});
