// What a client may send to the orders API, checked with zod before anything touches the database, and the request
// fingerprint the Idempotency-Key is bound to (the same key with another body is refused with 422).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApiError } from '../http/problem.ts';

export const PRODUCT_ID = /^[A-Z0-9][A-Z0-9-]{1,63}$/;

const text = (max: number) => z.string().trim().min(1).max(max);

export const createOrderBody = z.strictObject({
  items: z.array(z.strictObject({
    productId: z.string().regex(PRODUCT_ID, 'must be a product id such as BOOK-0042'),
    quantity: z.number().int().min(1).max(1000),
  })).min(1).max(100)
    .refine((items) => new Set(items.map((i) => i.productId)).size === items.length, 'each product once (add up the quantities)'),
  shippingAddress: z.strictObject({
    name: text(200),
    line1: text(200),
    line2: text(200).optional(),
    city: text(100),
    postcode: text(20),
    country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'),
  }),
  note: text(1000).optional(),
  /** the payment method's token from the payment provider's client-side flow */
  paymentToken: z.string().regex(/^tok_[A-Za-z0-9_]{1,100}$/, 'must be a payment token (tok_...)'),
});
export type CreateOrderBody = z.infer<typeof createOrderBody>;

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,255}$/;

/** The Idempotency-Key header, required on order creation (IETF draft: a unique value per intended operation). */
export function idempotencyKey(header: string | string[] | undefined): string {
  if (header === undefined) throw new ApiError('idempotency-key-required', 'POST /orders needs an Idempotency-Key header (a fresh unique value per order, reused for its retries)');
  const value = Array.isArray(header) ? header : [header];
  if (value.length !== 1 || !IDEMPOTENCY_KEY.test(value[0] ?? '')) throw new ApiError('bad-request', 'Idempotency-Key must be one value of 8-255 letters, digits or ._:-');
  return value[0] ?? '';
}

/** Checks a body against a schema; a refusal lists every problem by path. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new ApiError('validation-failed', errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '), { errors });
}

/** JSON with object keys sorted at every level: the same request always has the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The fingerprint an Idempotency-Key is bound to: method, path and the validated body. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex');
}
