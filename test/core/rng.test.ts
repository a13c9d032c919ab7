import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deriveSeed, RngFactory, RngStream } from '../../src/core/rng.js';

function draws(r: RngStream, n: number): number[] {
  return Array.from({ length: n }, () => r.nextU32());
}

describe('RngStream', () => {
  it('the same seed gives the same sequence', () => {
    assert.deepEqual(draws(new RngStream(7), 100), draws(new RngStream(7), 100));
  });

  it('different seeds give different sequences', () => {
    const a = draws(new RngStream(1), 16);
    const b = draws(new RngStream(2), 16);
    assert.notDeepEqual(a, b);
    // Not just a shifted copy: almost no positions coincide.
    assert.ok(a.filter((v, i) => v === b[i]).length <= 1);
  });

  it('nextU32 returns unsigned 32-bit integers, seed 0 included', () => {
    for (const seed of [0, 1, 0xffffffff, 123456789]) {
      const r = new RngStream(seed);
      const vs = draws(r, 1000);
      for (const v of vs) assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `bad value ${v}`);
      assert.ok(new Set(vs).size > 990, 'values should rarely repeat');
    }
  });

  it('nextFloat is in [0, 1) and roughly uniform', () => {
    const r = new RngStream(99);
    const bins = new Array(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = r.nextFloat();
      assert.ok(x >= 0 && x < 1, `nextFloat ${x}`);
      bins[Math.floor(x * 10)]++;
    }
    for (const b of bins) assert.ok(Math.abs(b - n / 10) < n / 10 * 0.05, `bin count ${b}`);
  });

  it('uniform(lo, hi) stays in range', () => {
    const r = new RngStream(5);
    for (let i = 0; i < 10_000; i++) {
      const x = r.uniform(0.9, 1.1);
      assert.ok(x >= 0.9 && x <= 1.1);
    }
  });

  it('exponential(mean) has roughly that mean and is never negative', () => {
    const r = new RngStream(2024);
    const n = 200_000;
    const mean = 250;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const x = r.exponential(mean);
      assert.ok(x >= 0 && Number.isFinite(x));
      sum += x;
      sumSq += x * x;
    }
    const m = sum / n;
    // Standard error of the mean is mean/sqrt(n) ~ 0.56; allow a generous 2%.
    assert.ok(Math.abs(m - mean) / mean < 0.02, `sample mean ${m}`);
    // Exponential: variance = mean^2.
    const variance = sumSq / n - m * m;
    assert.ok(Math.abs(Math.sqrt(variance) - mean) / mean < 0.05, `sample std ${Math.sqrt(variance)}`);
  });

  it('fillBytes is deterministic for every length, including a partial last word', () => {
    for (const len of [0, 1, 3, 4, 5, 7, 8, 33, 1000]) {
      const a = new Uint8Array(len);
      const b = new Uint8Array(len);
      new RngStream(11).fillBytes(a);
      new RngStream(11).fillBytes(b);
      assert.deepEqual(a, b);
    }
  });

  it('fillBytes writes the little-endian bytes of successive nextU32 values', () => {
    const out = new Uint8Array(10);
    new RngStream(3).fillBytes(out);
    const [w0, w1, w2] = draws(new RngStream(3), 3);
    const expected = [w0, w1].flatMap((w) => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]);
    expected.push(w2 & 0xff, (w2 >>> 8) & 0xff);
    assert.deepEqual([...out], expected);
  });

  it('fillBytes produces non-trivial content', () => {
    const out = new Uint8Array(4096);
    new RngStream(1).fillBytes(out);
    assert.ok(new Set(out).size > 200);
  });
});

describe('RngFactory', () => {
  it('the same root seed and name give the same stream', () => {
    const a = new RngFactory(42).stream('box0.slot0.ssd');
    const b = new RngFactory(42).stream('box0.slot0.ssd');
    assert.deepEqual(draws(a, 50), draws(b, 50));
  });

  it('different names or different root seeds give different streams', () => {
    const f = new RngFactory(42);
    const base = draws(f.stream('box0.slot0.ssd'), 8);
    assert.notDeepEqual(base, draws(f.stream('box0.slot1.ssd'), 8));
    assert.notDeepEqual(base, draws(new RngFactory(43).stream('box0.slot0.ssd'), 8));
  });

  it('creating other streams does not perturb a stream', () => {
    const f1 = new RngFactory(9);
    const f2 = new RngFactory(9);
    const a = f1.stream('x');
    f2.stream('y').nextU32();
    f2.stream('z').nextU32();
    const b = f2.stream('x');
    assert.deepEqual(draws(a, 20), draws(b, 20));
  });

  it('property: deriveSeed is a deterministic unsigned 32-bit value; distinct names rarely collide', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.string(), (seed, name) => {
        const s1 = deriveSeed(seed, name);
        assert.equal(s1, deriveSeed(seed, name));
        assert.ok(Number.isInteger(s1) && s1 >= 0 && s1 <= 0xffffffff);
      }),
      { seed: 1, numRuns: 300 },
    );
    // Collisions across many names are rare (a 32-bit hash over 10k names: expected ~0.01).
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(deriveSeed(1, `box0.slot${i}.ssd`));
    assert.ok(seen.size >= 9_998);
  });

  it('root seeds above 2^32 are not truncated to their low 32 bits', () => {
    assert.notEqual(deriveSeed(1, 'a'), deriveSeed(1 + 2 ** 32, 'a'));
  });
});

describe('RngFactory.drew', () => {
  it('says whether any stream it handed out drew: the question the exact fast path asks', () => {
    const f = new RngFactory(3);
    const a = f.stream('a');
    f.stream('b');
    assert.equal(f.drew(), false);
    a.position();
    assert.equal(f.drew(), false, 'reading a position is no draw');
    a.uniform(0, 1);
    assert.equal(f.drew(), true);
    assert.equal(a.hasDrawn(), true);
  });
});
