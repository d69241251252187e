// Deleting (or moving) rows a batch at a time: one statement a batch, each its own short transaction, until a batch
// comes back short. What the purges of both services do (order-service ops/retention.ts, notification-service inbox.ts).

/** Runs `step` (which handles at most `batch` rows and says how many) until it handles fewer; returns the total. */
export async function inBatches(batch: number, step: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await step();
    total += n;
    if (n < batch) return total;
  }
}
