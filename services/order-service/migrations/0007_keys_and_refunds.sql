-- oms.settle_order finding its order already moved (cancelled while the charge was in flight) ends the order's
-- Idempotency-Key with the order as it is (it used to leave the key IN_FLIGHT, and every retry got 409 for ever), and
-- when the charge it settles was approved all the same, makes the order's refund due.
--
-- Compensation of cancelled orders (src/payments/refunds.ts): an order cancelled once its charge was taken or may
-- have been is marked refund DUE in the cancellation's transaction; the worker voids or refunds the charge and sets
-- DONE (money returned, an order.refunded event) or NOTHING (nothing was taken).
ALTER TABLE oms.orders ADD COLUMN refund_state text CHECK (refund_state IN ('DUE', 'DONE', 'NOTHING'));
ALTER TABLE oms.orders ADD COLUMN refund_reference text;
CREATE INDEX orders_refund_due ON oms.orders (updated_at) WHERE refund_state = 'DUE';

CREATE OR REPLACE FUNCTION oms.settle_order(p_order_id uuid, p_approved boolean, p_payment_reference text, p_declined_problem jsonb)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  pending oms.orders;
  moved oms.orders;
  next_status text := CASE WHEN p_approved THEN 'CONFIRMED' ELSE 'PAYMENT_FAILED' END;
  item record;
  shown json;
BEGIN
  PERFORM set_config('oms.scope', 'system', true), set_config('oms.customer_id', '', true);
  SELECT * INTO pending FROM oms.orders WHERE id = p_order_id FOR UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF pending.status <> 'PENDING_PAYMENT' THEN
    -- moved meanwhile (a cancellation while the charge was in flight): the key ends with the order as it is, and a
    -- charge that was taken all the same is due back to the customer (unless its refund is due or done already)
    IF p_approved AND pending.status = 'CANCELLED' AND coalesce(pending.refund_state, 'NOTHING') = 'NOTHING' THEN
      UPDATE oms.orders SET refund_state = 'DUE', payment_reference = coalesce(p_payment_reference, payment_reference)
        WHERE id = p_order_id;
    END IF;
    shown := oms.order_view(pending);
    UPDATE oms.idempotency_keys SET state = 'DONE', updated_at = now(),
        response_status = CASE WHEN pending.status = 'PAYMENT_FAILED' THEN 402 ELSE 201 END,
        response_body = CASE WHEN pending.status = 'PAYMENT_FAILED' THEN p_declined_problem || jsonb_build_object('order', shown) ELSE shown::jsonb END
      WHERE order_id = p_order_id AND state = 'IN_FLIGHT';
    RETURN json_build_object('order', shown, 'moved', false, 'released', false);
  END IF;

  UPDATE oms.orders SET status = next_status, version = version + 1, updated_at = now(),
      payment_reference = CASE WHEN p_approved THEN coalesce(p_payment_reference, payment_reference) ELSE payment_reference END
    WHERE id = p_order_id RETURNING * INTO moved;
  IF NOT p_approved THEN
    FOR item IN SELECT i.product_id, i.quantity FROM oms.order_items i WHERE i.order_id = p_order_id ORDER BY i.product_id COLLATE "C" LOOP
      UPDATE oms.products SET stock = stock + item.quantity, version = version + 1, updated_at = now() WHERE id = item.product_id;
    END LOOP;
  END IF;
  INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor)
    VALUES (p_order_id, pending.customer_id, pending.status, next_status, 'system');
  INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload)
    VALUES (gen_random_uuid(), p_order_id, CASE WHEN p_approved THEN 'order.confirmed' ELSE 'order.payment-failed' END, pending.customer_id,
      jsonb_build_object('orderId', p_order_id, 'customerId', pending.customer_id, 'customerEmail', pending.customer_email,
        'from', pending.status, 'status', next_status, 'totalCents', pending.total_cents, 'currency', pending.currency));
  shown := oms.order_view(moved);
  UPDATE oms.idempotency_keys SET state = 'DONE', updated_at = now(),
      response_status = CASE WHEN p_approved THEN 201 ELSE 402 END,
      response_body = CASE WHEN p_approved THEN shown::jsonb ELSE p_declined_problem || jsonb_build_object('order', shown) END
    WHERE order_id = p_order_id AND state = 'IN_FLIGHT';
  RETURN json_build_object('order', shown, 'moved', true, 'released', NOT p_approved);
END
$$;
