// The kit's Redis client, in one place: sentinelClient (the order service's cache, the drills' agent and the tests all
// make theirs with it), and keepConnected, which every one of them needs on top.
//
// ioredis 5.11 ends a client for good (status 'end': every command after fails at once with "Connection is closed.")
// when disconnect(true) lands while its Sentinel connector is still asking for the master: the failover detector
// hearing +switch-master, or a READONLY reply with reconnectOnError, can do that in the middle of a failover; the
// connector then abandons the connect (SentinelConnector: `if (!this.connecting) throw ...`) and Redis.connect sets
// 'end' instead of retrying. Found by the redis-master-kill drill under the users' load: two of its four writers never
// wrote again. keepConnected connects such a client again; only its own close() ends it.

import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';

export interface SentinelSettings {
  /** the Sentinels, host:port */
  sentinels: readonly string[];
  /** the master's name at the Sentinels */
  masterName: string;
  /** the ACL user, at Redis and at the Sentinels */
  user: string;
  password: string;
  /** the same TLS (trust bundle, client certificate) for Redis and the Sentinels */
  tls: ConnectionOptions;
}

/** A connection that stays silent this long after a command is destroyed: a paused master's TCP never closes. */
export const SOCKET_TIMEOUT_MS = 1000;

const endpoint = (address: string): { host: string; port: number } => {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
};

/**
 * The Sentinel-mode client the kit uses everywhere: the master asked from the Sentinels over TLS, its role checked on
 * every connection, a reconnect as soon as a Sentinel announces a failover (+switch-master), a connection that stops
 * answering destroyed (socketTimeout; the order service's own client once had none, the drills' had), and READONLY (a
 * demoted master) or NOREPLICAS (an isolated master) taken as "reconnect to the real master". `overrides` are a
 * use's own timeouts and retries (the service's cache never queues; a drill's writer retries once).
 */
export function sentinelClient(settings: SentinelSettings, overrides: RedisOptions = {}): Redis {
  return new Redis({
    sentinels: settings.sentinels.map(endpoint), name: settings.masterName, role: 'master',
    username: settings.user, password: settings.password, sentinelUsername: settings.user, sentinelPassword: settings.password,
    enableTLSForSentinelMode: true, tls: settings.tls, sentinelTLS: settings.tls, failoverDetector: true,
    // a TLS handshake on the app network takes milliseconds: a paused master's half-open handshake is given up fast
    connectTimeout: 500,
    socketTimeout: SOCKET_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(times * 100, 2000),
    sentinelRetryStrategy: (times: number) => Math.min(times * 100, 2000),
    reconnectOnError: (error: Error) => (/^(READONLY|NOREPLICAS)/.test(error.message) ? 2 : false),
    ...overrides,
  });
}

/** The part of an ioredis client keepConnected needs. */
export interface EndingClient {
  readonly status: string;
  on(event: 'end', listener: () => void): unknown;
  connect(): Promise<void>;
  disconnect(): void;
}

/** How long an ended client waits before it connects again (ioredis's own first retries are of this order). */
export const RECONNECT_AFTER_END_MS = 200;

/**
 * Connects `client` again whenever it ends without having been closed; returns the close to use instead of
 * `client.disconnect()`. `onReconnect` is told each time (for a log line or a metric).
 */
export function keepConnected(client: EndingClient, onReconnect: () => void = () => undefined): () => void {
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  client.on('end', () => {
    if (closing || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (closing || client.status !== 'end') return;
      onReconnect();
      client.connect().catch(() => undefined); // a failed connect ends it again, and this runs again
    }, RECONNECT_AFTER_END_MS);
  });
  return () => {
    closing = true;
    clearTimeout(timer);
    client.disconnect();
  };
}
