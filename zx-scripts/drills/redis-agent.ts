// Runs inside an app host's network namespace (`ip netns exec app1 ...`, see agent.ts), where the services run: an
// ioredis client in Sentinel mode over TLS with a client certificate and an ACL user, as order-service connects.
// One JSON document (or, for `load`, one JSON line per event) on stdout.
//
//   load --run ID [--writers N] [--interval-ms MS]
//       N writers, each its own connection: SET a key with a client-made id, WAIT until one replica has it, GET it
//       back. A write is acknowledged when the replica confirmed it (Redis replicates asynchronously: a SET the
//       master answered but no replica had can vanish with the master, so it counts as unknown, not acknowledged).
//       One line per write ({"kind":"write",...}); on SIGTERM the writers stop and a last line lists the ids whose
//       keys the current master holds ({"kind":"present","ids":[...]}).
//   probe [--user U] [--password P] [--no-cert] [--host ADDRESS --port PORT] --command "SET drill:x 1"
//       one command with those credentials, through the Sentinels or straight to ADDRESS:PORT:
//       {"ok":true,"reply":...} or {"ok":false,"error":"..."}
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { keepConnected, sentinelClient as kitSentinelClient } from '@oms/service-common/redis';
import { emit, emitLast, message, required, runAgentCommands } from './agent-io.ts';

export interface RedisAgentConfig {
  /** lab PKI folder on the controller (trust-bundle.pem, clients/<identity>/client.{crt,key}) */
  pki: string;
  /** the Sentinels, address:port */
  sentinels: string[];
  /** the master's name at the Sentinels */
  masterName: string;
  /** the client certificate presented (a service identity of the app hosts) */
  certIdentity: string;
  /** the ACL user the drills write as (keys drill:*) */
  user: string;
  password: string;
}

const config = JSON.parse(process.env['OMS_AGENT_CONFIG'] ?? '{}') as RedisAgentConfig;

// ioredis handles only the first error of a connection's socket (stream.once('error')). A server that refuses a TLS
// handshake may send an alert and then reset the connection: the reset is a second error, thrown from the socket,
// and would end the agent (CI saw a probe die of it). The connection is dead either way and ioredis's close handler
// takes it from there, so a socket error after the first is noted (a probe reports it), never fatal.
let straySocketError: Error | null = null;
process.on('uncaughtException', (error: NodeJS.ErrnoException) => {
  if (typeof error.code === 'string' && /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|ERR_SSL_)/.test(error.code)) {
    straySocketError ??= error;
    return;
  }
  process.stderr.write(`redis-agent: ${error.stack ?? String(error)}\n`);
  process.exit(1);
});
const COMMAND_TIMEOUT_MS = 2000;
const WAIT_TIMEOUT_MS = 500;
/** drill keys expire: the cache tier keeps no drill data for long */
const KEY_TTL_S = 3600;

interface Credentials {
  user: string;
  password: string;
  cert: boolean;
}

function tls(cert: boolean): ConnectionOptions {
  return {
    ca: readFileSync(`${config.pki}/trust-bundle.pem`, 'utf8'),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ...(cert ? {
      cert: readFileSync(`${config.pki}/clients/${config.certIdentity}/client.crt`, 'utf8'),
      key: readFileSync(`${config.pki}/clients/${config.certIdentity}/client.key`, 'utf8'),
    } : {}),
  };
}

/** The kit's Sentinel-mode client (services/common), as the order service makes it, with a drill writer's timeouts. */
function sentinelClient(creds: Credentials, extra: RedisOptions = {}): Redis {
  return kitSentinelClient({ sentinels: config.sentinels, masterName: config.masterName, user: creds.user, password: creds.password, tls: tls(creds.cert) }, {
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    // a drill measures the failover, not the client's back-off: it asks again sooner than the service does
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1000),
    retryStrategy: (times: number) => Math.min(times * 50, 250),
    lazyConnect: true,
    ...extra,
  });
}

const key = (runId: string, id: string) => `drill:${runId}:${id}`;

async function load(runId: string, writers: number, intervalMs: number): Promise<void> {
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });
  process.on('SIGINT', () => { stopping = true; });
  const creds: Credentials = { user: config.user, password: config.password, cert: true };
  const acknowledged: string[] = [];

  const writer = async (): Promise<void> => {
    const client = sentinelClient(creds);
    client.on('error', () => undefined); // each command's own error is what counts
    const close = keepConnected(client);
    await client.connect().catch(() => undefined);
    while (!stopping) {
      const id = randomUUID();
      const start = Date.now();
      let written = false;
      try {
        await client.set(key(runId, id), id, 'EX', KEY_TTL_S);
        written = true;
        const replicas = await client.wait(1, WAIT_TIMEOUT_MS);
        if (replicas < 1) throw new Error(`WAIT: no replica confirmed the write within ${WAIT_TIMEOUT_MS} ms`);
        const read = await client.get(key(runId, id));
        if (read !== id) throw new Error(`read back ${String(read)} instead of the value written`);
        acknowledged.push(id);
        emit({ kind: 'write', id, start, end: Date.now(), outcome: 'ok' });
      } catch (error) {
        // a SET that left but got no answer, or that no replica confirmed, may or may not survive
        emit({ kind: 'write', id, start, end: Date.now(), outcome: written || /timed? ?out/i.test(message(error)) ? 'unknown' : 'failed', error: message(error) });
      }
      await sleep(intervalMs);
    }
    close();
  };
  await Promise.all(Array.from({ length: writers }, () => writer()));

  // what the current master holds of this run's keys (the caller stops the load once the topology is whole)
  const reader = sentinelClient(creds, { commandTimeout: 5000, maxRetriesPerRequest: 5 });
  reader.on('error', () => undefined);
  await reader.connect();
  const present: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 500) {
    const ids = acknowledged.slice(i, i + 500);
    const values = await reader.mget(ids.map((id) => key(runId, id)));
    values.forEach((value, n) => { if (value !== null && value === ids[n]) present.push(value); });
  }
  reader.disconnect();
  await emitLast({ kind: 'present', ids: present });
}

async function probe(args: Map<string, string | true>): Promise<void> {
  const command = String(args.get('command') ?? 'PING').split(' ').filter(Boolean);
  const creds: Credentials = {
    user: String(args.get('user') ?? config.user),
    password: String(args.get('password') ?? config.password),
    cert: !args.has('no-cert'),
  };
  const host = args.get('host');
  const once = { retryStrategy: () => null, sentinelRetryStrategy: () => null, maxRetriesPerRequest: 0, commandTimeout: 5000, failoverDetector: false };
  const client = typeof host === 'string'
    ? new Redis({ host, port: Number(args.get('port') ?? 6379), username: creds.user, password: creds.password, tls: tls(creds.cert), connectTimeout: 3000, lazyConnect: true, enableReadyCheck: false, ...once })
    : sentinelClient(creds, once);
  let lastError: unknown = null;
  client.on('error', (error: unknown) => { lastError = error; });
  try {
    await client.connect();
    const [name = 'PING', ...rest] = command;
    const reply: unknown = await client.call(name, ...rest);
    await emitLast({ ok: true, reply });
  } catch (error) {
    const also = lastError ?? straySocketError;
    const detail = also !== null && message(also) !== message(error) ? `${message(error)} (${message(also)})` : message(error);
    await emitLast({ ok: false, error: detail });
  } finally {
    client.disconnect();
  }
}

runAgentCommands('redis-agent', 'redis-agent.ts load --run ID [--writers N] [--interval-ms MS] | probe [...] --command "..."', {
  load: (args) => load(required(args, 'run'), Number(args.get('writers') ?? 4), Number(args.get('interval-ms') ?? 20)),
  probe,
});
