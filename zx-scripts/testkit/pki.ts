// A throwaway PKI for servers on loopback, made by the kit's own certs library (the same CA and leaf profiles the
// lab uses): a server certificate for localhost / 127.0.0.1 (with a PKCS12 keystore for Kafka) and the client
// certificates of every service identity.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, issue, pkiPaths, SERVICE_IDENTITIES, type LeafSpec } from '@oms/certs/pki';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface LocalPki {
  dir: string;
  /** the trust bundle */
  ca: string;
  server: TlsFiles & { keystore: string; keystorePassword: string };
  /** client certificate of a service identity (CN = the identity) */
  client(identity: (typeof SERVICE_IDENTITIES)[number]): TlsFiles;
}

export const SERVER_NAME = 'localhost';

export async function localPki(dir: string): Promise<LocalPki> {
  const server: LeafSpec = { kind: 'server', name: SERVER_NAME, dnsNames: [SERVER_NAME], ips: ['127.0.0.1'], pkcs12: true };
  const clients = SERVICE_IDENTITIES.map((name): LeafSpec => ({ kind: 'client', name, dnsNames: [], ips: [], pkcs12: false }));
  const options = { leafDays: 30, caDays: 60, renewBeforeDays: 1, keyBits: 2048 };
  await init(dir, 'local-tests', options);
  await issue(dir, [server, ...clients], options);
  const p = pkiPaths(dir);
  return {
    dir,
    ca: p.bundle,
    server: {
      ca: p.bundle,
      cert: p.leafCert(server),
      key: p.leafKey(server),
      keystore: join(p.leafDir(server), 'keystore.p12'),
      keystorePassword: readFileSync(join(p.leafDir(server), 'keystore.pass'), 'utf8').trim(),
    },
    client: (identity) => ({ ca: p.bundle, cert: p.leafCert({ kind: 'client', name: identity }), key: p.leafKey({ kind: 'client', name: identity }) }),
  };
}
