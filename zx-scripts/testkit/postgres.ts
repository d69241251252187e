// PostgreSQL 15 (Debian's package) on loopback for the services' tests, set up as roles/patroni sets up the cluster:
// TLS 1.3 only, a client certificate for every network connection (CN mapped to the service's role), the service
// databases of `patroni_service_databases` with their NOLOGIN owner and least-privilege login role, and the
// services' migrations applied by the same runner the role uses (oms-migrate). The superuser is reached only over
// a Unix socket in a private folder.
import { execFile } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parse } from 'yaml';
import { Daemon, freePort } from './daemon.ts';
import type { LocalPki } from './pki.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
const ROOT = new URL('../../', import.meta.url).pathname;

export interface ServiceDatabase {
  name: string;
  owner: string;
  role: string;
  identity: string;
  migrations: string;
}

/** The service databases roles/patroni creates (its defaults), so the tests get the same names and privileges. */
export function serviceDatabases(): ServiceDatabase[] {
  const defaults = parse(readFileSync(join(ROOT, 'roles/patroni/defaults/main.yml'), 'utf8')) as { patroni_service_databases: ServiceDatabase[] };
  return defaults.patroni_service_databases;
}

export interface LocalPostgres {
  host: string;
  port: number;
  /** the folder of the superuser's Unix socket */
  socketDir: string;
  daemon: Daemon;
  /** a superuser connection over the socket (for test set-up and checks, never for the service itself) */
  admin(database: string): pg.Client;
  /** waits until the server takes connections again (after daemon.start) */
  ready(): Promise<boolean>;
  stop(): Promise<void>;
}

/** The user PostgreSQL runs as: `postgres` (created by Debian's package) when the tests run as root. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: group } = await run('id', ['-g', 'postgres']);
  return { uid: Number(stdout.trim()), gid: Number(group.trim()) };
}

export async function startPostgres(dir: string, pki: LocalPki, options: { databases?: string[] } = {}): Promise<LocalPostgres> {
  const user = await serverUser();
  const data = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const own = (path: string): void => { if (user) chownSync(path, user.uid, user.gid); };
  own(dir);
  own(socketDir);
  own(data);
  const asServer = user ? { uid: user.uid, gid: user.gid } : {};
  await run(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=reject', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8', '--data-checksums'], { ...asServer, cwd: dir });

  const all = serviceDatabases().filter((d) => options.databases === undefined || options.databases.includes(d.name));
  for (const [name, from] of [['server.crt', pki.server.cert], ['server.key', pki.server.key], ['ca.pem', pki.ca]] as const) {
    const to = join(data, name);
    copyFileSync(from, to);
    chmodSync(to, 0o600);
    own(to);
  }
  writeFileSync(join(data, 'pg_hba.conf'), [
    'local all postgres trust', // the socket folder is private (0700)
    'local all all reject',
    ...all.map((d) => `hostssl ${d.name} ${d.role} 127.0.0.1/32 cert map=services`),
    'host all all 0.0.0.0/0 reject',
    '',
  ].join('\n'));
  writeFileSync(join(data, 'pg_ident.conf'), `${all.map((d) => `services ${d.identity} ${d.role}`).join('\n')}\n`);

  const port = await freePort();
  const daemon = new Daemon({
    name: 'postgresql',
    command: join(BIN, 'postgres'),
    args: ['-D', data, '-c', 'listen_addresses=127.0.0.1', '-c', `port=${String(port)}`, '-c', `unix_socket_directories=${socketDir}`,
      '-c', 'ssl=on', '-c', 'ssl_cert_file=server.crt', '-c', 'ssl_key_file=server.key', '-c', 'ssl_ca_file=ca.pem',
      '-c', 'ssl_min_protocol_version=TLSv1.3', '-c', 'max_connections=200', '-c', 'shared_buffers=256MB'],
    logFile: join(dir, 'postgresql.log'),
    stopSignal: 'SIGINT',
    ...asServer,
  });
  const admin = (database: string): pg.Client => new pg.Client({ host: socketDir, port, user: 'postgres', database });
  const ready = async (): Promise<boolean> => {
    const client = admin('postgres');
    try {
      await client.connect();
      return true;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await daemon.start(ready);

  // what roles/patroni's database tasks do, in SQL
  const client = admin('postgres');
  await client.connect();
  try {
    for (const d of all) {
      await client.query(`CREATE ROLE ${d.owner} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT`);
      await client.query(`CREATE ROLE ${d.role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT`);
      await client.query(`CREATE DATABASE ${d.name} OWNER ${d.owner} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0`);
      await client.query(`REVOKE ALL ON DATABASE ${d.name} FROM PUBLIC`);
      await client.query(`GRANT CONNECT ON DATABASE ${d.name} TO ${d.role}`);
    }
  } finally {
    await client.end();
  }
  for (const d of all) await migrate(socketDir, port, d);

  return { host: '127.0.0.1', port, socketDir, daemon, admin, ready, stop: () => daemon.stop() };
}

/** Applies a service's pending migrations with roles/patroni's runner; returns the files it applied. */
export async function migrate(socketDir: string, port: number, d: ServiceDatabase): Promise<string[]> {
  try {
    const { stdout } = await run('/usr/bin/python3', [join(ROOT, 'roles/patroni/files/oms-migrate'), '--database', d.name, '--owner', d.owner,
      '--host', socketDir, '--port', String(port), join(ROOT, d.migrations)]);
    return (JSON.parse(stdout) as { applied: string[] }).applied;
  } catch (error) {
    throw new Error(`migrations of ${d.name} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}
