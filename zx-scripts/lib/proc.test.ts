import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cpuByGroup, cpuMsOf, descendantsOf } from './proc.ts';

// a child that burns 300 ms of CPU (measured as CPU, not wall time), says so, then waits to be killed
const BURN = "while ((process.cpuUsage().user + process.cpuUsage().system) < 300_000); console.log('burnt'); setTimeout(() => {}, 60_000);";

describe('CPU accounting from /proc', () => {
  it('counts a live descendant by its command name, and only the groups asked for', async () => {
    const child = spawn(process.execPath, ['-e', BURN], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(child.stdout, 'data');
      assert.ok(descendantsOf(process.pid).some((d) => d.pid === child.pid && d.comm === 'node'));
      const byGroup = cpuByGroup(process.pid, (comm) => (comm === 'node' ? 'burner' : undefined));
      assert.ok((byGroup.get('burner') ?? 0) >= 250, `burner: ${String(byGroup.get('burner'))} ms`);
      assert.deepEqual([...byGroup.keys()], ['burner']);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('still counts a descendant that ended, in the parent that reaped it', async () => {
    // sh runs the burner to its end (and reaps it), then waits: the burner's CPU is now in sh's children figure
    const sh = spawn('sh', ['-c', `${process.execPath} -e "${BURN.replace('setTimeout(() => {}, 60_000);', '')}"; echo reaped; sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      while (!out.includes('reaped')) out += String(await once(sh.stdout, 'data'));
      assert.ok(!descendantsOf(process.pid).some((d) => d.comm === 'node'), 'the burner has ended');
      assert.ok(cpuMsOf(sh.pid ?? 0, true) >= 250);
      assert.ok(cpuMsOf(sh.pid ?? 0, false) < 250);
      assert.ok((cpuByGroup(process.pid, (comm) => (comm === 'sh' ? 'shell' : undefined)).get('shell') ?? 0) >= 250);
    } finally {
      sh.kill('SIGKILL');
    }
  });

  it('reads 0 for a process that is gone', () => {
    assert.equal(cpuMsOf(2 ** 22 + 1, true), 0);
  });
});
