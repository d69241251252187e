// Bearer tokens: JWT signed with RS256 by the identity provider (in the lab and tests: `mint-token`). The service holds
// only public keys: the provider's key set (a JWKS document, RFC 7517), each key by its id (`kid`), so that the
// provider can rotate its signing key: it publishes the new key, signs with it, and withdraws the old one; the
// service reads the set again when its file changes, without a restart (KeySet). Verification accepts RS256 alone
// (never `none`, never an HMAC made with a public key), checks issuer, audience, expiry and not-before with a small
// clock skew, and yields who is asking.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

export type Role = 'customer' | 'staff';

export interface Principal {
  /** the customer id for customers; the staff member's id for staff */
  subject: string;
  role: Role;
  /** the address the identity provider vouches for (the `email` claim); orders are confirmed to it */
  email?: string;
}

export interface JwtSettings {
  /** the keys tokens may be signed with */
  keys: KeySet;
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

/** A key's RFC 7638 thumbprint (SHA-256 of its canonical JWK members, base64url): the id a key without one gets. */
export function keyThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');
}

/** What a key set reports: a set read again (info), a file it could not read or parse (warn, once each). */
export type KeySetEvents = (level: 'info' | 'warn', message: string) => void;

/** One verification key: its id as the set declares it (none for a bare PEM key), and the key. */
interface SetKey { kid?: string; key: KeyObject }

/** A JWKS document's keys, checked: RSA public signing keys for RS256, each id once; every problem names the key. */
export function parseKeySet(text: string, source: string): SetKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${source}: a key set needs a non-empty "keys" array`);
  const seen = new Set<string>();
  return keys.map((jwk: unknown, i) => {
    const k = (typeof jwk === 'object' && jwk !== null ? jwk : {}) as Record<string, unknown>;
    const kid = k['kid'];
    const name = `${source}: key ${String(i)}${typeof kid === 'string' ? ` (kid ${kid})` : ''}`;
    if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw new Error(`${name}: kid must be a non-empty string`);
    if (k['kty'] !== 'RSA') throw new Error(`${name}: kty must be RSA (tokens are RS256), got ${JSON.stringify(k['kty'])}`);
    if (k['d'] !== undefined) throw new Error(`${name}: holds a private key; a key set publishes public keys only`);
    if (k['use'] !== undefined && k['use'] !== 'sig') throw new Error(`${name}: use must be sig, got ${JSON.stringify(k['use'])}`);
    if (k['alg'] !== undefined && k['alg'] !== 'RS256') throw new Error(`${name}: alg must be RS256, got ${JSON.stringify(k['alg'])}`);
    if (typeof kid === 'string') {
      if (seen.has(kid)) throw new Error(`${name}: the kid appears twice`);
      seen.add(kid);
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    } catch (error) {
      throw new Error(`${name}: not a usable RSA key (${error instanceof Error ? error.message : String(error)})`);
    }
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`${name}: an RSA key of ${String(bits)} bits; at least 2048`);
    return typeof kid === 'string' ? { kid, key } : { key };
  });
}

/**
 * The identity provider's keys. From a JWKS file, read again (at most once a second, when its size, time or inode
 * changed) so that a rotated set takes effect without a restart; a file that does not parse keeps the last good set
 * and is reported once. From a PEM file: one key, which verifies whatever key id a token names.
 */
export class KeySet {
  private keys: SetKey[];
  private checkedAt = 0;
  private stamp: string;
  private brokenStamp = '';
  /** the last problem reported (a file's stamp, or 'unreadable'): each is reported once */
  private lastReported = '';

  private constructor(private readonly path: string | null, keys: SetKey[], stamp: string,
    private readonly onEvent: KeySetEvents, private readonly checkEveryMs: number) {
    this.keys = keys;
    this.stamp = stamp;
  }

  /** A set of one key (a PEM public key, or a key object): no key ids. */
  static of(key: KeyObject): KeySet {
    return new KeySet(null, [{ key }], '', () => undefined, Infinity);
  }

  /** The JWKS file at `path`; a missing or broken file at start is an error naming it. */
  static fromFile(path: string, onEvent: KeySetEvents = () => undefined, checkEveryMs = 1000): KeySet {
    const stamp = KeySet.stampOf(path);
    return new KeySet(path, parseKeySet(readFileSync(path, 'utf8'), path), stamp, onEvent, checkEveryMs);
  }

  private static stampOf(path: string): string {
    const st = statSync(path);
    return `${String(st.ino)}:${String(st.size)}:${String(st.mtimeMs)}`;
  }

  /** The key ids the set holds now (a key without an id shows as "-"). */
  ids(now = Date.now()): string[] {
    this.refresh(now);
    return this.keys.map((k) => k.kid ?? '-');
  }

  /** The key a token's header names; a TokenError when the set has none such. */
  keyFor(kid: unknown, now = Date.now()): KeyObject {
    this.refresh(now);
    if (kid !== undefined && typeof kid !== 'string') throw new TokenError('malformed token (kid)');
    const named = kid === undefined ? undefined : this.keys.find((k) => k.kid === kid);
    if (named) return named.key;
    const [only] = this.keys;
    if (this.keys.length === 1 && only && (kid === undefined || only.kid === undefined)) return only.key;
    throw new TokenError(kid === undefined ? `the token names no key (kid) and the key set holds ${String(this.keys.length)}` : `unknown key id ${JSON.stringify(kid)}`);
  }

  private refresh(now: number): void {
    if (this.path === null || now - this.checkedAt < this.checkEveryMs) return;
    this.checkedAt = now;
    let stamp: string;
    try {
      stamp = KeySet.stampOf(this.path);
    } catch (error) {
      this.report('unreadable', `${this.path}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (stamp === this.stamp || stamp === this.brokenStamp) return;
    try {
      this.keys = parseKeySet(readFileSync(this.path, 'utf8'), this.path);
      this.stamp = stamp;
      this.brokenStamp = '';
      this.lastReported = '';
      this.onEvent('info', `key set ${this.path} read again: ${this.keys.map((k) => k.kid ?? '-').join(', ')}`);
    } catch (error) {
      this.brokenStamp = stamp;
      this.report(stamp, error instanceof Error ? error.message : String(error));
    }
  }

  private report(what: string, message: string): void {
    if (what === this.lastReported) return;
    this.lastReported = what;
    this.onEvent('warn', `the key set stays as it was: ${message}`);
  }
}

/** Verifies a compact JWT and returns its principal; any problem is a TokenError with a reason safe to show. */
export function verifyToken(token: string, settings: JwtSettings, now = Date.now()): Principal {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('malformed token (expected header.payload.signature)');
  const [headerPart, payloadPart, signaturePart = ''] = parts;
  const header = decodePart(headerPart, 'header');
  if (header['alg'] !== 'RS256') throw new TokenError(`unsupported algorithm ${JSON.stringify(header['alg'])} (RS256 only)`);
  if (!/^[A-Za-z0-9_-]+$/.test(signaturePart)) throw new TokenError('malformed token (signature)');
  const key = settings.keys.keyFor(header['kid'], now);
  const signed = verify('RSA-SHA256', Buffer.from(`${headerPart ?? ''}.${payloadPart ?? ''}`), key, Buffer.from(signaturePart, 'base64url'));
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
  /** the key id in the header: the key's thumbprint unless given; null for none */
  kid?: string | null;
}

/** Signs a token as the identity provider would (the lab's and the tests' stand-in for one). */
export function mintToken(o: MintOptions): string {
  if (!SUBJECT.test(o.subject)) throw new Error(`subject must be 1-100 of A-Z a-z 0-9 . _ : @ -, got ${JSON.stringify(o.subject)}`);
  if (o.email !== undefined && !EMAIL.test(o.email)) throw new Error(`email must be an address, got ${JSON.stringify(o.email)}`);
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 1) throw new Error(`ttl must be a positive number of seconds, got ${String(o.ttlSeconds)}`);
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const privateKey = createPrivateKey(o.privateKeyPem);
  const kid = o.kid === undefined ? keyThumbprint(createPublicKey(privateKey)) : o.kid;
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', ...(kid === null ? {} : { kid }) }));
  const body = b64url(JSON.stringify({ iss: o.issuer, aud: o.audience, sub: o.subject, role: o.role, ...(o.email === undefined ? {} : { email: o.email }), iat, nbf: iat, exp: iat + o.ttlSeconds }));
  const signature = sign('RSA-SHA256', Buffer.from(`${head}.${body}`), privateKey);
  return `${head}.${body}.${b64url(signature)}`;
}

/** A JWKS document of these public keys (PEM), each with its thumbprint as its id: what an identity provider publishes. */
export function keySetOf(publicKeysPem: readonly string[]): string {
  const keys = publicKeysPem.map((pem) => {
    const key = publicKeyFromPem(pem);
    const jwk = key.export({ format: 'jwk' });
    return { kty: jwk.kty, kid: keyThumbprint(key), use: 'sig', alg: 'RS256', n: jwk.n, e: jwk.e };
  });
  return `${JSON.stringify({ keys }, null, 2)}\n`;
}
