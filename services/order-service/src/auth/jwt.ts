// Bearer tokens: JWT signed with RS256 by the identity provider (in the lab and tests: `mint-token`). The service holds
// only the public key. Verification accepts RS256 alone (never `none`, never an HMAC made with the public key),
// checks issuer, audience, expiry and not-before with a small clock skew, and yields who is asking.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export type Role = 'customer' | 'staff';

export interface Principal {
  /** the customer id for customers; the staff member's id for staff */
  subject: string;
  role: Role;
  /** the address the identity provider vouches for (the `email` claim); orders are confirmed to it */
  email?: string;
}

export interface JwtSettings {
  publicKey: KeyObject;
  issuer: string;
  audience: string;
  /** seconds of clock difference tolerated on exp and nbf */
  clockSkewSeconds: number;
}

export class TokenError extends Error {
  override name = 'TokenError';
}

const SUBJECT = /^[A-Za-z0-9._:@-]{1,100}$/;
/** an address as identity providers issue them: local@domain, no spaces or angle brackets, at most 254 characters */
const EMAIL = /^(?=.{3,254}$)[^\s@<>"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function decodePart(part: string | undefined, what: string): Record<string, unknown> {
  if (part === undefined || !/^[A-Za-z0-9_-]+$/.test(part)) throw new TokenError(`malformed token (${what})`);
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new TokenError(`malformed token (${what})`);
  }
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`the JWT public key must be RSA, got ${String(key.asymmetricKeyType)}`);
  return key;
}

/** Verifies a compact JWT and returns its principal; any problem is a TokenError with a reason safe to show. */
export function verifyToken(token: string, settings: JwtSettings, now = Date.now()): Principal {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('malformed token (expected header.payload.signature)');
  const [headerPart, payloadPart, signaturePart = ''] = parts;
  const header = decodePart(headerPart, 'header');
  if (header['alg'] !== 'RS256') throw new TokenError(`unsupported algorithm ${JSON.stringify(header['alg'])} (RS256 only)`);
  if (!/^[A-Za-z0-9_-]+$/.test(signaturePart)) throw new TokenError('malformed token (signature)');
  const signed = verify('RSA-SHA256', Buffer.from(`${headerPart ?? ''}.${payloadPart ?? ''}`), settings.publicKey, Buffer.from(signaturePart, 'base64url'));
  if (!signed) throw new TokenError('invalid signature');
  const claims = decodePart(payloadPart, 'payload');

  const seconds = now / 1000;
  const exp = claims['exp'];
  if (typeof exp !== 'number') throw new TokenError('the token has no expiry (exp)');
  if (seconds > exp + settings.clockSkewSeconds) throw new TokenError('the token has expired');
  const nbf = claims['nbf'];
  if (typeof nbf === 'number' && seconds < nbf - settings.clockSkewSeconds) throw new TokenError('the token is not valid yet');
  if (claims['iss'] !== settings.issuer) throw new TokenError('wrong issuer');
  const aud = claims['aud'];
  if (!(aud === settings.audience || (Array.isArray(aud) && aud.includes(settings.audience)))) throw new TokenError('wrong audience');
  const sub = claims['sub'];
  if (typeof sub !== 'string' || !SUBJECT.test(sub)) throw new TokenError('the token has no valid subject (sub)');
  const role = claims['role'] ?? 'customer';
  if (role !== 'customer' && role !== 'staff') throw new TokenError(`unknown role ${JSON.stringify(role)}`);
  const email = claims['email'];
  if (email !== undefined && (typeof email !== 'string' || !EMAIL.test(email))) throw new TokenError('the email claim is not an address');
  return { subject: sub, role, ...(email === undefined ? {} : { email }) };
}

export interface MintOptions {
  privateKeyPem: string;
  issuer: string;
  audience: string;
  subject: string;
  role: Role;
  email?: string;
  ttlSeconds: number;
  now?: number;
}

/** Signs a token as the identity provider would (the lab's and the tests' stand-in for one). */
export function mintToken(o: MintOptions): string {
  if (!SUBJECT.test(o.subject)) throw new Error(`subject must be 1-100 of A-Z a-z 0-9 . _ : @ -, got ${JSON.stringify(o.subject)}`);
  if (o.email !== undefined && !EMAIL.test(o.email)) throw new Error(`email must be an address, got ${JSON.stringify(o.email)}`);
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 1) throw new Error(`ttl must be a positive number of seconds, got ${String(o.ttlSeconds)}`);
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ iss: o.issuer, aud: o.audience, sub: o.subject, role: o.role, ...(o.email === undefined ? {} : { email: o.email }), iat, nbf: iat, exp: iat + o.ttlSeconds }));
  const signature = sign('RSA-SHA256', Buffer.from(`${head}.${body}`), createPrivateKey(o.privateKeyPem));
  return `${head}.${body}.${b64url(signature)}`;
}
