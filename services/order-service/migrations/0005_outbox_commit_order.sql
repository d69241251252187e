-- Events in commit order, per order: an outbox row's created_at (the relay's order) was the transaction's start, so
-- a transaction that began before another one's commit but moved the same order after it wrote the earlier time (a
-- cancellation that began before the payment's settle committed was published before the confirmation). Every event
-- of an order is written while its transaction holds the order's row lock (place_order creates it, settle_order
-- locks it FOR UPDATE, a move UPDATEs it), so the time of the insert itself follows the order's commits.
ALTER TABLE oms.outbox ALTER COLUMN created_at SET DEFAULT clock_timestamp();
