import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from './logger.ts';
import { periodic } from './periodic.ts';

const log = createLogger({ service: 'test', level: 'silent' });

describe('periodic housekeeping', () => {
  it('runs on its own, one run at a time: run() joins the run under way; stop() waits for it and ends the rounds', async () => {
    let runs = 0;
    const count = (): number => runs;
    let release: () => void = () => undefined;
    const job = periodic('test job', 20, async () => { runs += 1; await new Promise<void>((resolve) => { release = resolve; }); return runs; }, log);
    await sleep(60);
    assert.equal(runs, 1, 'a second round does not start while the first is under way');
    const joined = job.run();
    release();
    assert.equal(await joined, 1, 'run() joined the run under way');
    await sleep(60);
    assert.ok(count() >= 2, 'the rounds go on');
    const stopping = job.stop();
    release();
    await stopping;
    const after = count();
    await sleep(60);
    assert.equal(count(), after, 'no round after stop()');
  });

  it('a failed run is logged and left to the next round', async () => {
    let calls = 0;
    const job = periodic('failing job', 10, () => { calls += 1; return Promise.reject(new Error('down')); }, log);
    await sleep(50);
    await job.stop();
    assert.ok(calls >= 2, `it kept trying (${String(calls)})`);
  });
});
