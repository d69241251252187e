// order-service: reads its configuration once (fail fast, every problem named), starts, and shuts down in order on
// SIGTERM or SIGINT (systemd's stop, Ctrl-C).
//   node dist/main.js /etc/oms/order-service.json     (or OMS_CONFIG=...)
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from '@oms/service-common/logger';
import { startService } from './service.ts';

const log = createLogger({ service: 'order-service', level: process.env.LOG_LEVEL ?? 'info' });
const path = process.argv[2] ?? process.env.OMS_CONFIG;
if (!path) {
  process.stderr.write('usage: order-service CONFIG.json (or OMS_CONFIG=CONFIG.json)\n');
  process.exit(2);
}
let config;
try {
  config = loadConfig(path);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`order-service: ${error.message}\n`);
  process.exit(2);
}
try {
  const service = await startService(config, log);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      service.stop().then(() => process.exit(0), (error: unknown) => { log.error({ err: error }, 'shutdown failed'); process.exit(1); });
    });
  }
} catch (error) {
  log.fatal({ err: error }, 'order-service could not start');
  process.exit(1);
}
