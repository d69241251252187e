-- The notification service's inbox: one row per order event it has seen, so a redelivered event sends nothing again.
-- Applied as notifications_owner (roles/patroni, oms-migrate); notification_service gets data privileges only.
CREATE SCHEMA notify;
REVOKE ALL ON SCHEMA notify FROM PUBLIC;

CREATE TABLE notify.inbox (
  event_id     uuid PRIMARY KEY,
  event_type   text NOT NULL,
  order_id     uuid NOT NULL,
  status       text NOT NULL CHECK (status IN ('PENDING', 'SENT', 'RETRYING', 'DEAD_LETTERED')),
  message_id   text,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  received_at  timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz
);
CREATE INDEX inbox_order ON notify.inbox (order_id);

GRANT USAGE ON SCHEMA notify TO notification_service;
GRANT SELECT, INSERT, UPDATE ON notify.inbox TO notification_service;
