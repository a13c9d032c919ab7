import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { Frame } from '../../src/ethernet/frame.js';
import { burstFrameBytes, constituentFrames, decodeBurstFrame, encodeBurstFrame, splitAtHits } from '../../src/expether/burst-frames.js';
import { decodeExpEtherFrame, encodeExpEtherFrame } from '../../src/expether/pdu-codec.js';
import { EXPETHER_ETHERTYPE, EXPETHER_HEADER_BYTES, ExpEtherPdu } from '../../src/expether/pdu.js';
import { asBurst, completionBurst as readCompletions, encodedParts, readBurst, readSet, sliceBurst, splitParts } from '../../src/pcie/burst.js';
import { CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';

/** A burst frame as a bridge sends it: `tlp`'s constituents, one frame each, from sequence number `seq`. */
function burstFrame(tlp: Tlp, seq: number, ack: number): Frame<ExpEtherPdu> {
  const lengths = encodedParts(tlp, new Float64Array(tlp.count));
  const parts = Uint16Array.from(lengths, (n) => EXPETHER_HEADER_BYTES + n);
  const total = parts.reduce((a, b) => a + b, 0);
  return new Frame(0x02_00_00_00_00_02, 0x02_00_00_00_00_01, 1, EXPETHER_ETHERTYPE, new ExpEtherPdu('tlp', seq, ack, tlp, null), total, parts);
}

function writeBurst(address: number, data: Uint8Array, mps: number): Tlp {
  const t = Tlp.memWrite(0x0100, address, data);
  return asBurst(t, splitParts(address, data.length, (a, rest) => Math.min(mps, rest, 4096 - (a % 4096))));
}

/** One read's completions as a root complex sends them at burst granularity: split at the read completion boundary. */
function completionBurst(address: number, data: Uint8Array, rcb: number): Tlp {
  const req = Tlp.memRead(0x0200, 5, address, data.length);
  const t = Tlp.completion(req, 0x0000, CPL_STATUS.SC, data, data.length, address & 0x7f);
  return asBurst(t, splitParts(address, data.length, (a, rest) => Math.min(rest, rcb - (a % rcb))));
}

/** Encodes `f` as a burst record and decodes it: same length as stated, same frames (each constituent's own encoding). */
function assertRoundTrips(f: Frame<ExpEtherPdu>, what: string): { enc: Uint8Array; back: Frame<ExpEtherPdu> } {
  const enc = encodeBurstFrame(f);
  assert.equal(enc.length, burstFrameBytes(f), what);
  const back = decodeBurstFrame(enc, 1500);
  assert.deepEqual([...back.parts!], [...f.parts!], what);
  assert.equal(back.payloadBytes, f.payloadBytes, what);
  const want = constituentFrames(f).map((x) => encodeExpEtherFrame(x));
  assert.deepEqual(constituentFrames(back).map((x) => encodeExpEtherFrame(x)), want, what);
  return { enc, back };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('burst frames (expether/burst-frames.ts)', () => {
  it('splits a burst into the frames per-TLP sends: consecutive sequence numbers, each constituent encodable alone', () => {
    const data = bytes(5000, 3);
    const f = burstFrame(writeBurst(0x1000_0f00, data, 1024), 40, 7);
    const frames = constituentFrames(f);
    assert.equal(frames.length, f.parts!.length);
    let off = 0;
    frames.forEach((c, i) => {
      const pdu = c.payload as ExpEtherPdu;
      assert.equal(pdu.seq, 40 + i);
      assert.equal(pdu.ack, 7);
      assert.equal(c.payloadBytes, f.parts![i]);
      const back = decodeExpEtherFrame(encodeExpEtherFrame(c)).payload.tlp!;
      assert.equal(back.address, 0x1000_0f00 + off);
      assert.deepEqual(back.data, data.subarray(off, off + back.data!.length));
      off += back.data!.length;
    });
    assert.equal(off, data.length);
  });

  it('splitAtHits: each frame hit is that frame alone, each run between hits those frames, as constituentFrames makes them (TLP and bare-ACK bursts)', () => {
    const tlpBurst = burstFrame(writeBurst(0x2000_0000, bytes(8192, 5), 1024), 100, 9);
    const acks = Float64Array.from([3, 4, 5, 6, 7]);
    const ackPdu = new ExpEtherPdu('ack', -1, 7, null, null);
    ackPdu.burstAcks = acks;
    const ackBurst = new Frame(0x02_00_00_00_00_02, 0x02_00_00_00_00_01, 1, EXPETHER_ETHERTYPE, ackPdu, 5 * EXPETHER_HEADER_BYTES, Uint16Array.from(acks, () => EXPETHER_HEADER_BYTES));
    const wire = (f: Frame) => encodeExpEtherFrame(f as Frame<ExpEtherPdu>);
    for (const [what, f] of [['TLP burst', tlpBurst], ['bare-ACK burst', ackBurst]] as const) {
      const want = constituentFrames(f).map(wire);
      const n = want.length;
      for (const hits of [[0], [n - 1], [1, 2], [0, 3, n - 1]]) {
        const got: string[] = [];
        splitAtHits(
          f,
          (i) => hits.includes(i),
          (run, a, b) => got.push(`clean ${a}-${b}: ${constituentFrames(run).map(wire).map((x) => x.join()).join('|')}`),
          (one, i) => got.push(`hit ${i}: ${wire(one).join()}`),
        );
        const expected: string[] = [];
        let from = 0;
        const clean = (a: number, b: number) => expected.push(`clean ${a}-${b}: ${want.slice(a, b).map((x) => x.join()).join('|')}`);
        for (let i = 0; i < n; i++) {
          if (!hits.includes(i)) continue;
          if (i > from) clean(from, i);
          expected.push(`hit ${i}: ${want[i].join()}`);
          from = i + 1;
        }
        if (from < n) clean(from, n);
        assert.deepEqual(got, expected, `${what}, hits ${hits.join(',')}`);
      }
    }
  });

  it('round-trips write and completion bursts through the compact record: same constituents, one view of the data', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 0, max: 1023 }), fc.constantFrom(128, 256, 1024), fc.boolean(), (dws, startDw, size, completion) => {
        const address = 0x2000_0000 + startDw * 4;
        const data = bytes(dws * 64, dws);
        const tlp = completion ? completionBurst(address, data, size) : writeBurst(address, data, size);
        if (tlp.count < 2) return;
        const { enc, back } = assertRoundTrips(burstFrame(tlp, 1000, 999), `${tlp.kind} burst of ${tlp.count}`);
        const t = back.payload.tlp!;
        assert.equal(t.data!.buffer, enc.buffer, 'the data is a view of the record, not a copy');
      }),
      { numRuns: 60 },
    );
  });

  it('round-trips read bursts (several requests, their completions, slices of them) with every constituent\'s tag', () => {
    // Requests back to back, none across 4 KiB; completions at a 64-byte completion boundary; a slice anywhere.
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 2, maxLength: 8 }), fc.integer({ min: 0, max: 63 }), fc.nat(), fc.nat(), (dws, startDw, a, b) => {
        const address = 0x4000_0000 + startDw * 64;
        const lens: number[] = [];
        let at = address;
        for (const d of dws) {
          const n = Math.min(d * 16, 4096 - (at % 4096));
          lens.push(n);
          at += n;
        }
        const tags = lens.map((_, j) => (7 + 13 * j) & 0xff);
        const mrd = readBurst(0x0300, readSet(address, tags, lens));
        const data = bytes(at - address, lens.length);
        const cpl = readCompletions(mrd, 0x0000, CPL_STATUS.SC, data, (x, rest) => Math.min(rest, 64 - (x % 64)));
        const from = a % (cpl.count - 1);
        const to = from + 2 + (b % (cpl.count - from - 1));
        for (const tlp of [mrd, cpl, sliceBurst(cpl, from, to)]) {
          if (tlp.count < 2) continue;
          assertRoundTrips(burstFrame(tlp, 77, 76), `${tlp.kind} burst of ${tlp.count}`);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('refuses malformed read burst records with a BAD_PDU error naming the field', () => {
    const mrd = readBurst(0x0300, readSet(0x5000_0000, [1, 2, 3], [1024, 1024, 2048]));
    const cpl = readCompletions(mrd, 0, CPL_STATUS.SC, bytes(4096, 2), (x, rest) => Math.min(rest, 1024 - (x % 1024)));
    const encM = encodeBurstFrame(burstFrame(mrd, 1, -1));
    const encC = encodeBurstFrame(burstFrame(cpl, 1, -1));
    const edit = (b: Uint8Array, at: number, v: number) => {
      const c = b.slice();
      new DataView(c.buffer).setUint16(at, v);
      return c;
    };
    // Layout: count (2), m (2), m tags, m lengths, k constituent lengths, first frame, data.
    const cases: [string, Uint8Array, RegExp][] = [
      ['more requests than constituents', edit(encM, 2, 4), /4 requests for 3 constituents/],
      ['no requests', edit(encM, 2, 0), /0 requests/],
      ['a first request not the listed one', edit(encM, 4, 9), /first request \(tag 1, 1024 bytes\) is not its first listed \(tag 9/],
      ['a request across 4 KiB', edit(encM, 4 + 6 + 4, 4096), /request 2 at 0x50000800 crosses a 4 KiB boundary/],
      ['a request of no bytes', edit(encM, 4 + 6 + 2, 0), /request 1 asks 0 bytes/],
      ['a request with payload', edit(encM, 4 + 12, 4), /request 0 has 4 payload bytes/],
      ['a completion past its request', edit(encC, 4 + 6, 512), /constituent 1 \(1024 bytes\) runs past request 0's 512|first completion/],
      ['completions that answer fewer requests than listed', edit(encC, 4 + 6 + 2, 4096), /3 requests listed, the constituents answer 2/],
    ];
    for (const [what, b, msg] of cases) {
      assert.throws(() => decodeBurstFrame(b, 1500), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PDU' && msg.test(e.message), `${what}: ${(() => { try { decodeBurstFrame(b, 1500); return 'no error'; } catch (e) { return String(e); } })()}`);
    }
  });

  it('refuses malformed records with a BAD_PDU error naming the field', () => {
    const f = burstFrame(writeBurst(0x3000_0000, bytes(4096, 1), 1024), 1, -1);
    const enc = encodeBurstFrame(f);
    const cases: [string, Uint8Array, RegExp][] = [
      ['too short', enc.subarray(0, 1), /too short/],
      ['count 1', Uint8Array.from([0, 1, ...enc.subarray(2)]), /count 1/],
      ['truncated data', enc.subarray(0, enc.length - 100), /first TLP carries|more than the record|BAD|bytes/],
      ['a constituent over the MTU', enc, /more than the port's 1000/],
    ];
    for (const [what, b, msg] of cases) {
      assert.throws(() => decodeBurstFrame(b, what === 'a constituent over the MTU' ? 1000 : 1500), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PDU' && msg.test(e.message), what);
    }
  });

  it('fuzz: no byte string makes the decoder throw anything but BAD_PDU', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (b) => {
        try {
          decodeBurstFrame(b, 1500);
        } catch (e) {
          assert.ok(e instanceof DconnectError && e.code === 'BAD_PDU', String(e));
        }
      }),
      { numRuns: 300 },
    );
  });
});
