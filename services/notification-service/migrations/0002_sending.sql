-- An attempt in progress is recorded before the email goes out (SENDING, with its attempt number), so a consumer that
-- died mid-send is recognised when the event comes again: the provider is asked whether that Message-ID arrived
-- before anything is sent a second time. Attempt numbers also make a retry message delivered twice harmless: only the
-- copy that moves the attempt count on sends.
ALTER TABLE notify.inbox DROP CONSTRAINT inbox_status_check;
ALTER TABLE notify.inbox ADD CONSTRAINT inbox_status_check
  CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'RETRYING', 'DEAD_LETTERED'));
ALTER TABLE notify.inbox ADD COLUMN recipient text;
ALTER TABLE notify.inbox ADD COLUMN sent_at timestamptz;
