// Borrowing a connection from the pool. A connection the server drops while it is checked out (a failover, a restart)
// emits 'error' on the client, outside any query: unheard, that would end the process. Here it is heard for as long
// as the client is borrowed, and a client whose connection broke goes back destroyed, not to the pool.
import type { Pool, PoolClient } from 'pg';
import { isDatabaseUnavailable } from './unavailable.ts';

export async function withClient<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => { broken = error; };
  client.on('error', onError);
  try {
    return await work(client);
  } catch (error) {
    if (isDatabaseUnavailable(error) && error instanceof Error) broken ??= error;
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
