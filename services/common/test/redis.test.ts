// The kit's Redis client against a real Redis and Sentinel (Debian's packages, TLS, ACL user, as in the lab):
// sentinelClient finds the master through the Sentinel and gives up a connection to a master that stops answering
// (SIGSTOP: its TCP stays open); keepConnected connects again a client that ended without being closed (what ioredis
// does when a failover's disconnect lands mid-connect), and leaves one closed with its close closed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis, RedisOptions } from 'ioredis';
import { startLocalStack, type LocalStack } from '@oms/zx-scripts/testkit/stack';
import { keepConnected, RECONNECT_AFTER_END_MS, sentinelClient, SOCKET_TIMEOUT_MS } from '../src/redis.ts';

let stack: LocalStack;

function client(overrides: RedisOptions = {}): Redis {
  const redis = stack.redis!;
  const files = stack.pki.client('order-service');
  const tls = { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key), servername: 'localhost' };
  const c = sentinelClient({ sentinels: [`127.0.0.1:${String(redis.sentinelPort)}`], masterName: redis.masterName, user: redis.user.name, password: redis.user.password, tls },
    { lazyConnect: true, retryStrategy: () => 100, sentinelRetryStrategy: () => 100, maxRetriesPerRequest: 1, ...overrides });
  c.on('error', () => undefined);
  return c;
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${String(ms)} ms: ${what}`);
    await sleep(20);
  }
}

describe('the kit\'s Redis client (real Redis and Sentinel)', { timeout: 120_000 }, () => {
  before(async () => { stack = await startLocalStack({ redis: { user: 'order-service', keyPrefix: 'oms:' } }); });
  after(async () => { await stack.stop(); });

  it('a client that ended without its close connects again and serves commands; one closed stays closed', async () => {
    const c = client();
    let reconnects = 0;
    const close = keepConnected(c, () => { reconnects++; });
    await c.connect();
    assert.equal(await c.set('oms:keep', 'one'), 'OK');

    c.disconnect(); // ends the client as the failover race does: not through keepConnected's close
    await until('the client ends', () => c.status === 'end');
    await until('the client is ready again', () => c.status === 'ready');
    assert.equal(reconnects, 1);
    assert.equal(await c.get('oms:keep'), 'one', 'the revived client serves commands');

    close();
    await until('the closed client ends', () => c.status === 'end');
    await sleep(RECONNECT_AFTER_END_MS * 3);
    assert.equal(c.status, 'end', 'a client closed on purpose is not connected again');
    assert.equal(reconnects, 1);
    await assert.rejects(c.get('oms:keep'), /Connection is closed/);
  });

  it('a master that stops answering (SIGSTOP) has its connection destroyed within the socket timeout, and serves again once it answers', async () => {
    const c = client({ commandTimeout: 250, maxRetriesPerRequest: 0 });
    await c.connect();
    assert.equal(await c.set('oms:pause', 'before'), 'OK');
    let closedAt = 0;
    c.on('close', () => { closedAt ||= Date.now(); });
    const pid = stack.redis!.redis.pid;
    assert.ok(pid, 'the Redis daemon has a pid');
    process.kill(pid, 'SIGSTOP');
    try {
      const sent = Date.now();
      await assert.rejects(c.get('oms:pause'), /timed out/i);
      await until('the connection to the paused master is destroyed', () => closedAt > 0, SOCKET_TIMEOUT_MS * 3);
      assert.ok(closedAt - sent <= SOCKET_TIMEOUT_MS + 1000, `closed ${String(closedAt - sent)} ms after the command`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until('the client is ready again', () => c.status === 'ready', 10_000);
    assert.equal(await c.get('oms:pause'), 'before');
    c.disconnect();
  });
});
