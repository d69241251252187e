// What every ioredis Sentinel-mode client of the kit needs on top of its options.
//
// ioredis 5.11 ends a client for good (status 'end': every command after fails at once with "Connection is closed.")
// when disconnect(true) lands while its Sentinel connector is still asking for the master: the failover detector
// hearing +switch-master, or a READONLY reply with reconnectOnError, can do that in the middle of a failover; the
// connector then abandons the connect (SentinelConnector: `if (!this.connecting) throw ...`) and Redis.connect sets
// 'end' instead of retrying. Found by the redis-master-kill drill under the users' load: two of its four writers never
// wrote again. keepConnected connects such a client again; only its own close() ends it.

/** The part of an ioredis client this needs (services/common does not depend on ioredis itself). */
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
