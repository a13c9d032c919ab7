import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { simdBlocks } from '../../src/devices/pattern-simd.js';
import { expectedPattern, patternBytes, patternBytesScalar } from '../../src/devices/sparse-memory.js';
import { patternDigestInline, startPatternDigest, WORKER_MIN_BYTES } from '../../src/devices/pattern-digest.js';
import { createHash } from 'node:crypto';

/** The first word of a block, computed by hand from the documented seeding (an independent check of the scalar generator). */
function firstWordByHand(seed: number, block: number): number {
  let x = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b) ^ Math.imul(Math.floor(block / 4294967296) + 7, 0xc2b2ae35);
  if (x === 0) x = 0x12345678;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

describe('data pattern: SIMD kernel against the scalar generator', () => {
  it('the WebAssembly SIMD kernel assembles and validates on this Node (else every move runs 3.5x slower bytes)', () => {
    assert.notEqual(simdBlocks, null);
  });

  it('the scalar generator starts each block as documented', () => {
    const out = new Uint8Array(8192);
    patternBytesScalar(99, 4096 * 5, out);
    const view = new DataView(out.buffer);
    assert.equal(view.getUint32(0, true), firstWordByHand(99, 5));
    assert.equal(view.getUint32(4096, true), firstWordByHand(99, 6));
  });

  it('equal bytes for any seed, offset, length and buffer alignment (edges, partial blocks, more than one SIMD call)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 5 * 1024 * 4096 }),
        fc.integer({ min: 0, max: 7 }),
        (seed, addr, len, skew) => {
          const a = new Uint8Array(len + skew).subarray(skew);
          const b = new Uint8Array(len + skew).subarray(skew);
          patternBytes(seed, addr, a);
          patternBytesScalar(seed, addr, b);
          return Buffer.compare(a, b) === 0;
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });

  it('block indexes above 2^32 (offsets past 16 TiB) take the high word into the seed in both', () => {
    const addr = 2 ** 32 * 4096 + 3 * 4096;
    const a = new Uint8Array(64 * 1024);
    const b = new Uint8Array(64 * 1024);
    patternBytes(5, addr, a);
    patternBytesScalar(5, addr, b);
    assert.deepEqual(a, b);
  });
});

describe('pattern digest on a second core', () => {
  it('a worker computes the same SHA-256 as this thread, over an unaligned range', () => {
    const pending = startPatternDigest(1234, 4096 * 7 + 3, 9 * 1024 * 1024 + 5, { forceWorker: true });
    assert.equal(pending.result(), patternDigestInline(1234, 4096 * 7 + 3, 9 * 1024 * 1024 + 5));
    assert.equal(pending.inWorker, true, 'the worker answered (else the inline fallback did)');
  });

  it('small ranges are hashed inline (no thread)', () => {
    const pending = startPatternDigest(1, 0, 4096);
    assert.equal(pending.result(), createHash('sha256').update(expectedPattern(1, 0, 4096)).digest('hex'));
    assert.equal(pending.inWorker, false);
    assert.ok(WORKER_MIN_BYTES > 4096);
  });
});
