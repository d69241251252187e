// keepConnected against a real Redis and Sentinel (Debian's packages, TLS, ACL user, as in the lab): a Sentinel-mode
// client that ends without being closed (what ioredis does when a failover's disconnect lands mid-connect) is
// connected again and serves commands; one closed with keepConnected's close stays closed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startLocalStack, type LocalStack } from '@oms/zx-scripts/testkit/stack';
import { keepConnected, RECONNECT_AFTER_END_MS } from '../src/redis.ts';

let stack: LocalStack;

function client(): Redis {
  const redis = stack.redis!;
  const files = stack.pki.client('order-service');
  const tls = { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key), servername: 'localhost' };
  const c = new Redis({
    sentinels: [{ host: '127.0.0.1', port: redis.sentinelPort }], name: redis.masterName, role: 'master',
    username: redis.user.name, password: redis.user.password, sentinelUsername: redis.user.name, sentinelPassword: redis.user.password,
    enableTLSForSentinelMode: true, tls, sentinelTLS: tls, failoverDetector: true, lazyConnect: true,
    retryStrategy: () => 100, sentinelRetryStrategy: () => 100, maxRetriesPerRequest: 1,
  });
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

describe('keepConnected (real Redis and Sentinel)', { timeout: 120_000 }, () => {
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
});
