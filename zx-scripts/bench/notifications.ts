// npm run bench -- notifications: event produced -> email accepted by the provider, through the notification
// service in-process against PostgreSQL, Kafka and the mail sink on loopback (the service tests' harness). Two
// measures: latency percentiles at a steady rate well below capacity, and the drain rate of a burst (the most the
// service sends per second here).
import { setTimeout as sleep } from 'node:timers/promises';
import { orderEvent, startNotificationHarness, type TestEvent } from '@oms/notification-service/test/harness';
import { latencyPercentiles, round1 } from '../lib/stats.ts';

export interface NotificationsReport {
  benchmark: 'notifications';
  at: string;
  steady: { perSecond: number; events: number; ms: { p50: number; p95: number; p99: number } };
  burst: { events: number; seconds: number; perSecond: number };
}

export async function benchNotifications(seconds: number, progress: (line: string) => void): Promise<NotificationsReport> {
  const h = await startNotificationHarness((c) => { c.kafka.concurrency = 6; });
  const at = (e: TestEvent): number | undefined => {
    const [mail] = h.sink.store.withMessageId(`${e.id}@notifications.oms.example`);
    return mail === undefined ? undefined : Date.parse(mail.at);
  };
  const drained = (events: TestEvent[], timeoutMs: number): Promise<void> => h.waitFor(`${String(events.length)} emails`, () => events.every((e) => at(e) !== undefined), timeoutMs);
  try {
    const warm = Array.from({ length: 20 }, () => orderEvent());
    await h.publish(warm);
    await drained(warm, 60_000);

    const rate = 20;
    const steady: TestEvent[] = [];
    const start = Date.now();
    for (let i = 0; i < rate * seconds; i++) {
      // on a schedule (not a fixed pause after each publish), so the rate is the one reported
      const wait = start + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      const e = orderEvent();
      steady.push(e);
      await h.publish([e]); // occurredAt is set just before, as the relay publishes right after the commit
    }
    await drained(steady, 120_000);
    const ms = latencyPercentiles(steady.map((e) => (at(e) ?? 0) - Date.parse(e.occurredAt)));
    progress(`steady ${String(rate)} events/s for ${String(seconds)} s: ${String(steady.length)} emails, event -> email p50 ${String(ms.p50)} ms  p95 ${String(ms.p95)} ms  p99 ${String(ms.p99)} ms`);

    const burst = Array.from({ length: 1000 }, () => orderEvent());
    const t0 = Date.now();
    for (let i = 0; i < burst.length; i += 100) await h.publish(burst.slice(i, i + 100));
    await drained(burst, 300_000);
    const took = (Math.max(...burst.map((e) => at(e) ?? 0)) - t0) / 1000;
    progress(`burst of ${String(burst.length)}: drained in ${String(round1(took))} s = ${String(round1(burst.length / took))} emails/s`);
    return {
      benchmark: 'notifications', at: new Date().toISOString(),
      steady: { perSecond: rate, events: steady.length, ms },
      burst: { events: burst.length, seconds: round1(took), perSecond: round1(burst.length / took) },
    };
  } finally {
    await h.stop();
  }
}
