import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchMeans, mser5, tQuantile } from '../../src/runtime/fast/steady-state.js';

test('tQuantile: 99.7% two-sided tends to the normal 2.968 and is wider for few degrees of freedom', () => {
  assert.ok(Math.abs(tQuantile(0.997, 1e7) - 2.9677) < 2e-3);
  assert.ok(Math.abs(tQuantile(0.95, 10) - 2.2281) < 1e-3); // table value
  assert.ok(tQuantile(0.997, 19) > tQuantile(0.997, 100));
});

test('mser5 truncates a warm-up transient and keeps a stationary series whole', () => {
  const flat = Array.from({ length: 200 }, (_, i) => 100 + ((i * 7) % 5));
  assert.equal(mser5(flat), 0);
  const warm = [...Array.from({ length: 30 }, (_, i) => 400 - i * 10), ...flat];
  const d = mser5(warm);
  assert.ok(d >= 25 && d <= 40, `truncation ${d}`);
});

test('batchMeans: mean of the last whole batches, zero error for a constant series, drift for a trend', () => {
  const c = batchMeans(Array(100).fill(5), 0, 20)!;
  assert.equal(c.mean, 5);
  assert.equal(c.stdError, 0);
  assert.equal(c.drift, 0);
  const trend = batchMeans(Array.from({ length: 100 }, (_, i) => i), 0, 20)!;
  assert.ok(trend.drift > 10);
  assert.equal(batchMeans([1, 2, 3], 0, 20), null);
});
