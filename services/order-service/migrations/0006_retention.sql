-- The purge of rows past their retention (src/ops/retention.ts): published outbox events and finished
-- Idempotency-Keys are deleted by the service, as the system scope only.
CREATE POLICY system_purges ON oms.outbox FOR DELETE USING (oms.scope() = 'system');
GRANT DELETE ON oms.outbox, oms.idempotency_keys TO order_service;
CREATE INDEX outbox_published ON oms.outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX idempotency_keys_done ON oms.idempotency_keys (updated_at) WHERE state = 'DONE';
