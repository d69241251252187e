-- Restores of the database to a point in time: ansible/restore.yml records each one here once the restored cluster
-- serves. A restore discards the inbox rows written after its target, but not the emails sent meanwhile, and events
-- of before the target come again (the outbox's record of publishing them was discarded too). So the first attempt
-- of an event that occurred before the newest restore asks the provider whether its email went out already, as the
-- take-over of an interrupted send does (inbox.ts), instead of sending it a second time.
CREATE TABLE notify.restores (
  restored_at timestamptz PRIMARY KEY DEFAULT now(),
  target      text NOT NULL CHECK (length(target) BETWEEN 1 AND 200)
);
GRANT SELECT ON notify.restores TO notification_service;
