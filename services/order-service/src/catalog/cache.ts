// Cache-aside for the catalog in Redis. Entries live for a TTL with jitter, and every entry belongs to a generation
// that any product change moves on: entries of the old generation are never read again and expire. The generation is
// read before PostgreSQL is, so an answer loaded before a change can only be stored under the old generation (no
// stale entry outlives the change). Redis is an accelerator, never a dependency: any Redis error or a slow answer (the client
// fails fast, with no offline queue) is a miss, and the answer comes from PostgreSQL.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.ts';
import { CATALOG_KEY_VERSION, ttlWithJitter } from './query.ts';

const GENERATION_KEY = `oms:catalog:v${String(CATALOG_KEY_VERSION)}:generation`;

export interface CatalogCacheSettings {
  ttlSeconds: number;
  jitterSeconds: number;
}

export class CatalogCache {
  constructor(
    private readonly redis: Redis,
    private readonly settings: CatalogCacheSettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** The cached answer for `key` in the current generation, else `load()`'s, which is then stored. */
  async get<T>(key: string, load: () => Promise<T>): Promise<T> {
    let generation: string;
    let cached: string | null;
    try {
      generation = (await this.redis.get(GENERATION_KEY)) ?? '0';
      key = `${key}:g${generation}`;
      cached = await this.redis.get(key);
    } catch (error) {
      this.failed(error);
      return load();
    }
    if (cached !== null) {
      this.metrics.cache.inc({ result: 'hit' });
      return JSON.parse(cached) as T;
    }
    this.metrics.cache.inc({ result: 'miss' });
    const value = await load();
    this.redis.set(key, JSON.stringify(value), 'EX', ttlWithJitter(this.settings.ttlSeconds, this.settings.jitterSeconds))
      .catch((error: unknown) => { this.failed(error); });
    return value;
  }

  /** After a product changed (or sold out, or came back): every cached entry is out of date. Best effort. */
  async invalidate(reason: string): Promise<void> {
    try {
      await this.redis.incr(GENERATION_KEY);
    } catch (error) {
      this.metrics.cache.inc({ result: 'error' });
      this.log.warn({ err: error, reason }, 'catalog cache not invalidated: its entries stay until their TTL');
    }
  }

  private failed(error: unknown): void {
    this.metrics.cache.inc({ result: 'error' });
    this.log.debug({ err: error }, 'catalog cache unavailable: answered from PostgreSQL');
  }
}
