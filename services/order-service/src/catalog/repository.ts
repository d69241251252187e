// Products in PostgreSQL. The catalog is public (no Row Level Security on products); a customer sees whether a product
// is available, not the stock count, so a cached page stays right until a product sells out or comes back.
import type { Pool } from 'pg';
import { ApiError } from '../http/problem.ts';
import type { ProductQuery } from './query.ts';

export interface ProductView {
  id: string;
  name: string;
  category: string;
  priceCents: number;
  currency: string;
  available: boolean;
}

export interface ProductPage {
  items: ProductView[];
  page: number;
  pageSize: number;
  total: number;
}

interface ProductRow {
  id: string;
  name: string;
  category: string;
  price_cents: string;
  currency: string;
  stock: number;
}

const view = (r: ProductRow): ProductView => ({
  id: r.id, name: r.name, category: r.category, priceCents: Number(r.price_cents), currency: r.currency, available: r.stock > 0,
});

const ORDER_BY: Record<ProductQuery['sort'], string> = {
  id: 'id',
  price: 'price_cents, id',
  '-price': 'price_cents DESC, id',
  name: 'name, id',
  '-name': 'name DESC, id',
};

export async function listProducts(pool: Pool, q: ProductQuery): Promise<ProductPage> {
  const where = `($1::text IS NULL OR category = $1) AND ($2::bigint IS NULL OR price_cents >= $2)
    AND ($3::bigint IS NULL OR price_cents <= $3) AND ($4::boolean IS NULL OR (stock > 0) = $4)`;
  const params = [q.category ?? null, q.minPrice ?? null, q.maxPrice ?? null, q.available ?? null];
  const [{ rows }, count] = await Promise.all([
    pool.query<ProductRow>(`SELECT id, name, category, price_cents, currency, stock FROM oms.products WHERE ${where}
      ORDER BY ${ORDER_BY[q.sort]} LIMIT $5 OFFSET $6`, [...params, q.pageSize, (q.page - 1) * q.pageSize]),
    pool.query<{ n: string }>(`SELECT count(*) AS n FROM oms.products WHERE ${where}`, params),
  ]);
  return { items: rows.map(view), page: q.page, pageSize: q.pageSize, total: Number(count.rows[0]?.n ?? 0) };
}

export async function getProduct(pool: Pool, id: string): Promise<ProductView> {
  const { rows } = await pool.query<ProductRow>('SELECT id, name, category, price_cents, currency, stock FROM oms.products WHERE id = $1', [id]);
  const row = rows[0];
  if (!row) throw new ApiError('not-found', `no product ${id}`);
  return view(row);
}

export interface ProductChange {
  name: string;
  category: string;
  priceCents: number;
  currency: string;
  stock: number;
}

/** Staff: creates or replaces a product (PUT semantics); returns it and whether it was new. */
export async function putProduct(pool: Pool, id: string, p: ProductChange): Promise<{ product: ProductView; created: boolean }> {
  const { rows } = await pool.query<ProductRow & { created: boolean }>(
    `INSERT INTO oms.products (id, name, category, price_cents, currency, stock) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category, price_cents = EXCLUDED.price_cents,
       currency = EXCLUDED.currency, stock = EXCLUDED.stock, version = products.version + 1, updated_at = now()
     RETURNING id, name, category, price_cents, currency, stock, (xmax = 0) AS created`,
    [id, p.name, p.category, p.priceCents, p.currency, p.stock],
  );
  const row = rows[0];
  if (!row) throw new Error(`internal: no row back from the upsert of ${id}`);
  return { product: view(row), created: row.created };
}
