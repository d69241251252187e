// The service's Prometheus metrics (GET /metrics): emails sent by event type, retries scheduled, messages
// dead-lettered by reason, duplicates skipped, unexpected errors, leases lost, event-to-email latency, consumer lag per partition, whether
// the provider takes emails (the breaker closed), and Node's own.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  sent: Counter<'type'>;
  retried: Counter;
  deadLettered: Counter<'reason'>;
  duplicates: Counter;
  errors: Counter<'stage'>;
  leaseLost: Counter;
  purged: Counter;
  orphaned: Gauge;
  latency: Histogram;
  lag: Gauge<'topic' | 'partition'>;
  providerUp: Gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'oms_notification_service_' });
  const providerUp = new Gauge({ name: 'oms_notifications_provider_up', help: '1 while the email provider takes emails, 0 while the breaker is open (sending paused)', registers: [registry] });
  providerUp.set(1);
  return {
    registry,
    providerUp,
    sent: new Counter({ name: 'oms_notifications_sent_total', help: 'Emails the provider accepted, by event type', labelNames: ['type'], registers: [registry] }),
    retried: new Counter({ name: 'oms_notifications_retried_total', help: 'Sends that failed transiently and were scheduled again', registers: [registry] }),
    deadLettered: new Counter({ name: 'oms_notifications_dead_lettered_total', help: 'Messages parked in the dead-letter topic, by reason', labelNames: ['reason'], registers: [registry] }),
    duplicates: new Counter({ name: 'oms_notifications_duplicates_total', help: 'Messages whose event was already handled (redeliveries)', registers: [registry] }),
    errors: new Counter({ name: 'oms_notifications_errors_total', help: 'Unexpected failures handling a message, by stage (each message then retried or dead-lettered)', labelNames: ['stage'], registers: [registry] }),
    leaseLost: new Counter({ name: 'oms_notifications_lease_lost_total', help: 'Sends given up because their lease ran out first (the consumer paused or cut off mid-send)', registers: [registry] }),
    orphaned: new Gauge({ name: 'oms_notifications_orphaned_sends', help: 'Orphaned sends (no consumer took them over) the last sweep did not find at the provider: left to the operator', registers: [registry] }),
    purged: new Counter({ name: 'oms_notifications_inbox_purged_total', help: 'Inbox rows deleted past their retention', registers: [registry] }),
    latency: new Histogram({ name: 'oms_notification_latency_seconds', help: 'From the order event to the email accepted by the provider', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300], registers: [registry] }),
    lag: new Gauge({ name: 'oms_notification_consumer_lag', help: 'Messages not yet consumed, by topic and partition', labelNames: ['topic', 'partition'], registers: [registry] }),
  };
}
