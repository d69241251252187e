// The purge of rows nothing needs any more, so that tables do not grow for ever: outbox events published long ago
// (Kafka has them), and finished Idempotency-Keys past their retention (a retry after that is a new order). In
// batches, as the system scope (the outbox's DELETE policy: migrations/0006); every instance may run it at once.
import type { Pool } from 'pg';
import { inBatches } from '@oms/service-common/batches';
import type { Config } from '../config.ts';
import type { Metrics } from './metrics.ts';
import { inScope } from '../orders/repository.ts';

export interface Purged {
  outbox: number;
  idempotencyKeys: number;
}

const STATEMENTS = {
  outbox: `DELETE FROM oms.outbox WHERE id IN (
             SELECT id FROM oms.outbox WHERE published_at < now() - make_interval(days => $1) LIMIT $2)`,
  idempotencyKeys: `DELETE FROM oms.idempotency_keys WHERE (customer_id, key) IN (
             SELECT customer_id, key FROM oms.idempotency_keys WHERE state = 'DONE' AND updated_at < now() - make_interval(hours => $1) LIMIT $2)`,
} as const;

export async function purgeOnce(pool: Pool, retention: Config['retention'], metrics: Metrics): Promise<Purged> {
  const purged: Purged = { outbox: 0, idempotencyKeys: 0 };
  const ages: Record<keyof Purged, number> = { outbox: retention.outboxDays, idempotencyKeys: retention.idempotencyKeyHours };
  for (const table of ['outbox', 'idempotencyKeys'] as const) {
    // one batch a transaction: short locks, and a stop between two batches leaves nothing half done
    purged[table] = await inBatches(retention.batch, async () => {
      const n = await inScope(pool, { actor: 'system', customerId: '' }, async (c) => (await c.query(STATEMENTS[table], [ages[table], retention.batch])).rowCount ?? 0);
      metrics.purged.inc({ table }, n);
      return n;
    });
  }
  return purged;
}
