// The hosts' package source: apt-cacher-ng run by the controller on its management address. Hosts have no
// route to the internet; apt on each host uses this proxy (roles/common), and the proxy's cache outlives labs
// so a second lab installs packages without downloading them again.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { paths } from './state.ts';

export function aptProxyArgs(address: string, port: number): string[] {
  return [
    '-c', '/etc/apt-cacher-ng',
    'ForeGround=1',
    `Port=${port}`,
    `BindAddress=${address}`,
    `CacheDir=${paths.aptCache}`,
    `LogDir=${join(paths.aptProxy, 'log')}`,
    `SocketPath=${join(paths.aptProxy, 'socket')}`,
    `PidFile=${join(paths.aptProxy, 'pid')}`,
    // the report page and maintenance pages are of no use here; keep the proxy to proxying
    'ReportPage=',
  ];
}

export async function startAptProxy(address: string, port: number): Promise<number> {
  mkdirSync(join(paths.aptProxy, 'log'), { recursive: true });
  mkdirSync(paths.aptCache, { recursive: true });
  const out = openSync(join(paths.aptProxy, 'log', 'stdout.log'), 'a');
  const child = spawn('apt-cacher-ng', aptProxyArgs(address, port), { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 10_000;
  while (!(await accepts(address, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`apt proxy (apt-cacher-ng) did not start on ${address}:${port}; see ${join(paths.aptProxy, 'log')}`);
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('apt-cacher-ng did not start');
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
