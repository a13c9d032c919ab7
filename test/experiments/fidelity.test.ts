import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fidelity } from '../../src/runtime/copy.js';
import { fidelityLine, fidelityTag, summarizeFidelity, tagOf } from '../../src/experiments/fidelity.js';

const exact: Fidelity = { mode: 'fast', exact: true, relativeError99: 0, detailedChunks: 180, totalChunks: 8192, method: 'exact: periodic steady state (period 64 chunks)' };
const est = (e: number): Fidelity => ({ mode: 'fast', exact: false, relativeError99: e, detailedChunks: 900, totalChunks: 8192, method: 'statistical: MSER-5 + batch means' });
const full: Fidelity = { mode: 'full', exact: true, relativeError99: 0, detailedChunks: 8192, totalChunks: 8192, method: 'full: every TLP simulated' };

test('one move: mode, exact or its 99.7% error as a percentage', () => {
  assert.equal(tagOf(exact), 'fast, exact');
  assert.equal(tagOf(est(0.0012)), 'fast, ±0.12%');
  assert.equal(tagOf(full), 'full, every TLP');
  assert.equal(fidelityLine(summarizeFidelity([full])), 'fidelity: full (every TLP)');
});

test('several moves: the largest error bounds their mean; chunks add up', () => {
  const s = summarizeFidelity([exact, est(0.001), est(0.003)]);
  assert.deepEqual(s, { mode: 'fast', moves: 3, exactMoves: 1, maxRelativeError99: 0.003, detailedChunks: 1980, totalChunks: 3 * 8192 });
  assert.equal(fidelityTag(s), 'fast, 1 of 3 exact, others max ±0.30%');
  assert.equal(fidelityLine(s), 'fidelity: fast (1 of 3 moves exact, others within ±0.30% at 99.7%)');
  assert.equal(fidelityTag(summarizeFidelity([est(0.001), est(0.002)])), 'fast, statistical, max ±0.20%');
  assert.equal(fidelityTag(summarizeFidelity([exact, exact])), 'fast, exact');
  assert.equal(fidelityLine(summarizeFidelity([exact, exact])), 'fidelity: fast (all 2 moves exact)');
  assert.equal(summarizeFidelity([exact, full]).mode, 'mixed');
});

test('burst granularity: full fidelity with a stated bound, never called a 99.7% interval', () => {
  const burst: Fidelity = { mode: 'full', exact: false, relativeError99: 0.03, detailedChunks: 64, totalChunks: 64, method: 'full at burst granularity: every burst simulated' };
  assert.equal(tagOf(burst), 'full, every burst, ±3.00% stated');
  const line = fidelityLine(summarizeFidelity([burst, burst]));
  assert.equal(line, "fidelity: full (every burst; within ±3.00% of per-TLP's on the checked matrix)");
  assert.doesNotMatch(line, /99\.7|statistical/);
});
