import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutCpus, pgbenchLatencies } from './orders.ts';

describe('bench -- orders CPU layouts', () => {
  it('shares every CPU, or gives the data zone (PostgreSQL, Kafka) the upper half', () => {
    assert.deepEqual(layoutCpus('shared', 2), { postgres: '0-1', kafka: '0-1', others: '0-1' });
    assert.deepEqual(layoutCpus('zones', 2), { postgres: '1', kafka: '1', others: '0' });
    assert.deepEqual(layoutCpus('zones', 3), { postgres: '1-2', kafka: '1-2', others: '0' });
    assert.deepEqual(layoutCpus('zones', 8), { postgres: '4-7', kafka: '4-7', others: '0-3' });
    assert.deepEqual(layoutCpus('shared', 1), { postgres: '0', kafka: '0', others: '0' });
  });

  it('refuses the zones layout on one CPU', () => {
    assert.throws(() => layoutCpus('zones', 1), /at least 2 CPUs/);
  });
});

describe('bench -- orders pgbench log', () => {
  const folder = (): string => mkdtempSync(join(tmpdir(), 'pgbench-log-test-'));

  it('reads every file of one run (one per process and thread) and matches pgbench count', () => {
    const dir = folder();
    writeFileSync(join(dir, 'log.4242'), '0 0 1500 0 1764626400 1\n1 0 2500 0 1764626400 2\n');
    writeFileSync(join(dir, 'log.4242.1'), '2 0 3000 0 1764626400 3\n3 0 failed 0 1764626400 4\n');
    assert.deepEqual(pgbenchLatencies(dir, 3).sort((a, b) => a - b), [1.5, 2.5, 3]);
  });

  it('refuses a log that does not hold what pgbench counted (another run in the folder)', () => {
    const dir = folder();
    writeFileSync(join(dir, 'log.1'), '0 0 1000 0 1764626400 1\n');
    writeFileSync(join(dir, 'log.2'), '0 0 1000 0 1764626401 1\n'); // an earlier run's file
    mkdirSync(join(dir, 'other'));
    assert.throws(() => pgbenchLatencies(dir, 1), /processed 1 transactions but its log .* has 2/);
  });
});
