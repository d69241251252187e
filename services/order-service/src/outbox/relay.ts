// The outbox relay: events written in the orders' own transactions are published to Kafka (idempotent producer,
// acks=all; key = order id, so one order's events stay in order on one partition; the event id in a header), then
// marked published in the same transaction that read them. Kafka's ack comes before the mark: a crash in between
// publishes an event again, never loses one (consumers deduplicate by event id).
//
// Several instances (app1, app2) may run: a batch is taken under a transaction-level advisory lock, so one relay
// publishes at a time and events leave in the order they were written. A failed batch (Kafka or PostgreSQL away,
// a failover) is rolled back and retried with backoff; the relay never stops on its own.
//
// One send() per partition: kafkajs 2.2.4 retries a send only on the brokers that have not answered yet, so when a
// partition's leader dies mid-send and its partitions move to a broker that already acknowledged its own share, the
// moved messages are never sent and send() still resolves (sendMessages.js, `brokersWithoutResponse`; found by the
// kafka-controller-kill drill under load: 2 events acknowledged by send() were never in the topic). A send that
// touches one partition cannot be split that way: the relay places each event on its key's partition itself (the
// producer's own partitioner, the partition count asked from Kafka) and sends each partition's events on their own.
import { Partitioners, type Admin, type PartitionMetadata, type Producer } from 'kafkajs';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.ts';
import { inScope } from '../orders/repository.ts';

type Message = { key: string; value: string; headers: Record<string, string>; partition?: number };

const RELAY_LOCK = 0x6f6d735f6f7574; // "oms_out"
const partitionOf = Partitioners.DefaultPartitioner();

export interface RelaySettings {
  topic: string;
  pollMs: number;
  batchSize: number;
}

interface OutboxRow {
  id: string;
  aggregate_id: string;
  event_type: string;
  payload: unknown;
  created_at: Date;
  /** the request whose transaction wrote it (migrations/0008_request_id.sql); null for the system's own moves */
  request_id: string | null;
}

export class OutboxRelay {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private partitions: PartitionMetadata[] | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly producer: Pick<Producer, 'send'>,
    private readonly admin: Pick<Admin, 'fetchTopicMetadata'>,
    private readonly settings: RelaySettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Finishes the batch in hand and stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** Publishes one batch; returns how many events went out (0: nothing pending, or another relay holds the lock). */
  async relayOnce(): Promise<number> {
    const result = await inScope(this.pool, { actor: 'system', customerId: '' }, async (client) => {
      const { rows: [lock] } = await client.query<{ held: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS held', [RELAY_LOCK]);
      if (!lock?.held) return undefined;
      // what waits, read before the send: while Kafka refuses, the gauges still show the backlog and its age
      await this.measureBacklog(client);
      const { rows } = await client.query<OutboxRow>(
        `SELECT id, aggregate_id, event_type, payload, created_at, request_id FROM oms.outbox WHERE published_at IS NULL
         ORDER BY created_at, id LIMIT $1`,
        [this.settings.batchSize],
      );
      if (rows.length > 0) {
        const { topic } = this.settings;
        const partitionMetadata = await this.partitionsOfTopic();
        const byPartition = new Map<number, Message[]>();
        for (const r of rows) {
          const message: Message = {
            key: r.aggregate_id,
            value: JSON.stringify({ id: r.id, type: r.event_type, occurredAt: r.created_at.toISOString(), data: r.payload }),
            // the request that wrote the event: the notification service logs it with the email
            headers: { 'event-id': r.id, 'event-type': r.event_type, ...(r.request_id ? { 'request-id': r.request_id } : {}) },
          };
          message.partition = partitionOf({ topic, partitionMetadata, message });
          byPartition.set(message.partition, [...(byPartition.get(message.partition) ?? []), message]);
        }
        // partitions in parallel (each has one send in flight, so its sequence numbers stay in order); any failure
        // rolls the whole batch back, and the partitions that made it are published again (consumers deduplicate)
        await Promise.all([...byPartition.values()].map((messages) => this.producer.send({ topic, acks: -1, messages })));
        await client.query('UPDATE oms.outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [rows.map((r) => r.id)]);
        await this.measureBacklog(client);
      }
      return { published: rows.length };
    });
    if (!result) return 0; // another instance's relay holds the lock
    this.metrics.outboxPublished.inc(result.published);
    return result.published;
  }

  /** Sets the backlog gauges: events not yet published, and the age of the oldest (the partial index answers). */
  private async measureBacklog(client: { query: Pool['query'] }): Promise<void> {
    const { rows: [b] } = await client.query<{ n: string; age: number }>(
      `SELECT count(*) AS n, coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS age
       FROM oms.outbox WHERE published_at IS NULL`);
    this.metrics.outboxBacklog.set(Number(b?.n ?? 0));
    this.metrics.outboxOldest.set(Math.max(0, b?.age ?? 0));
  }

  /** The topic's partitions, asked once and again after any failed batch (a topic may have grown). */
  private async partitionsOfTopic(): Promise<PartitionMetadata[]> {
    if (!this.partitions) {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: [this.settings.topic] });
      const partitions = topics.find((t) => t.name === this.settings.topic)?.partitions ?? [];
      if (partitions.length === 0) throw new Error(`Kafka names no partitions for ${this.settings.topic}`);
      this.partitions = partitions;
    }
    return this.partitions;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let published = 0;
      try {
        published = await this.relayOnce();
        if (failures > 0) this.log.info({ failures }, 'outbox relay publishing again');
        failures = 0;
      } catch (error) {
        failures += 1;
        this.partitions = undefined;
        this.log.warn({ err: error, failures }, 'outbox relay batch failed; retrying');
      }
      // a full batch means more may be waiting: go on at once; otherwise poll (backing off while failing)
      if (published < this.settings.batchSize || failures > 0) {
        await this.pause(failures > 0 ? Math.min(this.settings.pollMs * 2 ** failures, 5000) : this.settings.pollMs);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void { clearTimeout(timer); resolve(); }
      this.wake = done;
    });
  }
}
