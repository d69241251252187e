import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, toProblem } from './problem.ts';

describe('problem documents', () => {
  it('an ApiError becomes its problem, with extensions, instance and request id', () => {
    const { document, internal } = toProblem(new ApiError('validation-failed', 'items[0].quantity must be 1-1000', { errors: [{ path: 'items.0.quantity' }] }), { instance: '/api/v1/orders', requestId: 'req-1' });
    assert.equal(internal, false);
    assert.deepEqual(document, {
      type: 'urn:oms:problem:validation-failed', title: 'Validation Failed', status: 400, detail: 'items[0].quantity must be 1-1000',
      errors: [{ path: 'items.0.quantity' }], instance: '/api/v1/orders', requestId: 'req-1',
    });
  });

  it('extensions cannot overwrite the standard members', () => {
    const { document } = toProblem(new ApiError('not-found', 'no such order', { status: 200, type: 'x' }));
    assert.equal(document.status, 404);
    assert.equal(document.type, 'urn:oms:problem:not-found');
  });

  it('body-parser errors map to 400, 413 and 415', () => {
    assert.equal(toProblem({ type: 'entity.parse.failed', status: 400 }).document.type, 'urn:oms:problem:bad-request');
    assert.equal(toProblem({ type: 'entity.too.large', status: 413 }).document.status, 413);
    assert.equal(toProblem({ type: 'charset.unsupported', status: 415 }).document.status, 415);
  });

  it('a path that is not valid percent-encoding is a 400 (the router\'s URIError)', () => {
    const decode = new URIError('URI malformed');
    Object.assign(decode, { status: 400, statusCode: 400 });
    const { document, internal } = toProblem(decode);
    assert.equal(document.status, 400);
    assert.equal(document.type, 'urn:oms:problem:bad-request');
    assert.equal(internal, false);
  });

  it('PostgreSQL data exceptions (class 22) are the client\'s 400, without the database\'s words', () => {
    for (const code of ['22008', '22P02', '22003', '22001']) {
      const error = Object.assign(new Error('date/time field value out of range: "2026-13-45" for column created_at'), { code });
      const { document, internal } = toProblem(error);
      assert.equal(document.status, 400, code);
      assert.equal(internal, false);
      assert.doesNotMatch(JSON.stringify(document), /created_at|2026-13/);
    }
    assert.equal(toProblem(Object.assign(new Error('x'), { code: '23505' })).document.status, 500, 'a constraint violation is not the client\'s');
  });

  it('anything else is a 500 that says nothing about the internals', () => {
    const { document, internal } = toProblem(new Error('relation "oms.orders" does not exist'), { requestId: 'req-2' });
    assert.equal(internal, true);
    assert.equal(document.status, 500);
    assert.doesNotMatch(JSON.stringify(document), /relation|oms\.orders/);
    assert.equal(document.requestId, 'req-2');
  });
});
