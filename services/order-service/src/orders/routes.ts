// /api/v1/orders: thin handlers over service.ts (placing orders) and repository.ts (reading and moving them).
// Customers act on their own orders only (checked here, and by Row Level Security underneath); staff see all.
import { Router, type Request } from 'express';
import { z } from 'zod';
import { principal } from '../http/auth.ts';
import { ApiError } from '../http/problem.ts';
import { requestIdOf } from '../http/request-id.ts';
import { getOrder, inScope, listOrders, moveOrder, orderHistory, type Scope } from './repository.ts';
import { createOrderBody, idempotencyKey, parseBody } from './schema.ts';
import { finishKey, placeOrder, responseFor, type OrdersDeps } from './service.ts';
import type { OrderStatus } from './state-machine.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function orderId(req: Request): string {
  const id = String(req.params.id);
  if (!UUID.test(id)) throw new ApiError('bad-request', `${JSON.stringify(id.slice(0, 64))} is not an order id (a UUID)`);
  return id;
}

function scopeOf(req: Request): Scope {
  const p = principal(req);
  const requestId = requestIdOf(req);
  return { ...(p.role === 'staff' ? { actor: 'staff', customerId: '' } : { actor: 'customer', customerId: p.subject }), ...(requestId === undefined ? {} : { requestId }) };
}

const listQuery = z.strictObject({
  customer: z.string().regex(/^[A-Za-z0-9._:@-]{1,100}$/, 'must be a customer id').optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(200).optional(),
});

/** Optional body of a move: the version the client last saw (optimistic locking). */
const moveBody = z.strictObject({ version: z.number().int().min(1).optional() });

export function ordersRouter(deps: OrdersDeps): Router {
  const router = Router({ caseSensitive: true }); // as the gateway's locations and limits

  router.post('/', async (req, res) => {
    const p = principal(req, 'customer');
    if (p.email === undefined) throw new ApiError('forbidden', 'ordering needs the email claim in the token: the order is confirmed to that address');
    const key = idempotencyKey(req.headers['idempotency-key']);
    const body = parseBody(createOrderBody, req.body);
    const result = await placeOrder(deps, { id: p.subject, email: p.email }, key, body, req.originalUrl, requestIdOf(req));
    const id = (result.body as { id?: unknown; order?: { id?: unknown } }).id ?? (result.body as { order?: { id?: unknown } }).order?.id;
    if (typeof id === 'string') res.location(`/api/v1/orders/${id}`);
    if (result.replayed) res.set('Idempotent-Replayed', 'true');
    res.status(result.status).type(result.status >= 400 ? 'application/problem+json' : 'application/json').send(JSON.stringify(result.body));
  });

  router.get('/', async (req, res) => {
    const scope = scopeOf(req);
    const q = parseBody(listQuery, req.query);
    if (scope.actor === 'customer' && q.customer !== undefined && q.customer !== scope.customerId) {
      throw new ApiError('forbidden', 'a customer may list only their own orders');
    }
    const customer = scope.actor === 'customer' ? scope.customerId : q.customer;
    res.json(await inScope(deps.pool, scope, (c) => listOrders(c, customer, q.limit, q.after)));
  });

  router.get('/:id', async (req, res) => {
    const id = orderId(req);
    res.json(await inScope(deps.pool, scopeOf(req), (c) => getOrder(c, id)));
  });

  router.get('/:id/history', async (req, res) => {
    const id = orderId(req);
    res.json({ items: await inScope(deps.pool, scopeOf(req), (c) => orderHistory(c, id)) });
  });

  const move = (to: OrderStatus) => async (req: Request, res: import('express').Response): Promise<void> => {
    const id = orderId(req);
    const scope = scopeOf(req);
    const { version } = parseBody(moveBody, req.body ?? {});
    const order = await inScope(deps.pool, scope, async (c) => {
      const before = await getOrder(c, id);
      const moved = await moveOrder(c, id, to, scope.actor, version, before);
      // an order leaving PENDING_PAYMENT this way (cancelled while its charge was in flight, or after its request
      // died): the key that created it ends with the order as it now is, not IN_FLIGHT for ever
      if (before.status === 'PENDING_PAYMENT') await finishKey(c, id, responseFor(moved, '/api/v1/orders'));
      return moved;
    });
    if (to === 'CANCELLED') await deps.catalog.invalidate(`order ${id} cancelled`);
    res.json(order);
  };
  router.post('/:id/cancel', move('CANCELLED'));
  router.post('/:id/ship', move('SHIPPED'));
  router.post('/:id/deliver', move('DELIVERED'));
  return router;
}
