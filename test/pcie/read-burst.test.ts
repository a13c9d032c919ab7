/**
 * Read bursts (pcie/burst.ts): an MRd burst and the completion burst answering it stand for exactly
 * the TLPs per-TLP granularity sends: each constituent's tag, address, length, byte count and lower
 * address, through slices (a channel's record of them: test/expether/burst-frames.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { completionBurst, constituent, readBurst, readSet, sliceBurst, spanBytes } from '../../src/pcie/burst.js';
import { CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';

const RCB = 64;
const limit = (addr: number, rest: number) => Math.min(RCB - (addr % RCB), rest);

/** The completions per-TLP sends for one request (root-complex.ts readServed). */
function perTlpCompletions(req: Tlp, data: Uint8Array): Tlp[] {
  const out: Tlp[] = [];
  const len = req.lengthDw * 4;
  for (let off = 0; off < len; ) {
    const n = limit(req.address + off, len - off);
    out.push(Tlp.completion(req, 0x200, CPL_STATUS.SC, data.subarray(off, off + n), len - off, req.address + off));
    off += n;
  }
  return out;
}

function fields(t: Tlp) {
  return { kind: t.kind, tag: t.tag, address: t.address, lengthDw: t.lengthDw, byteCount: t.byteCount, lowerAddress: t.lowerAddress, requesterId: t.requesterId, data: t.data ? [...t.data] : null, count: t.count };
}

describe('read bursts', () => {
  // Three requests, the first starting off a 64-byte boundary, of 512, 256 and 512 bytes.
  const reads = readSet(0x1_0020, [7, 2, 9], [512, 256, 512]);
  const mrd = readBurst(0x100, reads);
  const data = Uint8Array.from({ length: 1280 }, (_, i) => (i * 13) & 0xff);

  it('an MRd burst stands for one request per tag, back to back', () => {
    assert.equal(mrd.count, 3);
    assert.equal(spanBytes(mrd), 1280);
    const each = [0, 1, 2].map((i) => constituent(mrd, i));
    assert.deepEqual(each.map((t) => [t.tag, t.address, t.lengthDw * 4, t.count]), [[7, 0x1_0020, 512, 1], [2, 0x1_0220, 256, 1], [9, 0x1_0320, 512, 1]]);
    assert.deepEqual(fields(sliceBurst(mrd, 1, 3)), { ...fields(each[1]), count: 2 });
  });

  it('its completion burst holds every request\'s completions, each as per-TLP makes it, sliced anywhere', () => {
    const cpl = completionBurst(mrd, 0x200, CPL_STATUS.SC, data, limit);
    const expected: Tlp[] = [];
    let off = 0;
    for (let i = 0; i < 3; i++) {
      const req = constituent(mrd, i);
      expected.push(...perTlpCompletions(req, data.subarray(off, off + req.lengthDw * 4)));
      off += req.lengthDw * 4;
    }
    assert.equal(cpl.count, expected.length);
    for (let i = 0; i < cpl.count; i++) assert.deepEqual(fields(constituent(cpl, i)), fields(expected[i]), `completion ${i}`);
    // A slice that starts inside the second request (as credits or a window chop it).
    const cut = 10;
    const rest = sliceBurst(cpl, cut, cpl.count);
    for (let i = 0; i < rest.count; i++) assert.deepEqual(fields(constituent(rest, i)), fields(expected[cut + i]), `completion ${cut + i} of the slice`);
  });

  it('per-request ready times reach every completion of that request', () => {
    const cpl = completionBurst(mrd, 0x200, CPL_STATUS.SC, data, limit, Float64Array.of(100, 200, 300));
    const perRequest = [512, 256, 512].map((n, j) => perTlpCompletions(constituent(mrd, j), data.subarray(0, n)).length);
    assert.deepEqual([...cpl.readyPs!], perRequest.flatMap((n, j) => Array(n).fill(100 * (j + 1))));
  });
});
