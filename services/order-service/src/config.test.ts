import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from './config.ts';

const tls = { ca: '/etc/oms/pki/ca-bundle.pem', cert: '/etc/oms/pki/host.crt', key: '/etc/oms/pki/host.key' };
export const sample = {
  http: { port: 8443, tls, allowedClientNames: ['gateway-to-app'] },
  postgres: { host: '127.0.0.1', port: 5000, database: 'orders', user: 'order_service', tls },
  redis: { sentinels: ['10.90.30.21:26379'], masterName: 'oms-cache', user: 'order-service', password: 'x'.repeat(32), tls },
  kafka: { brokers: ['10.90.40.21:9094'], user: 'order-service', password: 'y'.repeat(32), tls, topic: 'oms.order-events' },
  auth: { publicKey: '/etc/oms/order-service/jwt.pub', issuer: 'oms-lab-idp', audience: 'oms-api' },
};

describe('configuration', () => {
  it('a complete configuration parses, with defaults filled in', () => {
    const config = parseConfig(sample);
    assert.equal(config.http.address, '0.0.0.0');
    assert.equal(config.postgres.poolSize, 16);
    assert.equal(config.payments.timeoutMs, 3000);
  });

  it('names every problem by its path', () => {
    const bad = { ...sample, ops: { address: '10.90.30.11', port: 9101 }, postgres: { ...sample.postgres, port: 70000 }, redis: { ...sample.redis, password: 'short', sentinels: ['nohost'] }, extra: 1 };
    assert.throws(() => parseConfig(bad, 'order-service.json'), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^order-service\.json is invalid:/);
      assert.match(e.message, /postgres\.port: /);
      assert.match(e.message, /redis\.password: must be at least 16 characters/);
      assert.match(e.message, /redis\.sentinels\.0: must be host:port/);
      assert.match(e.message, /\(top level\): .*extra/);
      assert.match(e.message, /ops\.address: must be a loopback address/);
      return true;
    });
  });

  it('the identity provider\'s keys: a key set or one public key, not both or neither', () => {
    const auth = { issuer: sample.auth.issuer, audience: sample.auth.audience };
    assert.equal(parseConfig({ ...sample, auth: { ...auth, keySet: '/etc/oms/order-service/jwt-key-set.json' } }).auth.keySet, '/etc/oms/order-service/jwt-key-set.json');
    for (const keys of [{}, { keySet: '/a.json', publicKey: '/b.pem' }]) {
      assert.throws(() => parseConfig({ ...sample, auth: { ...auth, ...keys } }), /auth: give keySet \(a JWKS file\) or publicKey \(a PEM file\), not both or neither/);
    }
  });

  it('a missing or non-JSON file is a clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-config-'));
    assert.throws(() => loadConfig(join(dir, 'missing.json')), /cannot read the configuration .*missing\.json/);
    writeFileSync(join(dir, 'bad.json'), '{ not json');
    assert.throws(() => loadConfig(join(dir, 'bad.json')), /bad\.json is not JSON/);
    writeFileSync(join(dir, 'good.json'), JSON.stringify(sample));
    assert.equal(loadConfig(join(dir, 'good.json')).kafka.topic, 'oms.order-events');
  });

  it('the service refuses to start on a bad configuration or command line: exit 2, the problems named, nothing opened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oms-config-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...sample, postgres: { ...sample.postgres, port: 'five' } }));
    const main = new URL('./main.ts', import.meta.url).pathname;
    const bad = spawnSync(process.execPath, ['--import', 'tsx', main, join(dir, 'bad.json')], { encoding: 'utf8' });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /bad\.json is invalid:\n {2}postgres\.port: /);
    const none = spawnSync(process.execPath, ['--import', 'tsx', main], { encoding: 'utf8', env: { ...process.env, OMS_CONFIG: '' } });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^usage: order-service CONFIG\.json/);
  });
});
