-- The request id (the gateway's X-Request-Id) travels with an order's events, so one request is found in the
-- gateway's, the order service's and the notification service's logs: the outbox keeps it, the relay sends it as the
-- Kafka header request-id, the notification service logs it. A transaction names it with
-- set_config('oms.request_id', id, true), which the service's transactions do with their scope (one statement), and
-- every outbox row the transaction writes takes it as its default.
ALTER TABLE oms.outbox ADD COLUMN request_id text DEFAULT nullif(current_setting('oms.request_id', true), '');

-- POST /orders' statement runs alone in its transaction: this one names the request first. The eight-argument
-- function stays, for a service of the previous release during a rolling deploy.
CREATE FUNCTION oms.place_order(
  p_order_id uuid, p_customer_id text, p_customer_email text, p_key text, p_request_sha256 text, p_payment_token text,
  p_product_ids text[], p_quantities integer[], p_request_id text
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('oms.request_id', coalesce(p_request_id, ''), true);
  RETURN oms.place_order(p_order_id, p_customer_id, p_customer_email, p_key, p_request_sha256, p_payment_token, p_product_ids, p_quantities);
END
$$;

REVOKE ALL ON FUNCTION oms.place_order(uuid, text, text, text, text, text, text[], integer[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oms.place_order(uuid, text, text, text, text, text, text[], integer[], text) TO order_service;

-- The payment's outcome, in the same request as the order (POST /orders): its order.confirmed or
-- order.payment_failed event carries the request too. The recovery sweep settles with the four-argument function.
CREATE FUNCTION oms.settle_order(p_order_id uuid, p_approved boolean, p_payment_reference text, p_declined_problem jsonb, p_request_id text)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('oms.request_id', coalesce(p_request_id, ''), true);
  RETURN oms.settle_order(p_order_id, p_approved, p_payment_reference, p_declined_problem);
END
$$;

REVOKE ALL ON FUNCTION oms.settle_order(uuid, boolean, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oms.settle_order(uuid, boolean, text, jsonb, text) TO order_service;
