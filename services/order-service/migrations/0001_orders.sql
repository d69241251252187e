-- The order store. Applied as orders_owner (roles/patroni, oms-migrate); the service's role order_service gets data
-- privileges only: it can never change the schema, drop data wholesale or turn Row Level Security off.
--
-- Row Level Security: each transaction of the service says whom it acts for, with
--   SELECT set_config('oms.scope', 'customer' | 'staff' | 'system', true), set_config('oms.customer_id', ID, true)
-- A customer sees and writes only rows with their customer_id; staff and the system (outbox relay, recovery sweep)
-- see all. Nothing set = nothing visible. FORCE applies the policies to the owner too.

CREATE SCHEMA oms;
REVOKE ALL ON SCHEMA oms FROM PUBLIC;

CREATE FUNCTION oms.scope() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT coalesce(nullif(current_setting('oms.scope', true), ''), 'customer') $$;
CREATE FUNCTION oms.customer_id() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('oms.customer_id', true), '') $$;
-- true when the current transaction may see the rows of this customer
CREATE FUNCTION oms.may_see(customer text) RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT oms.scope() IN ('staff', 'system') OR customer = oms.customer_id() $$;

CREATE TABLE oms.products (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Z0-9][A-Z0-9-]{1,63}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  category    text NOT NULL CHECK (length(category) BETWEEN 1 AND 100),
  price_cents bigint NOT NULL CHECK (price_cents >= 0),
  currency    char(3) NOT NULL DEFAULT 'EUR',
  stock       integer NOT NULL CHECK (stock >= 0),
  version     integer NOT NULL DEFAULT 1,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category_price ON oms.products (category, price_cents, id);

CREATE TABLE oms.orders (
  id          uuid PRIMARY KEY,
  customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 100),
  status      text NOT NULL CHECK (status IN ('PENDING_PAYMENT', 'CONFIRMED', 'PAYMENT_FAILED', 'CANCELLED', 'SHIPPED', 'DELIVERED')),
  total_cents bigint NOT NULL CHECK (total_cents >= 0),
  currency    char(3) NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON oms.orders (customer_id, created_at DESC, id);
CREATE INDEX orders_pending ON oms.orders (updated_at) WHERE status = 'PENDING_PAYMENT';

CREATE TABLE oms.order_items (
  order_id         uuid NOT NULL REFERENCES oms.orders ON DELETE CASCADE,
  line             smallint NOT NULL CHECK (line >= 1),
  customer_id      text NOT NULL,
  product_id       text NOT NULL REFERENCES oms.products,
  quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
  PRIMARY KEY (order_id, line)
);

CREATE TABLE oms.order_history (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id    uuid NOT NULL REFERENCES oms.orders ON DELETE CASCADE,
  customer_id text NOT NULL,
  from_status text,
  to_status   text NOT NULL,
  actor       text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order ON oms.order_history (order_id, id);

-- Idempotency-Key claims: one per customer and key; the stored response is replayed for the same request
CREATE TABLE oms.idempotency_keys (
  customer_id     text NOT NULL,
  key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  request_sha256  text NOT NULL,
  state           text NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
  order_id        uuid,
  response_status smallint,
  response_body   jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, key)
);
CREATE INDEX idempotency_keys_created ON oms.idempotency_keys (created_at);

-- Transactional outbox: written in the order's transaction, published to Kafka by the relay (scope system)
CREATE TABLE oms.outbox (
  id           uuid PRIMARY KEY,
  aggregate_id uuid NOT NULL,
  event_type   text NOT NULL,
  customer_id  text NOT NULL,
  payload      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished ON oms.outbox (created_at, id) WHERE published_at IS NULL;

-- Row Level Security on every table with customer data
ALTER TABLE oms.orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE oms.orders FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON oms.orders USING (oms.may_see(customer_id)) WITH CHECK (oms.may_see(customer_id));
ALTER TABLE oms.order_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE oms.order_items FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON oms.order_items USING (oms.may_see(customer_id)) WITH CHECK (oms.may_see(customer_id));
ALTER TABLE oms.order_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE oms.order_history FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON oms.order_history USING (oms.may_see(customer_id)) WITH CHECK (oms.may_see(customer_id));
ALTER TABLE oms.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE oms.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON oms.idempotency_keys USING (oms.may_see(customer_id)) WITH CHECK (oms.may_see(customer_id));
-- a customer's transaction writes its events; only the system (relay) reads and marks them
ALTER TABLE oms.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE oms.outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY write_own ON oms.outbox FOR INSERT WITH CHECK (oms.may_see(customer_id));
CREATE POLICY system_reads ON oms.outbox FOR SELECT USING (oms.scope() = 'system');
CREATE POLICY system_marks ON oms.outbox FOR UPDATE USING (oms.scope() = 'system') WITH CHECK (oms.scope() = 'system');

-- the service's privileges: data only, no DELETE of orders, no TRUNCATE, no DDL
GRANT USAGE ON SCHEMA oms TO order_service;
GRANT EXECUTE ON FUNCTION oms.scope(), oms.customer_id(), oms.may_see(text) TO order_service;
GRANT SELECT, INSERT, UPDATE ON oms.products TO order_service;
GRANT SELECT, INSERT, UPDATE ON oms.orders TO order_service;
GRANT SELECT, INSERT ON oms.order_items TO order_service;
GRANT SELECT, INSERT ON oms.order_history TO order_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON oms.idempotency_keys TO order_service;
GRANT SELECT, INSERT, UPDATE ON oms.outbox TO order_service;
