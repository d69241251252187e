// The inbox (migrations/): one row per order event, its state and attempt number. Every decision to send is a row
// change that only one consumer can make (a conditional UPDATE, or the INSERT of the event id), so a redelivered event
// or a retry message delivered twice finds the work done or taken.
//
//   (none) --first attempt--> SENDING(1) --accepted--> SENT
//                                 |--transient--> RETRYING(n) --retry message n+1--> SENDING(n+1) ...
//                                 '--permanent, or attempts used up--> DEAD_LETTERED
import type { Pool } from 'pg';

export type InboxStatus = 'PENDING' | 'SENDING' | 'SENT' | 'RETRYING' | 'DEAD_LETTERED';

export interface InboxRow {
  status: InboxStatus;
  attempts: number;
}

export type Claim =
  /** this consumer sends attempt `attempt` now */
  | { kind: 'claimed' }
  /** attempt `attempt` was started before and its outcome is unknown (the consumer died mid-send) */
  | { kind: 'unfinished' }
  /** a retry whose previous attempt is still being finished (its retry message was quicker than its bookkeeping) */
  | { kind: 'wait' }
  /** nothing to do: the email went out, was given up, or this message is not the event's current attempt */
  | { kind: 'done'; row: InboxRow };

export class Inbox {
  constructor(private readonly pool: Pool) {}

  /**
   * Takes attempt `attempt` of an event: the first from the order events topic, later ones from the retry topic
   * (only while the row waits for exactly that attempt).
   */
  async claim(event: { id: string; type: string; orderId: string; recipient: string }, attempt: number): Promise<Claim> {
    if (attempt === 1) {
      const inserted = await this.pool.query({
        name: 'notify.claim-first',
        text: `INSERT INTO notify.inbox (event_id, event_type, order_id, status, attempts, recipient)
               VALUES ($1, $2, $3, 'SENDING', 1, $4) ON CONFLICT (event_id) DO NOTHING`,
        values: [event.id, event.type, event.orderId, event.recipient],
      });
      if (inserted.rowCount === 1) return { kind: 'claimed' };
    } else {
      const moved = await this.pool.query({
        name: 'notify.claim-retry',
        text: `UPDATE notify.inbox SET status = 'SENDING', attempts = $2 WHERE event_id = $1 AND status = 'RETRYING' AND attempts = $2 - 1`,
        values: [event.id, attempt],
      });
      if (moved.rowCount === 1) return { kind: 'claimed' };
    }
    const row = await this.get(event.id);
    if (row?.status === 'SENDING' && row.attempts === attempt) return { kind: 'unfinished' };
    if (row?.status === 'SENDING' && row.attempts === attempt - 1) return { kind: 'wait' };
    return { kind: 'done', row: row ?? { status: 'PENDING', attempts: 0 } };
  }

  async sent(eventId: string, messageId: string): Promise<void> {
    await this.pool.query({
      name: 'notify.sent',
      text: `UPDATE notify.inbox SET status = 'SENT', message_id = $2, sent_at = now(), processed_at = now(), last_error = NULL WHERE event_id = $1`,
      values: [eventId, messageId],
    });
  }

  async retrying(eventId: string, error: string): Promise<void> {
    await this.pool.query({
      name: 'notify.retrying',
      text: `UPDATE notify.inbox SET status = 'RETRYING', last_error = $2 WHERE event_id = $1 AND status = 'SENDING'`,
      values: [eventId, error.slice(0, 2000)],
    });
  }

  /** A parsed event given up on; an unparseable message has no row (its event id is not known). */
  async deadLettered(eventId: string, error: string): Promise<void> {
    await this.pool.query({
      name: 'notify.dead-lettered',
      text: `UPDATE notify.inbox SET status = 'DEAD_LETTERED', last_error = $2, processed_at = now() WHERE event_id = $1`,
      values: [eventId, error.slice(0, 2000)],
    });
  }

  async get(eventId: string): Promise<InboxRow | undefined> {
    const { rows } = await this.pool.query<InboxRow>({ name: 'notify.get', text: 'SELECT status, attempts FROM notify.inbox WHERE event_id = $1', values: [eventId] });
    return rows[0];
  }
}
