// mail-sink: the lab's stand-in for the email provider. Reads its configuration once (fail fast, every problem named),
// starts, and stops cleanly on SIGTERM or SIGINT.
//   node dist/main.js /etc/oms/mail-sink.json     (or OMS_CONFIG=...)
import { runMain } from '@oms/service-common/main';
import { loadSinkConfig } from './config.ts';
import { startSink } from './sink.ts';

await runMain('mail-sink', loadSinkConfig, startSink);
