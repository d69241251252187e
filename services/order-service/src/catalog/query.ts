// GET /products: the filters a client may ask for, checked, and the cache key they map to (the same question always
// hits the same Redis key, whatever order the parameters came in).
import { z } from 'zod';
import { parseBody, PRODUCT_ID } from '../orders/schema.ts';

const SORTS = ['price', '-price', 'name', '-name', 'id'] as const;

const money = z.string().regex(/^\d{1,9}(\.\d{1,2})?$/, 'must be an amount such as 12.50').transform((v) => Math.round(Number(v) * 100));

export const productQuery = z.strictObject({
  category: z.string().regex(/^[a-z0-9-]{1,100}$/, 'must be a category slug (a-z, 0-9, -)').optional(),
  minPrice: money.optional(),
  maxPrice: money.optional(),
  available: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  sort: z.enum(SORTS).default('id'),
  page: z.coerce.number().int().min(1).max(10_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
}).refine((q) => q.minPrice === undefined || q.maxPrice === undefined || q.minPrice <= q.maxPrice, 'minPrice must not exceed maxPrice');

export type ProductQuery = z.infer<typeof productQuery>;

/** Reads a request's query (Express gives strings, or arrays for repeated names: refused). */
export function parseProductQuery(query: Record<string, unknown>): ProductQuery {
  return parseBody(productQuery, query);
}

export function parseProductId(id: string): string {
  return parseBody(z.string().regex(PRODUCT_ID, 'must be a product id such as BOOK-0042'), id);
}

/** The Redis key of a catalog question; bump CATALOG_KEY_VERSION when the cached shape changes. */
export const CATALOG_KEY_VERSION = 1;
export function listCacheKey(q: ProductQuery): string {
  const parts = [q.category ?? '*', q.minPrice ?? '', q.maxPrice ?? '', q.available === undefined ? '' : String(q.available), q.sort, q.page, q.pageSize];
  return `oms:catalog:v${String(CATALOG_KEY_VERSION)}:list:${parts.join('|')}`;
}
export const productCacheKey = (id: string): string => `oms:catalog:v${String(CATALOG_KEY_VERSION)}:product:${id}`;

/** A TTL with jitter, so entries written together do not all expire (and miss) together. */
export function ttlWithJitter(baseSeconds: number, jitterSeconds: number, random: () => number = Math.random): number {
  return baseSeconds + Math.floor(random() * (jitterSeconds + 1));
}
