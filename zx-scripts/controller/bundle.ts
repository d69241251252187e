// The controller's state as one encrypted file: what a new controller needs to take over an installation and
// cannot make again. The PKI (the CA's key: a new CA would mean new certificates on every host), the generated
// secrets (among them pgBackRest's repository key: without it no backup decrypts) and the SSH key the hosts trust.
// Everything else in the state folder (the apt cache, the time source, generated nftables) is made again by
// `npm run lab -- up` or site.yml.
//
// Format: "OMSCTL1\n", the header's length (4 bytes, big-endian), the header (JSON: key derivation, cipher, IV,
// tag, when and where it was made), then the payload encrypted with AES-256-GCM under a key derived from the
// passphrase with scrypt; the header is the cipher's additional data, so a header changed in transit fails to
// decrypt like a wrong passphrase. The payload is gzip'd JSON: every file with its path, mode, SHA-256 and content.
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/** The folders of the state folder a bundle carries. */
export const BUNDLED = ['pki', 'secrets', 'ssh'] as const;
export const MIN_PASSPHRASE = 16;
const MAGIC = Buffer.from('OMSCTL1\n');
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export class BundleError extends Error {
  override name = 'BundleError';
}

interface Header {
  version: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: 'aes-256-gcm';
  iv: string;
  tag: string;
  created: string;
  source: string;
}

export interface BundledFile {
  path: string;
  mode: number;
  sha256: string;
  size: number;
}

interface Payload {
  files: (BundledFile & { data: string })[];
}

/** A file's description without its content. */
function described(f: Payload['files'][number]): BundledFile {
  return { path: f.path, mode: f.mode, sha256: f.sha256, size: f.size };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function deriveKey(passphrase: string, salt: Buffer, kdf: { N: number; r: number; p: number }): Buffer {
  return scryptSync(passphrase, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: SCRYPT.maxmem });
}

function checkPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE) throw new BundleError(`the passphrase has ${passphrase.length} characters; a bundle that holds the CA key needs at least ${MIN_PASSPHRASE}`);
}

/** Every regular file under the bundled folders of `stateDir`; anything else (a link, a device) is refused. */
function collect(stateDir: string): Payload['files'] {
  const files: Payload['files'] = [];
  const walk = (rel: string): void => {
    const abs = join(stateDir, rel);
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(posix.join(rel, name));
    } else if (st.isFile()) {
      const data = readFileSync(abs);
      files.push({ path: rel, mode: st.mode & 0o777, sha256: sha256(data), size: data.length, data: data.toString('base64') });
    } else {
      throw new BundleError(`${abs} is neither a file nor a folder; the bundle takes files only (nothing was written)`);
    }
  };
  const present = BUNDLED.filter((d) => existsSync(join(stateDir, d)));
  if (!present.includes('pki')) throw new BundleError(`${stateDir} has no pki folder: this is not a controller's state folder (nothing was written)`);
  for (const d of present) walk(d);
  return files;
}

/** Writes the encrypted bundle of `stateDir` to `out` (refused if `out` exists); returns what it holds. */
export function exportBundle(stateDir: string, out: string, passphrase: string, now = new Date()): BundledFile[] {
  checkPassphrase(passphrase);
  if (existsSync(out)) throw new BundleError(`${out} exists; the bundle is never written over a file (nothing was written)`);
  if (!existsSync(dirname(out))) throw new BundleError(`the folder ${dirname(out)} does not exist (nothing was written)`);
  const files = collect(stateDir);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const header: Header = {
    version: 1,
    kdf: { name: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: '',
    created: now.toISOString(),
    source: `${hostname()}:${stateDir}`,
  };
  const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt, SCRYPT), iv);
  // the tag is computed over a header whose tag is empty, then put in; decryption does the reverse
  cipher.setAAD(Buffer.from(JSON.stringify(header)));
  const sealed = Buffer.concat([cipher.update(gzipSync(JSON.stringify({ files } satisfies Payload))), cipher.final()]);
  header.tag = cipher.getAuthTag().toString('base64');
  const headerBytes = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(headerBytes.length);
  const tmp = `${out}.partial-${process.pid}`;
  writeFileSync(tmp, Buffer.concat([MAGIC, length, headerBytes, sealed]), { mode: 0o600 });
  renameSync(tmp, out);
  return files.map(described);
}

/** Decrypts and checks a bundle; every problem is a BundleError naming it. */
export function openBundle(file: string, passphrase: string): { header: { created: string; source: string }; files: Payload['files'] } {
  if (!existsSync(file)) throw new BundleError(`no bundle at ${file}`);
  const raw = readFileSync(file);
  if (raw.length < MAGIC.length + 4 || !raw.subarray(0, MAGIC.length).equals(MAGIC)) throw new BundleError(`${file} is not a controller bundle (it does not start with OMSCTL1)`);
  const headerLength = raw.readUInt32BE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd > raw.length) throw new BundleError(`${file} is cut short (its header claims ${headerLength} bytes)`);
  // read as unknown values: the file may come from anywhere
  let header: Partial<Record<keyof Header, unknown>> & { kdf?: Partial<Record<keyof Header['kdf'], unknown>> };
  try {
    header = JSON.parse(raw.subarray(MAGIC.length + 4, headerEnd).toString('utf8')) as typeof header;
  } catch {
    throw new BundleError(`${file} has a damaged header`);
  }
  const { kdf } = header;
  if (header.version !== 1 || header.cipher !== 'aes-256-gcm' || kdf?.name !== 'scrypt' || typeof kdf.salt !== 'string' || typeof header.iv !== 'string' || typeof header.tag !== 'string' || typeof header.created !== 'string' || typeof header.source !== 'string') {
    throw new BundleError(`${file} was made by another version of this tool (version ${JSON.stringify(header.version)}, cipher ${JSON.stringify(header.cipher)})`);
  }
  const { N, r, p } = kdf;
  // the cost parameters come from the file: bound them before they can ask for gigabytes of memory
  if (typeof N !== 'number' || !Number.isInteger(N) || N < 2 ** 14 || N > 2 ** 20 || r !== 8 || p !== 1) throw new BundleError(`${file} asks for key derivation parameters this tool does not accept (N=${JSON.stringify(N)}, r=${JSON.stringify(r)}, p=${JSON.stringify(p)})`);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(passphrase, Buffer.from(kdf.salt, 'base64'), { N, r, p }), Buffer.from(header.iv, 'base64'));
    decipher.setAAD(Buffer.from(JSON.stringify({ ...header, tag: '' })));
    decipher.setAuthTag(Buffer.from(header.tag, 'base64'));
    plain = Buffer.concat([decipher.update(raw.subarray(headerEnd)), decipher.final()]);
  } catch {
    throw new BundleError(`${file} does not decrypt with this passphrase (or the file was changed after it was made)`);
  }
  const payload = JSON.parse(gunzipSync(plain).toString('utf8')) as Payload;
  for (const f of payload.files) {
    const top = f.path.split('/')[0] ?? '';
    if (posix.isAbsolute(f.path) || f.path.split('/').includes('..') || !(BUNDLED as readonly string[]).includes(top)) throw new BundleError(`${file} holds a path outside the state folder's ${BUNDLED.join(', ')}: ${f.path}`);
    if (sha256(Buffer.from(f.data, 'base64')) !== f.sha256) throw new BundleError(`${file}: ${f.path} does not match its checksum`);
  }
  return { header: { created: header.created, source: header.source }, files: payload.files };
}

export interface RestoreResult {
  files: BundledFile[];
  /** folders that were there before, moved aside (only with replace) */
  movedAside: string[];
  created: string;
  source: string;
}

/**
 * Restores a bundle into `stateDir`. A bundled folder that already exists there is refused, unless `replace`:
 * then it is moved aside to `<folder>.before-restore-<time>`, never deleted. The files are written into a
 * temporary folder first and each bundled folder renamed into place, so a failure leaves no half-restored folder.
 */
export function restoreBundle(file: string, stateDir: string, passphrase: string, { replace = false, now = new Date() } = {}): RestoreResult {
  const { header, files } = openBundle(file, passphrase);
  const tops = [...new Set(files.map((f) => f.path.split('/')[0] ?? ''))];
  const existing = tops.filter((d) => existsSync(join(stateDir, d)));
  if (existing.length > 0 && !replace) throw new BundleError(`${stateDir} already has ${existing.join(', ')}: restore --replace moves them aside first (nothing was written)`);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const staging = join(stateDir, `.restore-${process.pid}-${Date.now()}`);
  try {
    for (const f of files) {
      const target = join(staging, f.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      writeFileSync(target, Buffer.from(f.data, 'base64'), { mode: f.mode });
      chmodSync(target, f.mode);
    }
    const stamp = now.toISOString().replaceAll(':', '').replaceAll('-', '').replace(/\.\d+Z$/, 'Z');
    const movedAside: string[] = [];
    for (const d of existing) {
      const aside = join(stateDir, `${d}.before-restore-${stamp}`);
      renameSync(join(stateDir, d), aside);
      movedAside.push(aside);
    }
    for (const d of tops) renameSync(join(staging, d), join(stateDir, d));
    return { files: files.map(described), movedAside, created: header.created, source: header.source };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
