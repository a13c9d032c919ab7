import { concat } from '../helpers/bytes.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expectedPattern, PAGE_BYTES, patternBytes, SparseMemory } from '../../src/devices/sparse-memory.js';

function bytes(n: number, seed: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (seed + i * 13) & 0xff;
  return d;
}

describe('SparseMemory basics', () => {
  it('unwritten memory reads as zero and costs nothing', () => {
    const m = new SparseMemory('m', 256e9);
    assert.deepEqual(m.read(0, 64), new Uint8Array(64));
    assert.deepEqual(m.read(200e9, 4096), new Uint8Array(4096));
    assert.equal(m.residentBytes(), 0, 'reads of unwritten, unpatterned memory materialize nothing');
  });

  it('reads back what was written, within a page', () => {
    const m = new SparseMemory('m', 1 << 20);
    const d = bytes(100, 1);
    m.write(1000, d);
    assert.deepEqual(m.read(1000, 100), d);
    assert.deepEqual(m.read(990, 10), new Uint8Array(10));
    assert.equal(m.read(1100, 1)[0], 0);
    assert.equal(m.residentBytes(), PAGE_BYTES);
  });

  it('writes and reads across page boundaries', () => {
    const m = new SparseMemory('m', 4 * PAGE_BYTES);
    const d = bytes(PAGE_BYTES + 200, 7);
    const addr = PAGE_BYTES - 100; // spans pages 0, 1 and 2
    m.write(addr, d);
    assert.deepEqual(m.read(addr, d.length), d);
    assert.deepEqual(m.read(PAGE_BYTES - 1, 2), d.subarray(99, 101));
    assert.equal(m.residentBytes(), 3 * PAGE_BYTES);
    const out = new Uint8Array(d.length + 20);
    m.readInto(addr - 10, out);
    assert.deepEqual(out.subarray(10, 10 + d.length), d);
    assert.deepEqual(out.subarray(0, 10), new Uint8Array(10));
  });

  it('readInto overwrites every byte of the destination, zeros included', () => {
    const m = new SparseMemory('m', 4 * PAGE_BYTES);
    m.write(PAGE_BYTES + 10, bytes(20, 4));
    const out = new Uint8Array(2 * PAGE_BYTES).fill(0xff);
    m.readInto(PAGE_BYTES / 2, out);
    const want = new Uint8Array(2 * PAGE_BYTES);
    want.set(bytes(20, 4), PAGE_BYTES / 2 + 10);
    assert.deepEqual(out, want);
  });

  it('later writes overwrite earlier ones', () => {
    const m = new SparseMemory('m', 1 << 20);
    m.write(0, bytes(256, 1));
    m.write(100, bytes(10, 99));
    const r = m.read(0, 256);
    assert.deepEqual(r.subarray(100, 110), bytes(10, 99));
    assert.deepEqual(r.subarray(0, 100), bytes(256, 1).subarray(0, 100));
  });

  it('rejects accesses outside 0..size with a RangeError naming the memory', () => {
    const m = new SparseMemory('flash', 1000);
    assert.throws(() => m.read(999, 2), /flash/);
    assert.throws(() => m.read(-1, 1), RangeError);
    assert.throws(() => m.write(1000, new Uint8Array(1)), RangeError);
    assert.throws(() => m.fillPattern(0, 1001, 1), RangeError);
    assert.doesNotThrow(() => m.read(0, 1000));
    assert.doesNotThrow(() => m.write(1000, new Uint8Array(0)));
  });

  it('property: matches a flat array model under random writes and reads', () => {
    const size = 3 * PAGE_BYTES + 123;
    fc.assert(
      fc.property(
        fc.array(fc.record({ addr: fc.integer({ min: 0, max: size - 1 }), len: fc.integer({ min: 0, max: 2 * PAGE_BYTES }), seed: fc.nat(255) }), { maxLength: 12 }),
        fc.integer({ min: 0, max: size - 1 }),
        fc.integer({ min: 0, max: 2 * PAGE_BYTES }),
        (writes, ra, rl) => {
          const m = new SparseMemory('m', size);
          const model = new Uint8Array(size);
          const touched = new Set<number>();
          for (const w of writes) {
            const len = Math.min(w.len, size - w.addr);
            const d = bytes(len, w.seed);
            m.write(w.addr, d);
            model.set(d, w.addr);
            for (let p = Math.floor(w.addr / PAGE_BYTES); len > 0 && p <= Math.floor((w.addr + len - 1) / PAGE_BYTES); p++) touched.add(p);
          }
          const len = Math.min(rl, size - ra);
          assert.deepEqual(m.read(ra, len), model.subarray(ra, ra + len));
          assert.equal(m.residentBytes(), touched.size * PAGE_BYTES, 'only touched pages are resident');
        },
      ),
      { seed: 11, numRuns: 60 },
    );
  });
});

describe('SparseMemory patterns', () => {
  it('fillPattern content equals expectedPattern for any sub-range (property)', () => {
    const m = new SparseMemory('m', 1 << 30);
    const start = 12345 * 4; // not page aligned
    const len = 5 * PAGE_BYTES + 1000;
    const seed = 0xdead;
    m.fillPattern(start, len, seed);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: len - 1 }), fc.integer({ min: 1, max: 3 * 4096 }), (off, n) => {
        const k = Math.min(n, len - off);
        assert.deepEqual(m.read(start + off, k), expectedPattern(seed, start + off, k));
      }),
      { seed: 5, numRuns: 150 },
    );
  });

  it('the pattern depends only on (seed, absolute offset) and differs between seeds and blocks', () => {
    const a = expectedPattern(1, 8192, 4096);
    const b = new Uint8Array(100);
    patternBytes(1, 8192 + 1000, b);
    assert.deepEqual(b, a.subarray(1000, 1100));
    assert.notDeepEqual(expectedPattern(2, 8192, 64), a.subarray(0, 64));
    assert.notDeepEqual(expectedPattern(1, 0, 64), expectedPattern(1, 4096, 64));
    assert.ok(new Set(a).size > 200, 'not a trivial pattern');
    // Far offsets (blocks beyond 2^32) work too.
    const far = 2 ** 45;
    assert.deepEqual(expectedPattern(3, far + 10, 20), expectedPattern(3, far, 30).subarray(10, 30));
  });

  it('a pattern region materializes lazily; bytes outside it stay zero', () => {
    const m = new SparseMemory('m', 256e9);
    const len = 1 << 30;
    m.fillPattern(0, len, 42);
    assert.equal(m.residentBytes(), 0, 'filling 1 GiB costs nothing up front');
    assert.deepEqual(m.read(len - 16, 32).subarray(0, 16), expectedPattern(42, len - 16, 16));
    assert.deepEqual(m.read(len - 16, 32).subarray(16), new Uint8Array(16));
    assert.ok(m.residentBytes() <= 2 * PAGE_BYTES);
  });

  it('writes inside a pattern region override it; the rest of the page keeps the pattern', () => {
    const m = new SparseMemory('m', 1 << 20);
    m.fillPattern(0, 3 * PAGE_BYTES, 9);
    const d = bytes(50, 3);
    m.write(PAGE_BYTES + 10, d);
    const r = m.read(PAGE_BYTES, 100);
    const want = expectedPattern(9, PAGE_BYTES, 100);
    want.set(d, 10);
    assert.deepEqual(r, want);
  });

  it('fillPattern over already-written pages rewrites them; a later pattern wins over an earlier one', () => {
    const m = new SparseMemory('m', 1 << 20);
    m.write(100, bytes(1000, 1)); // page 0 materialized
    m.fillPattern(0, 2 * PAGE_BYTES, 5);
    assert.deepEqual(m.read(0, 2000), expectedPattern(5, 0, 2000));
    m.fillPattern(PAGE_BYTES - 50, 100, 6); // overlaps page 0 (resident) and page 1 (not yet)
    assert.deepEqual(m.read(PAGE_BYTES - 60, 120), concat(expectedPattern(5, PAGE_BYTES - 60, 10), expectedPattern(6, PAGE_BYTES - 50, 100), expectedPattern(5, PAGE_BYTES + 50, 10)));
  });

  it('a destination written right keeps its pages as the pattern, not their bytes; a wrong byte keeps its page; reads never change', () => {
    const m = new SparseMemory('dst', 16 * PAGE_BYTES);
    const shift = 7 * 4096 - 3 * PAGE_BYTES; // the source range started at 7 blocks, this one at 3 pages
    m.expectPattern(3 * PAGE_BYTES, 4 * PAGE_BYTES, 11, shift);
    assert.deepEqual(m.read(3 * PAGE_BYTES, 64), new Uint8Array(64), 'an expectation alone changes nothing: unwritten bytes read zero');
    const right = expectedPattern(11, 3 * PAGE_BYTES + shift, 4 * PAGE_BYTES);
    // Written in TLP-sized pieces out of order, as DMA does; the last page gets one wrong byte.
    const wrong = right.slice();
    wrong[3 * PAGE_BYTES + 100] ^= 0xff;
    const order = [...Array(4 * 64).keys()].reverse();
    for (const i of order) m.write(3 * PAGE_BYTES + i * 1024, wrong.subarray(i * 1024, (i + 1) * 1024));
    assert.equal(m.residentBytes(), PAGE_BYTES, 'three right pages keep no bytes; the wrong one keeps its own');
    assert.deepEqual(m.read(3 * PAGE_BYTES, 4 * PAGE_BYTES), wrong);
    // A write into a kept page materializes it from the pattern; right again, it is kept again.
    m.write(3 * PAGE_BYTES + 10, new Uint8Array([1, 2, 3]));
    const now = wrong.slice();
    now.set([1, 2, 3], 10);
    assert.deepEqual(m.read(3 * PAGE_BYTES, 4 * PAGE_BYTES), now);
    m.write(3 * PAGE_BYTES + 10, right.subarray(10, 13));
    assert.equal(m.residentBytes(), PAGE_BYTES);
    assert.deepEqual(m.read(3 * PAGE_BYTES, PAGE_BYTES), right.subarray(0, PAGE_BYTES));
    assert.deepEqual(m.dataRanges(), [{ start: 3 * PAGE_BYTES, end: 7 * PAGE_BYTES }]);
  });

  it('a pattern laid over kept pages replaces them; a copy by reference over part of one copies bytes instead', () => {
    const m = new SparseMemory('dst', 8 * PAGE_BYTES);
    m.expectPattern(0, 4 * PAGE_BYTES, 4, 0);
    m.write(0, expectedPattern(4, 0, 4 * PAGE_BYTES));
    assert.equal(m.residentBytes(), 0);
    m.fillPattern(PAGE_BYTES / 2, 2 * PAGE_BYTES, 9); // half of page 0, all of page 1, half of page 2
    const want = concat(expectedPattern(4, 0, PAGE_BYTES / 2), expectedPattern(9, PAGE_BYTES / 2, 2 * PAGE_BYTES), expectedPattern(4, 2.5 * PAGE_BYTES, 1.5 * PAGE_BYTES));
    assert.deepEqual(m.read(0, 4 * PAGE_BYTES), want);
    const src = new SparseMemory('src', 8 * PAGE_BYTES);
    src.fillPattern(0, 8 * PAGE_BYTES, 21);
    m.copyFrom(src, 0, 3 * PAGE_BYTES + 100, PAGE_BYTES); // over the kept page 3 in part, and page 4
    assert.deepEqual(m.read(3 * PAGE_BYTES, 2 * PAGE_BYTES), concat(expectedPattern(4, 3 * PAGE_BYTES, 100), expectedPattern(21, 0, PAGE_BYTES), new Uint8Array(PAGE_BYTES - 100)));
  });
});
