// mail-sink: the lab's stand-in for the email provider. Reads its configuration once (fail fast, every problem named),
// starts, and stops cleanly on SIGTERM or SIGINT.
//   node dist/main.js /etc/oms/mail-sink.json     (or OMS_CONFIG=...)
import { ConfigError } from '@oms/service-common/config';
import { createLogger } from '@oms/service-common/logger';
import { loadSinkConfig } from './config.ts';
import { startSink } from './sink.ts';

const log = createLogger({ service: 'mail-sink', level: process.env.LOG_LEVEL ?? 'info' });
const path = process.argv[2] ?? process.env.OMS_CONFIG;
if (!path) {
  process.stderr.write('usage: mail-sink CONFIG.json (or OMS_CONFIG=CONFIG.json)\n');
  process.exit(2);
}
let config;
try {
  config = loadSinkConfig(path);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`mail-sink: ${error.message}\n`);
  process.exit(2);
}
try {
  const sink = await startSink(config, log);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      sink.stop().then(() => process.exit(0), (error: unknown) => { log.error({ err: error }, 'shutdown failed'); process.exit(1); });
    });
  }
} catch (error) {
  log.fatal({ err: error }, 'mail-sink could not start');
  process.exit(1);
}
