// One message in, one outcome recorded: the heart of the service, without the Kafka consumer's plumbing (consumer.ts)
// so that every path can be reasoned about on its own.
//
//   order event (attempt 1) or retry message (attempt n, due at a time) -> parse -> claim in the inbox -> send ->
//   SENT | retry message n+1 after a backoff (transient failure) | dead-letter (permanent, attempts used up, poison)
//
// Outcomes are recorded before the handler returns, and the consumer commits an offset only after that. A message
// that must wait (a retry not yet due, the provider down, another consumer's send of it in progress, a dependency
// away) is answered `later`: its partition pauses and the message is fetched again, so nothing is skipped and no loop
// blocks the others. Anything else that goes wrong is a failure of that message: retried, then dead-lettered, counted
// in oms_notifications_errors_total; it never stalls the partition.
//
// A send runs under the lease of its inbox row (lease.ts): renewed while it lasts, and the email is not completed once
// the lease may have passed to another consumer.
import { performance } from 'node:perf_hooks';
import type { IHeaders, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '@oms/service-common/unavailable';
import { messageIdFor, parseEvent, PoisonMessage, type OrderEvent } from './events.ts';
import type { Inbox } from './inbox.ts';
import { Lease, LeaseLost, type LeaseSettings } from './lease.ts';
import { SendFailure, type MailProvider } from './mail/provider.ts';
import type { Metrics } from './metrics.ts';
import { render } from './templates.ts';

export interface IncomingMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

export type Handled = { kind: 'done' } | { kind: 'later'; inMs: number; why: string };

export interface NotifierSettings {
  topics: { events: string; retry: string; deadLetter: string };
  /** the wait before attempt 2, 3, ...; attempts = delays + 1 */
  retryDelaysMs: number[];
  from: string;
  messageIdDomain: string;
  lease: LeaseSettings;
}

/** What the consumer lends the handler: a heartbeat to Kafka, called while a long send runs. */
export interface HandlerContext {
  heartbeat(): void;
}

/**
 * Consecutive transient failures of the provider: from `threshold` on the breaker is open and nothing is sent (the
 * events wait in Kafka, not in a flood of retries) until a probe, at most one per `probeEveryMs`, finds the provider
 * reachable again; a success closes it. `report` hears whether it is open after every outcome (the metrics).
 */
export class ProviderBreaker {
  private failures = 0;
  private lastProbe = 0;
  private probing: Promise<boolean> | undefined;

  constructor(private readonly threshold: number, readonly probeEveryMs: number, private readonly reachable: () => Promise<boolean>,
    private readonly report: (open: boolean) => void = () => undefined) {}

  get open(): boolean { return this.failures >= this.threshold; }
  failed(): void { this.failures++; this.report(this.open); }
  succeeded(): void { this.failures = 0; this.report(false); }

  /** true when sending may go on: closed, or open and a probe (now, or the one in progress) found the provider */
  async allows(): Promise<boolean> {
    if (!this.open) return true;
    if (!this.probing && Date.now() - this.lastProbe < this.probeEveryMs) return false;
    this.probing ??= this.reachable().finally(() => { this.lastProbe = Date.now(); this.probing = undefined; });
    if (!(await this.probing)) return false;
    this.succeeded();
    return true;
  }
}

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const v = headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.toString();
};

/** The request that made the event (the order service's request-id header), for the logs: { requestId } or nothing. */
const requestOf = (message: IncomingMessage): { requestId?: string } => {
  const id = header(message.headers, 'request-id');
  return id === undefined ? {} : { requestId: id };
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The pg client's own query timeout: PostgreSQL did not answer in time, and what the statement did is not known yet
 * (an inbox claim held in its commit until a synchronous standby is back commits later). The database is away for
 * now: the message is fetched again, and the inbox then says what is left to do (found after a restore, where a claim
 * answered this way was dead-lettered although its row committed a moment later, and the email was never sent).
 */
const queryTimedOut = (error: unknown): boolean => error instanceof Error && error.message === 'Query read timeout';

/** PostgreSQL or Kafka away for now: the message waits (is fetched again) rather than fail */
const dependencyAway = (error: unknown): boolean =>
  isDatabaseUnavailable(error) || queryTimedOut(error) || error instanceof LeaseLost
  // kafkajs' errors (KafkaJSError is not an ES export of the CommonJS package): those it would retry itself
  || (error instanceof Error && error.name.startsWith('KafkaJS') && (error as { retriable?: unknown }).retriable === true);

type Stage = 'claim' | 'lookup' | 'send' | 'record';

export class Notifier {
  constructor(
    private readonly inbox: Inbox,
    private readonly provider: MailProvider,
    private readonly producer: Pick<Producer, 'send'>,
    private readonly breaker: ProviderBreaker,
    private readonly settings: NotifierSettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async handle(message: IncomingMessage, context: HandlerContext = { heartbeat: () => undefined }): Promise<Handled> {
    const fromRetry = message.topic === this.settings.topics.retry;
    const attempt = fromRetry ? Number(header(message.headers, 'attempt')) : 1;
    if (fromRetry) {
      const due = Number(header(message.headers, 'due-at'));
      if (!Number.isInteger(attempt) || attempt < 2 || !Number.isFinite(due)) {
        await this.deadLetter(message, 'unparseable', `retry message without a valid attempt or due-at header`, undefined);
        return { kind: 'done' };
      }
      if (due > Date.now()) return { kind: 'later', inMs: due - Date.now(), why: `attempt ${String(attempt)} not due yet` };
    }

    let event: OrderEvent;
    try {
      event = parseEvent(message.value);
    } catch (error) {
      if (!(error instanceof PoisonMessage)) throw error;
      await this.deadLetter(message, 'unparseable', error.message, undefined);
      return { kind: 'done' };
    }
    if (!(await this.breaker.allows())) return { kind: 'later', inMs: this.breaker.probeEveryMs, why: 'the provider is down' };

    const messageId = messageIdFor(event.id, this.settings.messageIdDomain);
    let stage: Stage = 'claim';
    let lease: Lease | undefined;
    try {
      const askedAt = performance.now();
      const claim = await this.inbox.claim({ id: event.id, type: event.type, orderId: event.data.orderId, recipient: event.data.customerEmail, occurredAt: event.occurredAt }, attempt);
      switch (claim.kind) {
        case 'done':
          this.metrics.duplicates.inc();
          this.log.debug({ eventId: event.id, attempt, row: claim.row }, 'nothing to do for this message');
          return { kind: 'done' };
        case 'wait':
          return { kind: 'later', inMs: 500, why: `attempt ${String(attempt - 1)} is still being recorded` };
        case 'busy':
          return { kind: 'later', inMs: claim.inMs, why: `attempt ${String(attempt)} is being sent by another consumer` };
        case 'unfinished':
        case 'claimed':
          break;
      }
      lease = new Lease(this.settings.lease, askedAt);
      lease.keep(() => this.inbox.renew(event.id, attempt), () => { context.heartbeat(); });
      if (claim.kind === 'unfinished') {
        // an earlier try of this attempt ended without an answer, or the event is older than a restore of the
        // database: ask the provider before sending anything again
        stage = 'lookup';
        if (this.accepted.has(event.id) || (await this.provider.lookup(messageId)) === 'accepted') {
          stage = 'record';
          await this.recordSent(event, attempt, messageId);
          this.log.info({ eventId: event.id, messageId, ...requestOf(message) }, 'an interrupted send had arrived; recorded as sent');
          return { kind: 'done' };
        }
      }
      stage = 'send';
      const email = render(event);
      try {
        await this.provider.send({
          from: this.settings.from, to: event.data.customerEmail, messageId, ...email,
          headers: { 'X-Oms-Event-Id': event.id, 'X-Oms-Event-Type': event.type, 'X-Oms-Order-Id': event.data.orderId },
        }, lease);
      } catch (error) {
        if (error instanceof LeaseLost) throw error;
        const failure = error instanceof SendFailure ? error : new SendFailure('transient', describe(error), { cause: error });
        return await this.failed(message, event, attempt, failure);
      }
      this.breaker.succeeded();
      stage = 'record';
      this.accepted.add(event.id);
      await this.recordSent(event, attempt, messageId);
      this.metrics.sent.inc({ type: event.type });
      this.metrics.latency.observe((Date.now() - Date.parse(event.occurredAt)) / 1000);
      this.log.info({ eventId: event.id, orderId: event.data.orderId, type: event.type, attempt, messageId, ...requestOf(message) }, 'email sent');
      return { kind: 'done' };
    } catch (error) {
      return await this.unexpected(message, event, attempt, stage, error);
    } finally {
      lease?.release();
    }
  }

  /**
   * Sends no consumer took over within `afterMs` of their lease running out (config.ts, orphans): their event will
   * not come again. Each is taken over and the provider asked; one that arrived is recorded as sent, the others are
   * counted (oms_notifications_orphaned_sends) and logged for the operator, and asked about again a sweep later.
   */
  async sweepOrphans(afterMs: number): Promise<{ recorded: number; left: number }> {
    let recorded = 0;
    let left = 0;
    for (const orphan of await this.inbox.orphans(afterMs, 500)) {
      if (!(await this.inbox.takeOver(orphan.eventId, orphan.attempts))) continue;
      const messageId = messageIdFor(orphan.eventId, this.settings.messageIdDomain);
      if (this.accepted.has(orphan.eventId) || (await this.provider.lookup(messageId)) === 'accepted') {
        if (await this.inbox.sent(orphan.eventId, messageId)) recorded += 1;
        this.accepted.delete(orphan.eventId);
        this.log.info({ eventId: orphan.eventId, messageId }, 'an orphaned send had arrived; recorded as sent');
      } else {
        left += 1;
        this.log.warn({ eventId: orphan.eventId, attempt: orphan.attempts }, 'an orphaned send never reached the provider and its event will not come again: left to the operator (docs/runbooks/restore.md)');
      }
    }
    this.metrics.orphaned.set(left);
    return { recorded, left };
  }

  /** emails the provider accepted whose SENT is not recorded yet (the database failed right after): never sent again */
  private readonly accepted = new Set<string>();

  private async recordSent(event: OrderEvent, attempt: number, messageId: string): Promise<void> {
    if (!(await this.inbox.sent(event.id, messageId))) {
      // another consumer finished this attempt first: the row is its to record
      this.log.warn({ eventId: event.id, attempt }, 'the attempt was taken over before it was recorded; left to its new owner');
    }
    this.accepted.delete(event.id);
  }

  /**
   * Anything the paths above did not expect. A dependency away or a lease lost: the message is fetched again (the
   * inbox says what is left to do). Anything else fails the message, and the partition goes on: before the attempt
   * was ours (claim), dead-lettered at once; during it (lookup, send), retried like a send that failed; after the
   * provider accepted the email (record), done: the email went out, and this process will not send it again.
   */
  private async unexpected(message: IncomingMessage, event: OrderEvent, attempt: number, stage: Stage, error: unknown): Promise<Handled> {
    if (dependencyAway(error) || (stage === 'lookup' && error instanceof SendFailure)) {
      if (error instanceof LeaseLost) this.metrics.leaseLost.inc();
      this.log.warn({ eventId: event.id, attempt, stage, err: error, ...requestOf(message) }, 'message put back: a dependency is away or the lease was lost');
      return { kind: 'later', inMs: error instanceof LeaseLost ? this.settings.lease.leaseMs : 1000, why: describe(error) };
    }
    this.metrics.errors.inc({ stage });
    this.log.error({ eventId: event.id, attempt, stage, err: error, ...requestOf(message) }, 'unexpected failure handling a message');
    const failure = new SendFailure('transient', `unexpected failure (${stage}): ${describe(error)}`, { cause: error });
    if (stage === 'record') return { kind: 'done' };
    try {
      if (stage === 'claim') {
        await this.deadLetter(message, 'unexpected-error', failure.message, event);
        return { kind: 'done' };
      }
      return await this.failed(message, event, attempt, failure);
    } catch (again) {
      if (!dependencyAway(again)) throw again;
      return { kind: 'later', inMs: 1000, why: describe(again) };
    }
  }

  private async failed(message: IncomingMessage, event: OrderEvent, attempt: number, failure: SendFailure): Promise<Handled> {
    if (failure.kind === 'permanent' || attempt > this.settings.retryDelaysMs.length) {
      await this.deadLetter(message, failure.kind === 'permanent' ? 'permanent' : 'attempts-exhausted', failure.message, event);
      return { kind: 'done' };
    }
    this.breaker.failed();
    const delay = this.settings.retryDelaysMs[attempt - 1] ?? 0;
    // the retry message first, then the row: a crash in between leaves the row SENDING, and the event comes again
    await this.producer.send({
      topic: this.settings.topics.retry, acks: -1,
      messages: [{
        key: message.key, value: message.value,
        headers: { ...message.headers, attempt: String(attempt + 1), 'due-at': String(Date.now() + delay), 'last-error': failure.message.slice(0, 500) },
      }],
    });
    await this.inbox.retrying(event.id, failure.message);
    this.metrics.retried.inc();
    this.log.warn({ eventId: event.id, attempt, nextInMs: delay, err: failure, ...requestOf(message) }, 'send failed; retry scheduled');
    return { kind: 'done' };
  }

  private async deadLetter(message: IncomingMessage, reason: 'unparseable' | 'permanent' | 'attempts-exhausted' | 'unexpected-error', error: string, event: OrderEvent | undefined): Promise<void> {
    await this.producer.send({
      topic: this.settings.topics.deadLetter, acks: -1,
      messages: [{
        key: message.key, value: message.value,
        headers: {
          ...message.headers, 'dlt-reason': reason, 'dlt-error': error.slice(0, 2000),
          'dlt-original-topic': message.topic, 'dlt-original-partition': String(message.partition), 'dlt-original-offset': message.offset,
        },
      }],
    });
    if (event) await this.inbox.deadLettered(event.id, error);
    this.metrics.deadLettered.inc({ reason });
    this.log.warn({ reason, error, topic: message.topic, partition: message.partition, offset: message.offset, eventId: event?.id, ...requestOf(message) }, 'message dead-lettered');
  }
}
