import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { mintToken, publicKeyFromPem, TokenError, verifyToken } from './jwt.ts';

const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const { publicKey, privateKey } = pair();
const settings = { publicKey: publicKeyFromPem(publicKey), issuer: 'oms-lab-idp', audience: 'oms-api', clockSkewSeconds: 30 };
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
});
