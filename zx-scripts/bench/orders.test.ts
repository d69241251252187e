import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layoutCpus } from './orders.ts';

describe('bench -- orders CPU layouts', () => {
  it('shares every CPU, or gives PostgreSQL the upper half', () => {
    assert.deepEqual(layoutCpus('shared', 2), { postgres: '0-1', others: '0-1' });
    assert.deepEqual(layoutCpus('zones', 2), { postgres: '1', others: '0' });
    assert.deepEqual(layoutCpus('zones', 3), { postgres: '1-2', others: '0' });
    assert.deepEqual(layoutCpus('zones', 8), { postgres: '4-7', others: '0-3' });
    assert.deepEqual(layoutCpus('shared', 1), { postgres: '0', others: '0' });
  });

  it('refuses the zones layout on one CPU', () => {
    assert.throws(() => layoutCpus('zones', 1), /at least 2 CPUs/);
  });
});
