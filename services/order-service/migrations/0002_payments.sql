-- Payments: the order keeps the provider's token (a reference to the customer's payment method, never card data) so
-- the recovery sweep can ask the provider what became of a charge whose answer never came, and the provider's
-- reference once approved. The sweep also finishes the Idempotency-Key of the order it resolves: found by order id.
ALTER TABLE oms.orders ADD COLUMN payment_token text CHECK (payment_token ~ '^tok_[A-Za-z0-9_]{1,100}$');
ALTER TABLE oms.orders ADD COLUMN payment_reference text;
CREATE INDEX idempotency_keys_order ON oms.idempotency_keys (order_id) WHERE state = 'IN_FLIGHT';
