// The Express application: request ids, JSON logs and metrics for every request, the API under /api/v1, health and
// metrics endpoints, and one error handler that answers every failure with an RFC 9457 problem document.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { JwtSettings } from '../auth/jwt.ts';
import type { CatalogCache } from '../catalog/cache.ts';
import { catalogRouter } from '../catalog/routes.ts';
import type { Metrics } from '../ops/metrics.ts';
import { ordersRouter } from '../orders/routes.ts';
import type { OrdersDeps } from '../orders/service.ts';
import { authenticate } from './auth.ts';
import { assignRequestId, requestIdOf } from './request-id.ts';
import { isDatabaseUnavailable } from '@oms/service-common/unavailable';
import { openApiDocument } from './openapi.ts';
import { ApiError, toProblem } from './problem.ts';

export interface AppDeps extends OrdersDeps {
  jwt: JwtSettings;
  catalog: CatalogCache;
  metrics: Metrics;
  log: Logger;
  /** false while starting and once shutdown began: /readyz says 503, the gateway stops sending requests */
  ready: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
}


/** Paths of the API and the methods each answers (anything else on them is 405, not 404). */
const ROUTES: [RegExp, string[]][] = [
  [/^\/api\/v1\/orders\/?$/, ['GET', 'POST']],
  [/^\/api\/v1\/orders\/[^/]+\/?$/, ['GET']],
  [/^\/api\/v1\/orders\/[^/]+\/history\/?$/, ['GET']],
  [/^\/api\/v1\/orders\/[^/]+\/(cancel|ship|deliver)\/?$/, ['POST']],
  [/^\/api\/v1\/products\/?$/, ['GET']],
  [/^\/api\/v1\/products\/[^/]+\/?$/, ['GET', 'PUT']],
];

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // paths match as the gateway matches them, case and all: a path it does not count as an order is not one here
  app.set('case sensitive routing', true);

  app.use((req, res, next) => {
    const id = assignRequestId(req);
    res.set('X-Request-Id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route ? `${req.baseUrl}${String((req.route as { path: unknown }).path)}`.replace(/(.)\/$/, '$1') : 'unmatched';
      deps.metrics.httpDuration.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      if (req.path === '/livez' || req.path === '/readyz' || req.path === '/metrics') return;
      deps.log.info({ requestId: id, method: req.method, route, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  });

  app.get('/livez', (_req, res) => { res.json({ status: 'alive' }); });
  app.get('/readyz', async (_req, res) => {
    const r = await deps.ready();
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  // bodies: JSON only, small; a POST or PUT with a body of another type is refused before parsing
  app.use('/api/v1', (req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) throw new ApiError('unsupported-media-type', 'request bodies must be application/json');
    next();
  }, express.json({ limit: '32kb', strict: true, type: 'application/json' }));

  app.get('/api/v1/openapi.json', (_req, res) => { res.json(openApiDocument()); });
  app.use('/api/v1/products', catalogRouter(deps.pool, deps.catalog, deps.jwt));
  app.use('/api/v1/orders', authenticate(deps.jwt), ordersRouter(deps));

  app.use((req) => {
    const allowed = ROUTES.find(([pattern]) => pattern.test(req.path))?.[1];
    if (allowed) throw new ApiError('method-not-allowed', `${req.method} is not allowed here (allowed: ${allowed.join(', ')})`, { allow: allowed });
    throw new ApiError('not-found', `no such resource: ${req.path}`);
  });

  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error); // the response is under way: Express ends the connection
      return;
    }
    const requestId = requestIdOf(req);
    if (isDatabaseUnavailable(error)) {
      deps.log.warn({ err: error, requestId, path: req.path }, 'PostgreSQL unavailable');
      error = new ApiError('unavailable', 'the order database cannot be reached right now; retry shortly');
    }
    const { document, internal } = toProblem(error, { instance: req.originalUrl, ...(requestId === undefined ? {} : { requestId }) });
    if (internal) deps.log.error({ err: error, requestId, path: req.path }, 'request failed');
    if (document.status === 401) res.set('WWW-Authenticate', 'Bearer realm="oms"');
    if (document.status === 405 && Array.isArray(document.allow)) res.set('Allow', (document.allow as string[]).join(', '));
    if ((document.status === 409 && document.type.endsWith(':request-in-flight')) || document.status === 503) res.set('Retry-After', '1');
    res.status(document.status).type('application/problem+json').send(JSON.stringify(document));
  });
  return app;
}
