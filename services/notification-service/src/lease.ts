// The lease a consumer holds on a send in progress (inbox.ts takes and renews it in PostgreSQL). The database decides
// who holds a lease; this side only has to stop sending before the database could give it to someone else.
//
// The holder counts its lease from the moment it *asked* for it (a renewal's request time, on the monotonic clock),
// minus a margin, so its own deadline always falls before the database's lease_until, whatever the query's latency.
// Past that deadline the send is aborted (the SMTP connection closed) and the email's last line, the end of DATA that
// makes a provider accept it, is never written: `valid()` is checked synchronously just before it is.
// A process frozen mid-send (a GC pause, SIGSTOP, a VM stalled) wakes up past its deadline, so it cannot complete a
// send that another consumer may have taken over in the meantime.
import { performance } from 'node:perf_hooks';

export interface LeaseSettings {
  /** how long a claim or renewal holds the send */
  leaseMs: number;
  /** how much earlier than the database the holder gives its lease up (network and clock-rate allowance) */
  marginMs: number;
}

export type Renewal = () => Promise<boolean>;

export class Lease {
  private deadline: number;
  private lost = false;
  private readonly controller = new AbortController();
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  /** `askedAt`: performance.now() when the claim that granted the lease was sent */
  constructor(private readonly settings: LeaseSettings, askedAt: number) {
    this.deadline = askedAt + settings.leaseMs - settings.marginMs;
  }

  /** aborted once the lease is lost or given up: pass it to the send */
  get signal(): AbortSignal { return this.controller.signal; }

  /** whether the holder may still act on the send (synchronous: the fence before the email's last line) */
  valid(): boolean {
    if (!this.lost && performance.now() >= this.deadline) this.lose();
    return !this.lost;
  }

  /**
   * Renews the lease every third of its length while the send runs (`renew` answers false once the database has
   * no lease of ours to renew), and calls `tick` each time (the consumer's heartbeat to Kafka, so a slow send does not
   * cost the partition). Ends when `release()` is called.
   */
  keep(renew: Renewal, tick: () => void): void {
    const every = Math.max(50, Math.floor(this.settings.leaseMs / 3));
    const schedule = (): void => {
      this.renewTimer = setTimeout(() => {
        if (!this.valid()) return;
        const askedAt = performance.now();
        renew().then((held) => {
          if (!held) { this.lose(); return; }
          if (this.lost) return;
          this.deadline = askedAt + this.settings.leaseMs - this.settings.marginMs;
          this.armExpiry();
          schedule();
        }, () => { schedule(); }); // the database did not answer: keep the current deadline and try again
        tick();
      }, every);
    };
    this.armExpiry();
    schedule();
  }

  release(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => { this.valid(); }, Math.max(0, this.deadline - performance.now()));
  }

  private lose(): void {
    this.lost = true;
    this.release();
    this.controller.abort(new LeaseLost('the lease on this send ran out before it finished'));
  }
}

export class LeaseLost extends Error {
  override name = 'LeaseLost';
}
