import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../http/problem.ts';
import { listCacheKey, parseProductId, parseProductQuery, ttlWithJitter } from './query.ts';

describe('catalog query', () => {
  it('filters, sort and pagination with defaults', () => {
    assert.deepEqual(parseProductQuery({ category: 'garden-tools', minPrice: '10.5', maxPrice: '200', available: 'true', sort: '-price', page: '2' }),
      { category: 'garden-tools', minPrice: 1050, maxPrice: 20000, available: true, sort: '-price', page: 2, pageSize: 20 });
    assert.deepEqual(parseProductQuery({}), { sort: 'id', page: 1, pageSize: 20 });
  });

  it('refuses what it does not know, repeated names, bad ranges and SQL in a filter', () => {
    for (const bad of [{ color: 'red' }, { page: ['1', '2'] }, { minPrice: '10', maxPrice: '5' }, { pageSize: '500' }, { category: "books' OR 1=1" }, { sort: 'price; DROP TABLE' }]) {
      assert.throws(() => parseProductQuery(bad), (e: unknown) => e instanceof ApiError && e.problem === 'validation-failed', JSON.stringify(bad));
    }
    assert.throws(() => parseProductId('book-1'), ApiError);
    assert.equal(parseProductId('BOOK-0001'), 'BOOK-0001');
  });

  it('the same question has the same cache key, whatever order its parameters came in', () => {
    const a = parseProductQuery({ category: 'books', sort: 'name', page: '3' });
    const b = parseProductQuery({ page: '3', sort: 'name', category: 'books' });
    assert.equal(listCacheKey(a), listCacheKey(b));
    assert.notEqual(listCacheKey(a), listCacheKey(parseProductQuery({ category: 'books', sort: 'name', page: '4' })));
  });

  it('TTL jitter stays within base..base+jitter', () => {
    assert.equal(ttlWithJitter(300, 60, () => 0), 300);
    assert.equal(ttlWithJitter(300, 60, () => 0.999999), 360);
  });
});
