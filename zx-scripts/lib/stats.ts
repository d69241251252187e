// Latency statistics shared by the benchmarks and the drills' load agents.

/** The p-th percentile of ascending samples (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

export const round1 = (n: number): number => Math.round(n * 10) / 10;

/** Seconds from `start` to `now` (ms of one clock: performance.now() unless given), to 0.1 s. */
export const secondsSince = (start: number, now = performance.now()): number => round1((now - start) / 1000);

/** p50, p95 and p99 of unsorted samples, in the samples' unit, to 0.1. */
export function latencyPercentiles(samples: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round1(percentile(sorted, 50)), p95: round1(percentile(sorted, 95)), p99: round1(percentile(sorted, 99)) };
}
