// The kit's PKI, driven by the inventory: one CA, a server certificate per host, a client certificate per service
// identity. Certificates are built and signed with node-forge; RSA keys come from node's crypto (much faster).
//
// Layout of a PKI folder (default /var/lib/omslab/pki/<inventory name>):
//   ca/ca.key (0600, never copied to hosts), ca/ca.crt, ca/previous-ca.crt (only during a CA rotation overlap)
//   trust-bundle.pem                 the CA(s) every service trusts
//   hosts/<host>/server.{key,crt}    serverAuth + clientAuth (hosts are peers of each other: etcd, ZooKeeper, Kafka)
//   clients/<identity>/client.{key,crt}
//   .../keystore.p12 + keystore.pass where a Java component needs PKCS12 (kafka, zookeeper hosts; kafka clients)
import { generateKeyPair, privateEncrypt, constants as cryptoConstants, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import forge from 'node-forge';
import type { Inventory } from '@oms/zx-scripts/lib/inventory';

/** Service identities that get a client certificate; the CN is the identity (PostgreSQL maps it to a role). */
export const SERVICE_IDENTITIES = [
  'order-service',
  'notification-service',
  'gateway-to-app',
  'patroni',
  'replication',
  'kafka-inter-broker',
  'redis-replication',
  'prometheus',
  'admin',
] as const;

/** Groups whose hosts run Java (ZooKeeper, Kafka) and so also get a PKCS12 keystore. */
const JAVA_GROUPS = new Set(['kafka', 'zookeeper']);
const JAVA_IDENTITIES = new Set<string>(['kafka-inter-broker']);

export interface PkiOptions {
  /** validity of leaf certificates, days */
  leafDays: number;
  /** validity of the CA, days */
  caDays: number;
  /** re-issue a leaf certificate when it has fewer days left than this */
  renewBeforeDays: number;
  keyBits: number;
}

export const DEFAULT_OPTIONS: PkiOptions = { leafDays: 397, caDays: 3650, renewBeforeDays: 30, keyBits: 2048 };

export interface LeafSpec {
  kind: 'server' | 'client';
  name: string;
  dnsNames: string[];
  ips: string[];
  pkcs12: boolean;
}

export class PkiError extends Error {
  override name = 'PkiError';
}

export function pkiPaths(dir: string) {
  return {
    dir,
    caKey: join(dir, 'ca', 'ca.key'),
    caCert: join(dir, 'ca', 'ca.crt'),
    previousCaCert: join(dir, 'ca', 'previous-ca.crt'),
    bundle: join(dir, 'trust-bundle.pem'),
    leafDir: (spec: Pick<LeafSpec, 'kind' | 'name'>) => join(dir, spec.kind === 'server' ? 'hosts' : 'clients', spec.name),
    leafKey: (spec: Pick<LeafSpec, 'kind' | 'name'>) => join(dir, spec.kind === 'server' ? 'hosts' : 'clients', spec.name, `${spec.kind}.key`),
    leafCert: (spec: Pick<LeafSpec, 'kind' | 'name'>) => join(dir, spec.kind === 'server' ? 'hosts' : 'clients', spec.name, `${spec.kind}.crt`),
  };
}

/**
 * Service names a group's hosts also answer for: clients that reach a service on any of several hosts (Nginx to the
 * order-service upstream) check this one name, whichever host answers.
 */
const SERVICE_NAMES: Record<string, string[]> = { app_servers: ['order-service'] };

/** What the inventory implies: every host's server certificate and every service identity's client certificate. */
export function leafSpecs(inventory: Inventory): LeafSpec[] {
  const hosts = inventory.hosts.map((h): LeafSpec => {
    const gateway = h.groups.includes('gateways');
    const services = h.groups.flatMap((g) => SERVICE_NAMES[g] ?? []).map((s) => `${s}.${inventory.domain}`);
    return {
      kind: 'server',
      name: h.name,
      dnsNames: [h.name, `${h.name}.${inventory.domain}`, ...services, ...(gateway && inventory.gatewayName ? [inventory.gatewayName] : [])],
      ips: [h.address, h.mgmtAddress, ...(gateway && inventory.gatewayVip ? [inventory.gatewayVip] : [])],
      pkcs12: h.groups.some((g) => JAVA_GROUPS.has(g)),
    };
  });
  const clients = SERVICE_IDENTITIES.map((id): LeafSpec => ({ kind: 'client', name: id, dnsNames: [], ips: [], pkcs12: JAVA_IDENTITIES.has(id) }));
  return [...hosts, ...clients];
}

// ---------------------------------------------------------------------------------------------------------------
// CA

interface Ca {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  keyPem: string;
}

interface NewKey {
  pem: string;
  forgeKey: forge.pki.rsa.PrivateKey;
}

/** RSA key generation dominates issuing (about 0.2 s a key here): run it on libuv's thread pool, in parallel. */
async function newKeys(count: number, bits: number): Promise<NewKey[]> {
  const generate = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const options = {
        modulusLength: bits,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      } as const;
      generateKeyPair('rsa', options, (err: Error | null, _publicKey: string, privateKey: string) => {
        if (err) reject(err);
        else resolve(privateKey);
      });
    });
  const pems = await Promise.all(Array.from({ length: count }, generate));
  return pems.map((pem) => ({ pem, forgeKey: forge.pki.privateKeyFromPem(pem) }));
}

/**
 * Signs with node's crypto instead of node-forge's pure-JS RSA (about 100x faster for a 3072-bit CA key):
 * RSASSA-PKCS1-v1_5 is the DigestInfo of the SHA-256 digest, padded and raised with the private key.
 */
function nodeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  const sha256DigestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex');
  const signer = {
    sign(md: forge.md.MessageDigest): forge.Bytes {
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      const signature = privateEncrypt({ key: keyPem, padding: cryptoConstants.RSA_PKCS1_PADDING }, Buffer.concat([sha256DigestInfo, digest]));
      return signature.toString('binary');
    },
  };
  return signer as unknown as forge.pki.rsa.PrivateKey;
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive, as RFC 5280 requires
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000); // tolerate small clock skew between hosts
  cert.validity.notAfter = new Date(now.getTime() + days * 86_400_000);
}

async function createCa(name: string, options: PkiOptions): Promise<{ cert: forge.pki.Certificate; keyPem: string }> {
  const [key] = await newKeys(1, Math.max(options.keyBits, 3072));
  if (!key) throw new Error('internal: no CA key generated');
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.forgeKey.n, key.forgeKey.e);
  cert.serialNumber = serialNumber();
  validity(cert, options.caDays);
  const subject = [{ name: 'commonName', value: `OMS kit CA ${name} ${new Date().toISOString().slice(0, 10)}` }, { name: 'organizationName', value: 'OMS kit' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const ski = cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier', subjectKeyIdentifier: forge.util.bytesToHex(ski) },
    { name: 'authorityKeyIdentifier', keyIdentifier: ski },
  ]);
  cert.sign(nodeSigner(key.pem), forge.md.sha256.create());
  return { cert, keyPem: key.pem };
}

/** Loads the CA and checks that its key belongs to its certificate (a tampered or swapped key is refused). */
export function loadCa(dir: string): Ca {
  const p = pkiPaths(dir);
  if (!existsSync(p.caCert) || !existsSync(p.caKey)) throw new PkiError(`no CA in ${dir}; run: npm run certs -- init`);
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  const keyPem = existsSync(p.caKey) ? readFileSync(p.caKey, 'utf8') : '';
  try {
    cert = forge.pki.certificateFromPem(readFileSync(p.caCert, 'utf8'));
  } catch (err) {
    throw new PkiError(`CA certificate ${p.caCert} is unreadable: ${(err as Error).message}`);
  }
  try {
    key = forge.pki.privateKeyFromPem(keyPem);
  } catch (err) {
    throw new PkiError(`CA key ${p.caKey} is unreadable: ${(err as Error).message}`);
  }
  if (!keyMatches(cert, key)) throw new PkiError(`CA key ${p.caKey} does not belong to the CA certificate ${p.caCert} (tampered or swapped); nothing was issued`);
  if ((statSync(p.caKey).mode & 0o077) !== 0) throw new PkiError(`CA key ${p.caKey} is readable by others; fix with chmod 600`);
  return { cert, key, keyPem };
}

function keyMatches(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): boolean {
  const pub = cert.publicKey as forge.pki.rsa.PublicKey;
  return pub.n.equals(key.n) && pub.e.equals(key.e);
}

// ---------------------------------------------------------------------------------------------------------------
// Leaves

function createLeaf(spec: LeafSpec, ca: Ca, key: NewKey, options: PkiOptions): { cert: forge.pki.Certificate; keyPem: string; key: forge.pki.rsa.PrivateKey } {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.forgeKey.n, key.forgeKey.e);
  cert.serialNumber = serialNumber();
  validity(cert, options.leafDays);
  cert.setSubject([{ name: 'commonName', value: spec.name }, { name: 'organizationName', value: 'OMS kit' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const altNames = [
    ...spec.dnsNames.map((value) => ({ type: 2, value })),
    ...spec.ips.map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: spec.kind === 'server', clientAuth: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    // node-forge's default would derive this from the leaf's own key; it must name the CA's key
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(nodeSigner(ca.keyPem), forge.md.sha256.create());
  return { cert, keyPem: key.pem, key: key.forgeKey };
}

/** Why an existing leaf must be (re)issued, or undefined when it is good as it is. */
export function leafProblem(dir: string, spec: LeafSpec, ca: Ca, options: PkiOptions, now = new Date()): string | undefined {
  const p = pkiPaths(dir);
  if (!existsSync(p.leafCert(spec)) || !existsSync(p.leafKey(spec))) return 'missing';
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  try {
    cert = forge.pki.certificateFromPem(readFileSync(p.leafCert(spec), 'utf8'));
    key = forge.pki.privateKeyFromPem(readFileSync(p.leafKey(spec), 'utf8'));
  } catch {
    return 'unreadable';
  }
  if (!keyMatches(cert, key)) return 'key does not match certificate';
  try {
    if (!ca.cert.verify(cert)) return 'not signed by the current CA';
  } catch {
    return 'not signed by the current CA';
  }
  if (daysLeft(cert, now) < options.renewBeforeDays) return `expires in ${Math.floor(daysLeft(cert, now))} days`;
  const san = sansOf(cert);
  const want = { dns: [...spec.dnsNames].sort(), ip: [...spec.ips].sort() };
  if (JSON.stringify(san) !== JSON.stringify(want)) return `SANs changed (have ${[...san.dns, ...san.ip].join(',') || 'none'})`;
  const eku = cert.getExtension('extKeyUsage') as { serverAuth?: boolean; clientAuth?: boolean } | null;
  if (Boolean(eku?.serverAuth) !== (spec.kind === 'server') || !eku?.clientAuth) return 'key usage changed';
  if (spec.pkcs12 && !existsSync(join(p.leafDir(spec), 'keystore.p12'))) return 'PKCS12 keystore missing';
  return undefined;
}

export function sansOf(cert: forge.pki.Certificate): { dns: string[]; ip: string[] } {
  const ext = cert.getExtension('subjectAltName') as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
  const names = ext?.altNames ?? [];
  return {
    dns: names.filter((n) => n.type === 2).map((n) => n.value ?? '').sort(),
    ip: names.filter((n) => n.type === 7).map((n) => n.ip ?? '').sort(),
  };
}

export function daysLeft(cert: forge.pki.Certificate, now = new Date()): number {
  return (cert.validity.notAfter.getTime() - now.getTime()) / 86_400_000;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing, all-or-nothing per file: a temp file in the same folder, then rename.

function writeAtomic(path: string, content: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Fails early, before anything is written, when the folder cannot take files. */
export function assertWritable(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probe = join(dir, `.write-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    throw new PkiError(`cannot write to the PKI folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; nothing was written`);
  }
}

function writeBundle(dir: string): void {
  const p = pkiPaths(dir);
  const pems = [readFileSync(p.caCert, 'utf8'), ...(existsSync(p.previousCaCert) ? [readFileSync(p.previousCaCert, 'utf8')] : [])];
  writeAtomic(p.bundle, pems.join(''), 0o644);
}

function writeLeaf(dir: string, spec: LeafSpec, ca: Ca, key: NewKey, options: PkiOptions): void {
  const p = pkiPaths(dir);
  const leaf = createLeaf(spec, ca, key, options);
  const certPem = forge.pki.certificateToPem(leaf.cert);
  if (spec.pkcs12) {
    const password = randomBytes(18).toString('base64url');
    const p12 = forge.pkcs12.toPkcs12Asn1(leaf.key, [leaf.cert, ca.cert], password, { algorithm: '3des', friendlyName: spec.name });
    writeAtomic(join(p.leafDir(spec), 'keystore.pass'), `${password}\n`, 0o600);
    writeAtomic(join(p.leafDir(spec), 'keystore.p12'), Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary'), 0o600);
  }
  // the key before the certificate: a crash in between leaves a mismatch that the next `issue` detects and repairs
  writeAtomic(p.leafKey(spec), leaf.keyPem, 0o600);
  writeAtomic(p.leafCert(spec), certPem, 0o644);
}

// ---------------------------------------------------------------------------------------------------------------
// Commands

export interface Change {
  name: string;
  kind: LeafSpec['kind'] | 'ca';
  action: 'created' | 'reissued' | 'unchanged';
  reason?: string;
}

export async function init(dir: string, inventoryName: string, options: PkiOptions = DEFAULT_OPTIONS): Promise<Change> {
  const p = pkiPaths(dir);
  if (existsSync(p.caCert) || existsSync(p.caKey)) {
    loadCa(dir); // refuses a damaged CA rather than silently keeping it
    return { name: 'ca', kind: 'ca', action: 'unchanged' };
  }
  assertWritable(dir);
  const ca = await createCa(inventoryName, options);
  writeAtomic(p.caKey, ca.keyPem, 0o600);
  writeAtomic(p.caCert, forge.pki.certificateToPem(ca.cert), 0o644);
  writeBundle(dir);
  return { name: 'ca', kind: 'ca', action: 'created' };
}

/** Issues what is missing or no longer right; leaves good certificates untouched (a second run changes nothing). */
export async function issue(dir: string, specs: LeafSpec[], options: PkiOptions = DEFAULT_OPTIONS, { force = false } = {}): Promise<Change[]> {
  const ca = loadCa(dir);
  assertWritable(dir);
  const problems = specs.map((spec) => (force ? 'rotation' : leafProblem(dir, spec, ca, options)));
  const keys = await newKeys(problems.filter((p) => p !== undefined).length, options.keyBits);
  return specs.map((spec, i): Change => {
    const problem = problems[i];
    if (problem === undefined) return { name: spec.name, kind: spec.kind, action: 'unchanged' };
    const key = keys.pop();
    if (!key) throw new Error('internal: fewer keys than certificates to issue');
    writeLeaf(dir, spec, ca, key, options);
    return { name: spec.name, kind: spec.kind, action: problem === 'missing' ? 'created' : 'reissued', reason: problem };
  });
}

/**
 * Rotation. Leaves: every leaf gets a new key and certificate. CA (`ca: 'start'`): the current CA becomes the
 * previous one, a new CA is made, the trust bundle holds BOTH, and every leaf is re-issued by the new CA: during
 * the rolling restart old and new certificates are trusted everywhere. `ca: 'finish'` drops the old CA from the
 * bundle once every host runs the new certificates.
 */
export async function rotate(dir: string, inventoryName: string, specs: LeafSpec[], ca: 'none' | 'start' | 'finish', options: PkiOptions = DEFAULT_OPTIONS): Promise<Change[]> {
  const p = pkiPaths(dir);
  loadCa(dir);
  assertWritable(dir);
  const changes: Change[] = [];
  if (ca === 'start') {
    if (existsSync(p.previousCaCert)) throw new PkiError('a CA rotation is already in progress; finish it first: npm run certs -- rotate --ca finish');
    const fresh = await createCa(inventoryName, options);
    writeAtomic(p.previousCaCert, readFileSync(p.caCert, 'utf8'), 0o644);
    writeAtomic(p.caKey, fresh.keyPem, 0o600);
    writeAtomic(p.caCert, forge.pki.certificateToPem(fresh.cert), 0o644);
    writeBundle(dir);
    changes.push({ name: 'ca', kind: 'ca', action: 'reissued', reason: 'CA rotation started; old CA kept in the trust bundle' });
  }
  if (ca === 'finish') {
    if (!existsSync(p.previousCaCert)) throw new PkiError('no CA rotation in progress');
    rmSync(p.previousCaCert);
    writeBundle(dir);
    return [{ name: 'ca', kind: 'ca', action: 'reissued', reason: 'old CA removed from the trust bundle' }];
  }
  return [...changes, ...(await issue(dir, specs, options, { force: true }))];
}

export interface CertStatus {
  name: string;
  kind: 'ca' | 'previous-ca' | LeafSpec['kind'];
  notAfter: string;
  daysLeft: number;
  problem?: string;
}

export function status(dir: string, specs: LeafSpec[], options: PkiOptions = DEFAULT_OPTIONS, now = new Date()): CertStatus[] {
  const ca = loadCa(dir);
  const p = pkiPaths(dir);
  const row = (name: string, kind: CertStatus['kind'], cert: forge.pki.Certificate, problem?: string): CertStatus => ({
    name,
    kind,
    notAfter: cert.validity.notAfter.toISOString(),
    daysLeft: Math.floor(daysLeft(cert, now)),
    ...(problem ? { problem } : {}),
  });
  const rows = [row('ca', 'ca', ca.cert, daysLeft(ca.cert, now) < options.renewBeforeDays ? 'CA expires soon: rotate --ca start' : undefined)];
  if (existsSync(p.previousCaCert)) {
    rows.push(row('previous-ca', 'previous-ca', forge.pki.certificateFromPem(readFileSync(p.previousCaCert, 'utf8')), 'rotation in progress'));
  }
  for (const spec of specs) {
    const problem = leafProblem(dir, spec, ca, options, now);
    if (problem === 'missing' || problem === 'unreadable') {
      rows.push({ name: spec.name, kind: spec.kind, notAfter: '-', daysLeft: 0, problem });
    } else {
      rows.push(row(spec.name, spec.kind, forge.pki.certificateFromPem(readFileSync(p.leafCert(spec), 'utf8')), problem));
    }
  }
  return rows;
}
