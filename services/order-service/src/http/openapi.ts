// The API's OpenAPI 3.1 document (GET /api/v1/openapi.json). Request bodies are generated from the same zod schemas
// that check the requests, so the document cannot drift from what the service accepts.
import { z } from 'zod';
import { createOrderBody } from '../orders/schema.ts';
import { ORDER_STATUSES } from '../orders/state-machine.ts';
import { PROBLEMS, PROBLEM_TYPE_BASE } from './problem.ts';

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const problem = { $ref: '#/components/schemas/Problem' };
const problems = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { description: 'problem', content: { 'application/problem+json': { schema: problem } } }]));
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const secured = [{ bearer: [] }];

export function openApiDocument(): Record<string, unknown> {
  const order = {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' }, customerId: { type: 'string' }, customerEmail: { type: ['string', 'null'], format: 'email' }, status: { enum: [...ORDER_STATUSES] },
      totalCents: { type: 'integer' }, currency: { type: 'string' }, version: { type: 'integer' },
      createdAt: { type: 'string', format: 'date-time' }, updatedAt: { type: 'string', format: 'date-time' },
      items: { type: 'array', items: { type: 'object', properties: { productId: { type: 'string' }, quantity: { type: 'integer' }, unitPriceCents: { type: 'integer' } } } },
    },
  };
  const move = (summary: string) => ({
    post: { summary, security: secured, parameters: [id], requestBody: { required: false, ...json({ type: 'object', properties: { version: { type: 'integer', minimum: 1 } }, additionalProperties: false }) },
      responses: { 200: { description: 'the order after the move', ...json(order) }, ...problems(400, 401, 403, 404, 409) } },
  });
  return {
    openapi: '3.1.0',
    info: { title: 'OMS order service', version: '1' },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (RS256)' } },
      schemas: {
        Problem: {
          type: 'object', description: `RFC 9457; type is ${PROBLEM_TYPE_BASE}<name>, one of: ${Object.keys(PROBLEMS).join(', ')}`,
          properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, instance: { type: 'string' }, requestId: { type: 'string' } },
        },
        Order: order,
        CreateOrder: z.toJSONSchema(createOrderBody, { io: 'input' }),
      },
    },
    paths: {
      '/orders': {
        post: {
          summary: 'Place an order (stock reserved, payment charged)', security: secured,
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,255}$' } }],
          requestBody: { required: true, ...json({ $ref: '#/components/schemas/CreateOrder' }) },
          responses: {
            201: { description: 'confirmed (paid)', ...json(order) }, 202: { description: 'accepted, payment pending', ...json(order) },
            ...problems(400, 401, 402, 403, 409, 413, 415, 422, 503),
          },
        },
        get: {
          summary: 'List orders, newest first (customers: their own; staff: all or ?customer=)', security: secured,
          parameters: [{ name: 'customer', in: 'query', schema: { type: 'string' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100 } }, { name: 'after', in: 'query', schema: { type: 'string' } }],
          responses: { 200: { description: 'a page', ...json({ type: 'object', properties: { items: { type: 'array', items: order }, next: { type: 'string' } } }) }, ...problems(400, 401, 403) },
        },
      },
      '/orders/{id}': { get: { summary: 'One order', security: secured, parameters: [id], responses: { 200: { description: 'the order', ...json(order) }, ...problems(400, 401, 404) } } },
      '/orders/{id}/history': { get: { summary: 'Its status changes', security: secured, parameters: [id], responses: { 200: { description: 'history' }, ...problems(400, 401, 404) } } },
      '/orders/{id}/cancel': move('Cancel (customer or staff, before shipping)'),
      '/orders/{id}/ship': move('Mark shipped (staff)'),
      '/orders/{id}/deliver': move('Mark delivered (staff)'),
      '/products': {
        get: {
          summary: 'The catalog (cached)',
          parameters: ['category', 'minPrice', 'maxPrice', 'available', 'sort', 'page', 'pageSize'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          responses: { 200: { description: 'a page of products' }, ...problems(400) },
        },
      },
      '/products/{id}': {
        get: { summary: 'One product (cached)', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'the product' }, ...problems(400, 404) } },
        put: { summary: 'Create or replace a product (staff)', security: secured, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'replaced' }, 201: { description: 'created' }, ...problems(400, 401, 403) } },
      },
    },
  };
}
