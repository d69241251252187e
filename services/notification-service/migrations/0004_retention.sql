-- The purge of inbox rows past their retention (src/inbox.ts, purge): events sent or given up long ago.
GRANT DELETE ON notify.inbox TO notification_service;
CREATE INDEX inbox_processed ON notify.inbox (processed_at) WHERE status IN ('SENT', 'DEAD_LETTERED');
