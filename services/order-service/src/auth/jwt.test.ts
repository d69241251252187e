import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KeySet, keySetOf, mintToken, parseKeySet, publicKeyFromPem, TokenError, verifyToken } from './jwt.ts';

const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const { publicKey, privateKey } = pair();
const settings = { keys: KeySet.of(publicKeyFromPem(publicKey)), issuer: 'oms-lab-idp', audience: 'oms-api', clockSkewSeconds: 30 };
const mint = (over: Partial<Parameters<typeof mintToken>[0]> = {}) =>
  mintToken({ privateKeyPem: privateKey, issuer: 'oms-lab-idp', audience: 'oms-api', subject: 'cust-42', role: 'customer', ttlSeconds: 300, ...over });
const refused = (token: string, reason: RegExp, now?: number): void => {
  assert.throws(() => verifyToken(token, settings, now), (e: unknown) => e instanceof TokenError && reason.test(e.message));
};

describe('JWT (RS256)', () => {
  it('a customer and a staff token verify to their principal', () => {
    assert.deepEqual(verifyToken(mint(), settings), { subject: 'cust-42', role: 'customer' });
    assert.deepEqual(verifyToken(mint({ subject: 'staff-7', role: 'staff' }), settings), { subject: 'staff-7', role: 'staff' });
    assert.deepEqual(verifyToken(mint({ email: 'ada@shop.example' }), settings), { subject: 'cust-42', role: 'customer', email: 'ada@shop.example' });
  });

  it('refuses expired, not yet valid, wrong issuer or audience, and tokens of another key', () => {
    const now = Date.now();
    refused(mint({ ttlSeconds: 60, now: now - 10 * 60_000 }), /expired/, now);
    refused(mint({ now: now + 10 * 60_000 }), /not valid yet/, now);
    refused(mint({ issuer: 'someone-else' }), /wrong issuer/);
    refused(mint({ audience: 'other-api' }), /wrong audience/);
    refused(mintToken({ privateKeyPem: pair().privateKey, issuer: 'oms-lab-idp', audience: 'oms-api', subject: 'cust-42', role: 'customer', ttlSeconds: 300 }), /invalid signature/);
  });

  it('refuses alg none, an HMAC made with the public key, a changed payload, and garbage', () => {
    const [head = '', body = ''] = mint().split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.`;
    refused(none, /unsupported algorithm "none"/);
    const hsHead = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
    const hmac = createHmac('sha256', publicKey).update(`${hsHead}.${body}`).digest('base64url');
    refused(`${hsHead}.${body}.${hmac}`, /unsupported algorithm "HS256"/);
    const staff = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()) as object, role: 'staff' })).toString('base64url');
    refused(`${head}.${staff}.${mint().split('.')[2] ?? ''}`, /invalid signature/);
    refused('not-a-token', /malformed token/);
    refused('a.b.c', /malformed token \(header\)/);
  });

  it('mint-token refuses a bad subject or ttl', () => {
    assert.throws(() => mint({ subject: 'has spaces' }), /subject must be/);
    assert.throws(() => mint({ ttlSeconds: 0 }), /ttl must be a positive number/);
    assert.throws(() => mint({ email: 'not an address' }), /email must be an address/);
  });

  describe('key sets (JWKS): the provider rotates its signing key, the service follows without a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-jwks-'));
    after(() => { rmSync(dir, { recursive: true, force: true }); });
    const second = pair();
    const file = join(dir, 'jwks.json');
    // written whole and renamed, as an operator's copy (Ansible's) replaces a file
    const publish = (text: string): void => { writeFileSync(`${file}.tmp`, text); renameSync(`${file}.tmp`, file); };
    const events: string[] = [];
    const keyed = (keys: KeySet) => ({ ...settings, keys });
    const signedBy = (privateKeyPem: string, kid?: string | null) => mintToken({ privateKeyPem, issuer: 'oms-lab-idp', audience: 'oms-api', subject: 'cust-42', role: 'customer', ttlSeconds: 300, ...(kid === undefined ? {} : { kid }) });

    it('a new key is taken once published, the old one refused once withdrawn; a broken file keeps the last good set', () => {
      publish(keySetOf([publicKey]));
      const keys = KeySet.fromFile(file, (level, message) => { events.push(`${level}: ${message}`); }, 0);
      const s = keyed(keys);
      assert.deepEqual(verifyToken(signedBy(privateKey), s), { subject: 'cust-42', role: 'customer' });
      assert.throws(() => verifyToken(signedBy(second.privateKey), s), /unknown key id/);
      publish(keySetOf([publicKey, second.publicKey]));
      assert.equal(keys.ids().length, 2, 'both keys published');
      assert.equal(verifyToken(signedBy(second.privateKey), s).subject, 'cust-42', 'the new key verifies');
      assert.equal(verifyToken(signedBy(privateKey), s).subject, 'cust-42', 'the old one too, while published');
      assert.throws(() => verifyToken(signedBy(privateKey, null), s), /the token names no key \(kid\) and the key set holds 2/);
      publish(keySetOf([second.publicKey]));
      assert.throws(() => verifyToken(signedBy(privateKey), s), /unknown key id/, 'the withdrawn key');
      publish('{"keys": [');
      assert.equal(verifyToken(signedBy(second.privateKey), s).subject, 'cust-42', 'a broken file keeps the last good set');
      assert.equal(verifyToken(signedBy(second.privateKey), s).subject, 'cust-42');
      assert.equal(events.filter((e) => e.startsWith('warn: the key set stays as it was')).length, 1, `reported once: ${events.join(' | ')}`);
      assert.equal(events.filter((e) => e.startsWith('info: key set')).length, 2, 'each good change is logged');
    });

    it('a token whose key id names another key is refused even when its signature is by a known key', () => {
      publish(keySetOf([publicKey, second.publicKey]));
      const s = keyed(KeySet.fromFile(file, () => undefined, 0));
      const [id] = KeySet.fromFile(file).ids().slice(1);
      assert.throws(() => verifyToken(signedBy(privateKey, id), s), /invalid signature/);
    });

    it('one PEM key verifies whatever key id a token names (an identity provider without a key set)', () => {
      assert.equal(verifyToken(signedBy(privateKey, 'idp-2026'), settings).subject, 'cust-42');
      assert.equal(verifyToken(signedBy(privateKey, null), settings).subject, 'cust-42');
    });

    const jwk = JSON.parse(keySetOf([publicKey])) as { keys: Record<string, unknown>[] };
    const base = jwk.keys[0] ?? {};
    const refusedSets: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['{}', /a key set needs a non-empty "keys" array/],
      ['{"keys": []}', /a key set needs a non-empty "keys" array/],
      [JSON.stringify({ keys: [{ ...base, kty: 'EC' }] }), /key 0 \(kid [^)]+\): kty must be RSA/],
      [JSON.stringify({ keys: [{ ...base, d: 'secret' }] }), /holds a private key; a key set publishes public keys only/],
      [JSON.stringify({ keys: [{ ...base, use: 'enc' }] }), /use must be sig/],
      [JSON.stringify({ keys: [{ ...base, alg: 'RS512' }] }), /alg must be RS256/],
      [JSON.stringify({ keys: [base, base] }), /key 1 \(kid [^)]+\): the kid appears twice/],
      [JSON.stringify({ keys: [{ ...base, kid: '' }] }), /kid must be a non-empty string/],
      [JSON.stringify({ keys: [{ ...base, n: 'AQAB', kid: 'tiny' }] }), /key 0 \(kid tiny\): an RSA key of \d+ bits; at least 2048/],
      [JSON.stringify({ keys: [{ kty: 'RSA', kid: 'half' }] }), /key 0 \(kid half\): not a usable RSA key/],
    ];
    for (const [text, reason] of refusedSets) {
      it(`refuses a key set: ${text.slice(0, 60)}`, () => {
        assert.throws(() => parseKeySet(text, 'jwks.json'), (e: unknown) => e instanceof Error && e.message.startsWith('jwks.json: ') && reason.test(e.message));
      });
    }

    it('a missing key set file stops the start, naming it', () => {
      assert.throws(() => KeySet.fromFile(join(dir, 'nothing.json')), /nothing\.json/);
    });
  });
});
