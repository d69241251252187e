// JSON logs (pino), one object a line, with the request id the gateway passes (X-Request-Id). Secrets never reach a
// log line: bearer tokens, cookies and passwords are redacted wherever they appear in a logged object.
import { pino, type Logger } from 'pino';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.paymentToken',
  'config.redis.password',
  'config.kafka.password',
];

export function createLogger(options: { service: string; level?: string; destination?: NodeJS.WritableStream }): Logger {
  return pino({
    level: options.level ?? 'info',
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  }, options.destination as pino.DestinationStream | undefined);
}
