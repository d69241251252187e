import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseUnavailable } from './unavailable.ts';

describe('isDatabaseUnavailable', () => {
  it('knows a server going away, refusing for now, a standby, and a lost connection', () => {
    for (const error of [
      { code: '57P01' }, { code: '57P03' }, { code: '25006' }, { code: '08006' }, { code: 'ECONNREFUSED' },
      new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'),
    ]) assert.ok(isDatabaseUnavailable(error), JSON.stringify(error));
  });
  it('knows a database that is there but cannot do the work now: statement timeout, lost race, out of connections', () => {
    for (const code of ['57014', '40001', '40P01', '55P03', '53300', '53100']) assert.ok(isDatabaseUnavailable({ code }), code);
  });
  it('leaves real errors alone', () => {
    for (const error of [{ code: '23505' }, { code: '42P01' }, { code: '22P02' }, new Error('syntax error'), undefined, 'text']) assert.ok(!isDatabaseUnavailable(error));
  });
});
