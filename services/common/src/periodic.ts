// A piece of housekeeping that runs every so often (the recovery sweep, the purge of old rows): one run at a time,
// a failed run logged and left to the next, run() to start one now (tests, or an operator), stop() to end it in
// order (no new run, then the one under way finishes).
import type { Logger } from 'pino';

export interface Periodic<T> {
  /** runs it now, or joins the run under way */
  run: () => Promise<T>;
  stop: () => Promise<void>;
}

export function periodic<T>(what: string, everyMs: number, work: () => Promise<T>, log: Logger): Periodic<T> {
  let running: Promise<T> | undefined;
  const run = (): Promise<T> => (running ??= work().finally(() => { running = undefined; }));
  const timer = setInterval(() => { run().catch((error: unknown) => { log.warn({ err: error }, `${what} failed; the next round retries`); }); }, everyMs);
  timer.unref();
  return {
    run,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
