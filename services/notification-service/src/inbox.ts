// The inbox (migrations/): one row per order event, its state and attempt number. Every decision to send is a row
// change that only one consumer can make (a conditional UPDATE, or the INSERT of the event id), so a redelivered event
// or a retry message delivered twice finds the work done or taken.
//
//   (none) --first attempt--> SENDING(1) --accepted--> SENT
//                                 |--transient--> RETRYING(n) --retry message n+1--> SENDING(n+1) ...
//                                 '--permanent, or attempts used up--> DEAD_LETTERED
//
// A row in SENDING is held by its owner under a lease (lease.ts) that the owner renews while it sends. Another
// consumer takes the attempt over only once the lease has run out ('unfinished': ask the provider before sending
// again); while it runs, the attempt is someone else's ('busy'). Every later change of the row is made by its owner
// only, so a consumer that lost its lease (paused, partitioned) can no longer record anything over the new owner.
// The first attempt of an event that occurred before the database's newest restore to a point in time
// (notify.restores) is 'unfinished' too: the system as it was before the restore may have sent it.
import type { Pool } from 'pg';
import { inBatches } from '@oms/service-common/batches';

export type InboxStatus = 'PENDING' | 'SENDING' | 'SENT' | 'RETRYING' | 'DEAD_LETTERED';

export interface InboxRow {
  status: InboxStatus;
  attempts: number;
}

export type Claim =
  /** this consumer sends attempt `attempt` now */
  | { kind: 'claimed' }
  /**
   * attempt `attempt` may have been sent before and its outcome is unknown (its owner's lease ran out mid-send, or
   * the event occurred before a restore of the database discarded the record of its send): ask the provider first
   */
  | { kind: 'unfinished' }
  /** another consumer holds this attempt; its lease runs out in `inMs` unless it renews it */
  | { kind: 'busy'; inMs: number }
  /** a retry whose previous attempt is still being finished (its retry message was quicker than its bookkeeping) */
  | { kind: 'wait' }
  /** nothing to do: the email went out, was given up, or this message is not the event's current attempt */
  | { kind: 'done'; row: InboxRow };

export class Inbox {
  /** `owner`: this consumer, unique per process; `leaseMs`: how long a claim or renewal holds a send */
  constructor(private readonly pool: Pool, readonly owner: string, private readonly leaseMs: number) {}

  /**
   * Takes attempt `attempt` of an event: the first from the order events topic, later ones from the retry topic
   * (only while the row waits for exactly that attempt).
   */
  async claim(event: { id: string; type: string; orderId: string; recipient: string; occurredAt: string }, attempt: number): Promise<Claim> {
    if (attempt === 1) {
      const inserted = await this.pool.query<{ before_restore: boolean }>({
        name: 'notify.claim-first',
        text: `INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient, owner, lease_until)
               VALUES ($1, $2, $3, 'SENDING', 1, $4, $5, now() + $6 * interval '1 millisecond') ON CONFLICT (event_id) DO NOTHING
               RETURNING coalesce((SELECT max(restored_at) FROM notify.restores) >= $7::timestamptz, false) AS before_restore`,
        values: [event.id, event.type, event.orderId, event.recipient, this.owner, this.leaseMs, event.occurredAt],
      });
      if (inserted.rowCount === 1) return { kind: inserted.rows[0]?.before_restore ? 'unfinished' : 'claimed' };
    } else {
      const moved = await this.pool.query({
        name: 'notify.claim-retry',
        text: `UPDATE notify.inbox SET status = 'SENDING', attempts = $2, owner = $3, lease_until = now() + $4 * interval '1 millisecond'
               WHERE event_id = $1 AND status = 'RETRYING' AND attempts = $2 - 1`,
        values: [event.id, attempt, this.owner, this.leaseMs],
      });
      if (moved.rowCount === 1) return { kind: 'claimed' };
    }
    // an attempt already under way: ours from before (this process failed mid-way), or one whose lease ran out
    if (await this.takeOver(event.id, attempt)) return { kind: 'unfinished' };
    const { rows } = await this.pool.query<InboxRow & { lease_left_ms: number | null }>({
      name: 'notify.get-lease',
      text: `SELECT status, attempts, ceil(extract(epoch FROM lease_until - now()) * 1000)::integer AS lease_left_ms FROM notify.inbox WHERE event_id = $1`,
      values: [event.id],
    });
    const row = rows[0];
    if (row?.status === 'SENDING' && row.attempts === attempt) return { kind: 'busy', inMs: Math.max(100, row.lease_left_ms ?? 0) };
    if (row?.status === 'SENDING' && row.attempts === attempt - 1) return { kind: 'wait' };
    return { kind: 'done', row: row ? { status: row.status, attempts: row.attempts } : { status: 'PENDING', attempts: 0 } };
  }

  /** extends our lease on a send in progress; false once it is no longer ours (ran out, or taken over) */
  async renew(eventId: string, attempt: number): Promise<boolean> {
    const renewed = await this.pool.query({
      name: 'notify.renew',
      text: `UPDATE notify.inbox SET lease_until = now() + $4 * interval '1 millisecond'
             WHERE event_id = $1 AND attempts = $2 AND owner = $3 AND status = 'SENDING' AND lease_until > now()`,
      values: [eventId, attempt, this.owner, this.leaseMs],
    });
    return renewed.rowCount === 1;
  }

  /** sends whose lease ran out more than `afterMs` ago, oldest first: nobody took them over (config.ts, orphans) */
  async orphans(afterMs: number, limit: number): Promise<{ eventId: string; attempts: number }[]> {
    const { rows } = await this.pool.query<{ event_id: string; attempts: number }>({
      name: 'notify.orphans',
      text: `SELECT event_id, attempts FROM notify.inbox
             WHERE status = 'SENDING' AND (lease_until IS NULL OR lease_until < now() - $1 * interval '1 millisecond')
             ORDER BY lease_until NULLS FIRST LIMIT $2`,
      values: [afterMs, limit],
    });
    return rows.map((r) => ({ eventId: r.event_id, attempts: r.attempts }));
  }

  /** takes over an attempt whose lease ran out (as a redelivered message does); false when someone else holds it */
  async takeOver(eventId: string, attempt: number): Promise<boolean> {
    const taken = await this.pool.query({
      name: 'notify.take-over',
      text: `UPDATE notify.inbox SET owner = $3, lease_until = now() + $4 * interval '1 millisecond'
             WHERE event_id = $1 AND status = 'SENDING' AND attempts = $2
               AND (owner IS NOT DISTINCT FROM $3 OR lease_until IS NULL OR lease_until <= now())`,
      values: [eventId, attempt, this.owner, this.leaseMs],
    });
    return taken.rowCount === 1;
  }

  /** records the email as sent; false when the row is not ours to change any more (another owner finished it) */
  async sent(eventId: string, messageId: string): Promise<boolean> {
    const r = await this.pool.query({
      name: 'notify.sent',
      text: `UPDATE notify.inbox SET status = 'SENT', message_id = $2, sent_at = now(), processed_at = now(), last_error = NULL, lease_until = NULL
             WHERE event_id = $1 AND status = 'SENDING' AND owner = $3`,
      values: [eventId, messageId, this.owner],
    });
    return r.rowCount === 1;
  }

  async retrying(eventId: string, error: string): Promise<void> {
    await this.pool.query({
      name: 'notify.retrying',
      text: `UPDATE notify.inbox SET status = 'RETRYING', last_error = $2, lease_until = NULL WHERE event_id = $1 AND status = 'SENDING' AND owner = $3`,
      values: [eventId, error.slice(0, 2000), this.owner],
    });
  }

  /** A parsed event given up on; an unparseable message has no row (its event id is not known). */
  async deadLettered(eventId: string, error: string): Promise<void> {
    await this.pool.query({
      name: 'notify.dead-lettered',
      text: `UPDATE notify.inbox SET status = 'DEAD_LETTERED', last_error = $2, processed_at = now(), lease_until = NULL
             WHERE event_id = $1 AND status <> 'SENT' AND (status <> 'SENDING' OR owner = $3)`,
      values: [eventId, error.slice(0, 2000), this.owner],
    });
  }

  /**
   * Deletes rows of events sent or given up more than `days` ago, `batch` a statement; returns how many. The retention
   * must be longer than the order events topic's: an event redelivered from the topic (an offset reset to its start)
   * whose row is gone would be emailed again.
   */
  async purge(days: number, batch: number): Promise<number> {
    return inBatches(batch, async () => (await this.pool.query({
      name: 'notify.purge',
      text: `DELETE FROM notify.inbox WHERE event_id IN (
               SELECT event_id FROM notify.inbox WHERE status IN ('SENT', 'DEAD_LETTERED') AND processed_at < now() - make_interval(days => $1) LIMIT $2)`,
      values: [days, batch],
    })).rowCount ?? 0);
  }

  async get(eventId: string): Promise<InboxRow | undefined> {
    const { rows } = await this.pool.query<InboxRow>({ name: 'notify.get', text: 'SELECT status, attempts FROM notify.inbox WHERE event_id = $1', values: [eventId] });
    return rows[0];
  }
}
