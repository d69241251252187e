-- A send in progress is held under a lease: the consumer that claimed it (owner) keeps it only while it renews
-- lease_until during the send. Another consumer may take the attempt over only once the lease has run out, and the
-- holder sends nothing once it can no longer be sure of its lease (inbox.ts, lease.ts). A row from before this
-- migration has no lease and counts as expired.
ALTER TABLE notify.inbox ADD COLUMN owner text;
ALTER TABLE notify.inbox ADD COLUMN lease_until timestamptz;
