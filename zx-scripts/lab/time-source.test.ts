import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stopProcesses } from '../lib/proc.ts';
import { ntpQuery, startTimeServer, timeSourceConfig } from './time-source.ts';

// a real chronyd (the one the lab serves time with), on loopback
describe('the lab\'s time source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oms-time-source-'));
  const server = { address: '127.0.0.1', port: 11123, allow: '127.0.0.0/8', dir };
  let pid = 0;
  before(async () => { pid = await startTimeServer(server); });
  after(async () => {
    await stopProcesses([pid], 'SIGTERM', 5000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves this machine\'s clock over NTP, and never sets it', async () => {
    const config = readFileSync(join(dir, 'chrony.conf'), 'utf8');
    assert.equal(config, timeSourceConfig(server));
    assert.match(config, /^bindaddress 127\.0\.0\.1$/m);
    assert.match(config, /^allow 127\.0\.0\.0\/8$/m);
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '), / -x /, 'chronyd runs with -x');
    const answer = await ntpQuery(server.address, server.port);
    assert.ok(answer, 'an NTP answer');
    assert.equal(answer.stratum, 8);
    assert.ok(Math.abs(answer.offsetMs) < 50, `the offset from the machine's own clock is ${answer.offsetMs} ms`);
  });

  it('a query nobody answers is undefined, not an error', async () => {
    assert.equal(await ntpQuery('127.0.0.1', 11124, 300), undefined);
  });
});
