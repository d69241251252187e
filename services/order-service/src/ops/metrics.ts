// The service's Prometheus metrics (GET /metrics): request durations by route and status, orders by outcome, the
// outbox backlog and the age of its oldest event, and Node's own. One registry per service instance, passed explicitly (no global default registry).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  orders: Counter<'outcome'>;
  purged: Counter<'table'>;
  outboxBacklog: Gauge;
  outboxOldest: Gauge;
  outboxPublished: Counter;
  cache: Counter<'result'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'oms_order_service_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'oms_http_request_duration_seconds',
      help: 'HTTP requests by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    orders: new Counter({
      name: 'oms_orders_total',
      help: 'Order creation requests by outcome (created, replayed, resumed, confirmed, payment_failed, out_of_stock, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    outboxBacklog: new Gauge({ name: 'oms_outbox_backlog', help: 'Outbox events not yet published to Kafka', registers: [registry] }),
    outboxOldest: new Gauge({ name: 'oms_outbox_oldest_age_seconds', help: 'Age of the oldest outbox event not yet published (0: none waits): the relay\'s lag', registers: [registry] }),
    purged: new Counter({ name: 'oms_purged_rows_total', help: 'Rows deleted past their retention, by table (outbox, idempotencyKeys)', labelNames: ['table'], registers: [registry] }),
    outboxPublished: new Counter({ name: 'oms_outbox_published_total', help: 'Outbox events published to Kafka', registers: [registry] }),
    cache: new Counter({ name: 'oms_catalog_cache_total', help: 'Catalog cache lookups by result (hit, miss, error)', labelNames: ['result'], registers: [registry] }),
  };
}
