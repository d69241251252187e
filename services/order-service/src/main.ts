// order-service: reads its configuration once (fail fast, every problem named), starts, and shuts down in order on
// SIGTERM or SIGINT (systemd's stop, Ctrl-C).
//   node dist/main.js /etc/oms/order-service.json     (or OMS_CONFIG=...)
import { runMain } from '@oms/service-common/main';
import { loadConfig } from './config.ts';
import { startService } from './service.ts';

await runMain('order-service', loadConfig, (config, log) => startService(config, log));
