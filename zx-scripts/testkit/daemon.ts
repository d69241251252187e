// A server process the tests own: started on loopback from a temporary folder, its output kept in a log file (shown
// when it fails to start), stopped with SIGTERM (then SIGKILL) when the test is done or the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** run as this user and group (PostgreSQL refuses to run as root) */
  uid?: number;
  gid?: number;
  /** the signal of a clean stop (PostgreSQL: SIGINT, its fast shutdown; SIGTERM would wait for every client) */
  stopSignal?: NodeJS.Signals;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class Daemon {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly spec: DaemonSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process (again, after stop or a kill) and waits until `ready` says yes, within `timeoutMs`. */
  async start(ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    const log = openSync(this.spec.logFile, 'a');
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: this.spec.env ?? process.env,
      stdio: ['ignore', log, log],
      ...(this.spec.uid === undefined ? {} : { uid: this.spec.uid, gid: this.spec.gid }),
    });
    closeSync(log);
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => { running.delete(child); resolve(code); });
      child.once('error', () => { running.delete(child); resolve(null); });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.spec.name} ended while starting (exit ${String(child.exitCode ?? child.signalCode)}):\n${this.tail()}`);
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`${this.spec.name} was not ready within ${String(timeoutMs / 1000)} s:\n${this.tail()}`);
      }
      await sleep(100);
    }
  }

  /** The clean stop signal (SIGTERM unless the spec says), then SIGKILL after `graceMs`; resolves when it is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(this.spec.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** A hard crash: SIGKILL, as a power cut would end it. */
  async kill(): Promise<void> {
    if (!this.child || !this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The last lines of its log (for error messages). */
  tail(lines = 40): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice), never the same one twice. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => { if (address && typeof address === 'object') resolve(address.port); else reject(new Error('no port')); });
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
