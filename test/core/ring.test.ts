import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NumberRing, Ring } from '../../src/core/ring.js';

describe('Ring', () => {
  it('is a FIFO: shift returns elements in push order, undefined when empty', () => {
    const r = new Ring<number>(2);
    assert.equal(r.shift(), undefined);
    assert.equal(r.peek(), undefined);
    for (let i = 0; i < 5; i++) r.push(i);
    assert.equal(r.length, 5);
    assert.equal(r.peek(), 0);
    assert.equal(r.at(4), 4);
    assert.equal(r.at(5), undefined);
    assert.deepEqual([r.shift(), r.shift()], [0, 1]);
    assert.equal(r.length, 3);
  });

  it('property: behaves like an array used with push and shift, across wrap-around and growth', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const r = new Ring<number>(1);
        const model: number[] = [];
        for (const op of ops) {
          if (op < 0) assert.equal(r.shift(), model.shift());
          else {
            r.push(op);
            model.push(op);
          }
          assert.equal(r.length, model.length);
          assert.equal(r.peek(), model[0]);
          for (let i = 0; i < model.length; i++) assert.equal(r.at(i), model[i]);
        }
      }),
      { seed: 3, numRuns: 200 },
    );
  });
});

describe('NumberRing', () => {
  it('property: push, shift and drop behave like an array, across wrap-around and growth (times beyond 2^31 kept exactly)', () => {
    const op = fc.oneof(fc.double({ min: 0, max: 2 ** 50, noNaN: true }), fc.constant(-1), fc.integer({ min: -20, max: -2 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const r = new NumberRing(1);
        const model: number[] = [];
        for (const o of ops) {
          if (o === -1) assert.equal(r.shift(), model.length > 0 ? model.shift() : NaN);
          else if (o < -1) {
            // drop(k) removes the k oldest
            const k = -o - 1;
            r.drop(k);
            model.splice(0, k);
          } else {
            r.push(o);
            model.push(o);
          }
          assert.equal(r.length, model.length);
          for (let i = 0; i < model.length; i++) assert.equal(r.at(i), model[i]);
        }
      }),
      { seed: 5, numRuns: 200 },
    );
  });
});
