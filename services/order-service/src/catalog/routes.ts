// /api/v1/products: the public catalog (cache-aside in Redis), and staff changes to it (which invalidate the cache).
import { Router } from 'express';
import type { Pool } from 'pg';
import { z } from 'zod';
import type { JwtSettings } from '../auth/jwt.ts';
import { authenticate, principal } from '../http/auth.ts';
import { parseBody } from '../orders/schema.ts';
import type { CatalogCache } from './cache.ts';
import { listCacheKey, parseProductId, parseProductQuery, productCacheKey } from './query.ts';
import { getProduct, listProducts, putProduct } from './repository.ts';

const productBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  category: z.string().regex(/^[a-z0-9-]{1,100}$/, 'must be a category slug (a-z, 0-9, -)'),
  priceCents: z.number().int().min(0).max(100_000_000),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code').default('EUR'),
  stock: z.number().int().min(0).max(10_000_000),
});

export function catalogRouter(pool: Pool, cache: CatalogCache, jwt: JwtSettings): Router {
  const router = Router({ caseSensitive: true }); // as the gateway's locations and limits
  router.get('/', async (req, res) => {
    const q = parseProductQuery(req.query);
    res.json(await cache.get(listCacheKey(q), () => listProducts(pool, q)));
  });
  router.get('/:id', async (req, res) => {
    const id = parseProductId(req.params.id);
    res.json(await cache.get(productCacheKey(id), () => getProduct(pool, id)));
  });
  router.put('/:id', authenticate(jwt), async (req, res) => {
    principal(req, 'staff');
    const id = parseProductId(String(req.params.id));
    const { product, created } = await putProduct(pool, id, parseBody(productBody, req.body));
    await cache.invalidate(`product ${id} changed`);
    res.status(created ? 201 : 200).json(product);
  });
  return router;
}
