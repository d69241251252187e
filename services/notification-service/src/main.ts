// notification-service: reads its configuration once (fail fast, every problem named), starts, and on SIGTERM or
// SIGINT finishes the message in hand and stops in order.
//   node dist/main.js /etc/oms/notification-service.json     (or OMS_CONFIG=...)
import { runMain } from '@oms/service-common/main';
import { loadConfig } from './config.ts';
import { startNotificationService } from './service.ts';

await runMain('notification-service', loadConfig, (config, log) => startNotificationService(config, log));
