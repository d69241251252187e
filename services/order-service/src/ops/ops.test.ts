import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '@oms/service-common/logger';
import { createMetrics } from './metrics.ts';

describe('operations', () => {
  it('log lines are JSON with the request id, and never carry tokens, cookies or passwords', () => {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done(); } });
    const log = createLogger({ service: 'order-service', destination });
    log.info({ requestId: 'req-1', req: { headers: { authorization: 'Bearer eyJ.secret.sig', cookie: 's=1' } }, body: { paymentToken: 'tok_approve_1' } }, 'order received');
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(entry['level'], 'info');
    assert.equal(entry['requestId'], 'req-1');
    assert.equal(entry['service'], 'order-service');
    assert.doesNotMatch(lines[0] ?? '', /eyJ\.secret|s=1|tok_approve_1/);
  });

  it('metrics are exposed in the Prometheus text format from the service\'s own registry', async () => {
    const m = createMetrics();
    m.orders.inc({ outcome: 'created' });
    m.outboxBacklog.set(7);
    m.httpDuration.observe({ method: 'POST', route: '/api/v1/orders', status: '201' }, 0.012);
    const text = await m.registry.metrics();
    assert.match(text, /oms_orders_total\{outcome="created"\} 1/);
    assert.match(text, /oms_outbox_backlog 7/);
    assert.match(text, /oms_http_request_duration_seconds_bucket\{le="0.025",method="POST",route="\/api\/v1\/orders",status="201"\} 1/);
    assert.match(text, /oms_order_service_process_cpu_seconds_total/);
  });
});
