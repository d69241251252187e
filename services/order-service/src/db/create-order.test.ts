import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareIds, rolledBack } from './create-order.ts';

describe('the order statement\'s outcome', () => {
  it('is settled (rolled back) only when the server refused the statement', () => {
    for (const code of ['23505', '23514', '40001', '40P01', '22P02', '42501', 'P0001', 'OMS01', 'OMS02']) {
      assert.equal(rolledBack(Object.assign(new Error('refused'), { code })), true, code);
    }
  });

  it('is open when no answer came, or the answer may follow a local commit', () => {
    // 57P01: terminated while waiting for the synchronous standby (committed locally); 57014: cancelled there;
    // 08006: connection failure; XX000: internal; no code at all: the connection ended or the client timed out
    for (const error of [Object.assign(new Error('x'), { code: '57P01' }), Object.assign(new Error('x'), { code: '57014' }),
      Object.assign(new Error('x'), { code: '08006' }), Object.assign(new Error('x'), { code: 'XX000' }),
      new Error('Connection terminated unexpectedly'), Object.assign(new Error('x'), { code: 'ECONNRESET' }), null, 'text']) {
      assert.equal(rolledBack(error), false, String((error as { code?: string } | null)?.code ?? error));
    }
  });
});

describe('the lock order of stock changes', () => {
  it('is the byte order of product ids, as COLLATE "C" sorts them', () => {
    assert.deepEqual(['B-1', 'A1', 'A-2', 'A10', 'A2', 'Z', '9X'].sort(compareIds), ['9X', 'A-2', 'A1', 'A10', 'A2', 'B-1', 'Z']);
  });
});
