// Starts the hosts' package source (package-proxy.ts) on the controller's management address.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { paths } from './state.ts';

export async function startAptProxy(address: string, port: number, upstreams: string[]): Promise<number> {
  mkdirSync(paths.aptProxy, { recursive: true });
  mkdirSync(paths.aptCache, { recursive: true });
  const out = openSync(join(paths.aptProxy, 'access.log'), 'a');
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx',
      join(import.meta.dirname, 'package-proxy.ts'),
      '--listen', `${address}:${port}`,
      '--cache', paths.aptCache,
      '--allow', upstreams.join(','),
      '--pidfile', join(paths.aptProxy, 'pid'),
    ],
    { detached: true, stdio: ['ignore', out, out], cwd: import.meta.dirname },
  );
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 15_000;
  while (!(await accepts(address, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`package proxy did not start on ${address}:${port}; see ${join(paths.aptProxy, 'access.log')}`);
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('package proxy did not start');
  return child.pid;
}

export function accepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => { done(false); });
    socket.once('connect', () => { done(true); });
    socket.once('error', () => { done(false); });
  });
}
