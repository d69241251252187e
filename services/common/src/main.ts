// A service process's life: reads its configuration once (fail fast: exit 2 with every problem named), starts, and
// stops in order on SIGTERM or SIGINT (systemd's stop, Ctrl-C). Each service's main.ts is one call of runMain.
//   node dist/main.js /etc/oms/NAME.json     (or OMS_CONFIG=...)
import type { Logger } from 'pino';
import { ConfigError } from './config.ts';
import { createLogger } from './logger.ts';

export async function runMain<C>(name: string, load: (path: string) => C, start: (config: C, log: Logger) => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const log = createLogger({ service: name, level: process.env.LOG_LEVEL ?? 'info' });
  const path = process.argv[2] ?? process.env.OMS_CONFIG;
  if (!path) {
    process.stderr.write(`usage: ${name} CONFIG.json (or OMS_CONFIG=CONFIG.json)\n`);
    process.exit(2);
  }
  let config: C;
  try {
    config = load(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n`);
    process.exit(2);
  }
  try {
    const running = await start(config, log);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        running.stop().then(() => process.exit(0), (error: unknown) => { log.error({ err: error }, 'shutdown failed'); process.exit(1); });
      });
    }
  } catch (error) {
    log.fatal({ err: error }, `${name} could not start`);
    process.exit(1);
  }
}
