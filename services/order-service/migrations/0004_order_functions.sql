-- The order's hot path as functions: placing an order and settling its payment are one statement each, so one round
-- trip each (and, called alone, their own transaction) instead of 6 and 7. They run with the caller's rights
-- (SECURITY INVOKER): Row Level Security applies inside them as to any statement of the service, and each says whom
-- it acts for as the service's transactions do (set_config(..., true): for this transaction only).
--
-- Lock order: every statement that changes stock takes the products in the byte order of their ids (COLLATE "C"; the
-- service sorts the same way), so concurrent orders of the same products wait for each other and never deadlock.

-- An order as the API shows it (GET /orders/:id, the order in a stored response): one definition for every reader.
-- PL/pgSQL, not SQL: a SQL function with a subquery is never inlined, and is parsed and planned again at every call;
-- PL/pgSQL keeps its plan for the connection's life.
CREATE FUNCTION oms.order_view(o oms.orders) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN json_build_object(
    'id', o.id, 'customerId', o.customer_id, 'customerEmail', o.customer_email, 'status', o.status,
    'totalCents', o.total_cents, 'currency', o.currency, 'version', o.version,
    'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updatedAt', to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'items', coalesce((
      SELECT json_agg(json_build_object('productId', i.product_id, 'quantity', i.quantity, 'unitPriceCents', i.unit_price_cents) ORDER BY i.line)
      FROM oms.order_items i WHERE i.order_id = o.id), '[]'));
END
$$;

-- POST /orders' transaction: claims the Idempotency-Key, reserves the stock of each line with a conditional UPDATE
-- (never below zero), writes the order, its items, its history and its order.created event.
-- Returns {kind: 'created', orderId, totalCents, currency, soldOut: [products whose last units it took]}, or
-- {kind: 'replay', ...the key's row} when the key was claimed before (a parallel request with the same key waits
-- here for the first one's transaction to end). Refuses with SQLSTATE OMS01 (not enough stock) or OMS02 (no such
-- product), the product id as DETAIL: the exception rolls the claim and every reservation back.
CREATE FUNCTION oms.place_order(
  p_order_id uuid, p_customer_id text, p_customer_email text, p_key text, p_request_sha256 text, p_payment_token text,
  p_product_ids text[], p_quantities integer[]
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  claimed oms.idempotency_keys;
  wanted record;
  price bigint;
  line_currency char(3);
  left_in_stock integer;
  total bigint := 0;
  order_currency char(3);
  lines jsonb := '[]';
  sold_out text[] := '{}';
BEGIN
  PERFORM set_config('oms.scope', 'customer', true), set_config('oms.customer_id', p_customer_id, true);
  INSERT INTO oms.idempotency_keys (customer_id, key, request_sha256, state, order_id)
    VALUES (p_customer_id, p_key, p_request_sha256, 'IN_FLIGHT', p_order_id) ON CONFLICT (customer_id, key) DO NOTHING;
  IF NOT FOUND THEN
    SELECT * INTO claimed FROM oms.idempotency_keys k WHERE k.customer_id = p_customer_id AND k.key = p_key;
    RETURN json_build_object('kind', 'replay', 'orderId', claimed.order_id, 'state', coalesce(claimed.state, 'IN_FLIGHT'),
      'sameRequest', claimed.request_sha256 IS NOT DISTINCT FROM p_request_sha256,
      'responseStatus', claimed.response_status, 'responseBody', claimed.response_body);
  END IF;

  FOR wanted IN
    SELECT l.product_id, l.quantity FROM unnest(p_product_ids, p_quantities) AS l(product_id, quantity)
    ORDER BY l.product_id COLLATE "C"
  LOOP
    UPDATE oms.products SET stock = stock - wanted.quantity, version = version + 1, updated_at = now()
      WHERE id = wanted.product_id AND stock >= wanted.quantity
      RETURNING price_cents, currency, stock INTO price, line_currency, left_in_stock;
    IF NOT FOUND THEN
      IF EXISTS (SELECT 1 FROM oms.products WHERE id = wanted.product_id) THEN
        RAISE EXCEPTION 'not enough stock of %', wanted.product_id USING ERRCODE = 'OMS01', DETAIL = wanted.product_id;
      END IF;
      RAISE EXCEPTION 'no product %', wanted.product_id USING ERRCODE = 'OMS02', DETAIL = wanted.product_id;
    END IF;
    IF left_in_stock = 0 THEN sold_out := sold_out || wanted.product_id; END IF;
    total := total + price * wanted.quantity;
    order_currency := line_currency;
    lines := lines || jsonb_build_object('productId', wanted.product_id, 'quantity', wanted.quantity, 'unitPriceCents', price);
  END LOOP;

  INSERT INTO oms.orders (id, customer_id, status, total_cents, currency, payment_token, customer_email)
    VALUES (p_order_id, p_customer_id, 'PENDING_PAYMENT', total, order_currency, p_payment_token, p_customer_email);
  INSERT INTO oms.order_items (order_id, line, customer_id, product_id, quantity, unit_price_cents)
    SELECT p_order_id, l.n, p_customer_id, l.item->>'productId', (l.item->>'quantity')::integer, (l.item->>'unitPriceCents')::bigint
    FROM jsonb_array_elements(lines) WITH ORDINALITY AS l(item, n);
  INSERT INTO oms.order_history (order_id, customer_id, from_status, to_status, actor)
    VALUES (p_order_id, p_customer_id, NULL, 'PENDING_PAYMENT', 'customer');
  INSERT INTO oms.outbox (id, aggregate_id, event_type, customer_id, payload)
    VALUES (gen_random_uuid(), p_order_id, 'order.created', p_customer_id, jsonb_build_object(
      'orderId', p_order_id, 'customerId', p_customer_id, 'customerEmail', p_customer_email, 'status', 'PENDING_PAYMENT',
      'totalCents', total, 'currency', order_currency, 'lines', lines));
  RETURN json_build_object('kind', 'created', 'orderId', p_order_id, 'totalCents', total, 'currency', order_currency, 'soldOut', to_json(sold_out));
END
$$;

-- The payment's outcome, as the system: a PENDING_PAYMENT order moves to CONFIRMED (with the provider's reference) or
-- to PAYMENT_FAILED (its stock put back), with its history and event, and the key that created it stores its final
-- response: 201 and the order, or 402 and `declined_problem` (the service's problem document) with the order in it.
-- An order no longer pending (the recovery sweep or a cancellation got there first) stays as it is.
-- Returns {order, moved, released}; NULL when there is no such order.
CREATE FUNCTION oms.settle_order(p_order_id uuid, p_approved boolean, p_payment_reference text, p_declined_problem jsonb)
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
    RETURN json_build_object('order', oms.order_view(pending), 'moved', false, 'released', false);
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

REVOKE ALL ON FUNCTION oms.order_view(oms.orders), oms.place_order(uuid, text, text, text, text, text, text[], integer[]),
  oms.settle_order(uuid, boolean, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oms.order_view(oms.orders), oms.place_order(uuid, text, text, text, text, text, text[], integer[]),
  oms.settle_order(uuid, boolean, text, jsonb) TO order_service;
