import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { Frame } from '../../src/ethernet/frame.js';
import { decodeExpEtherFrame, decodePdu, encodeExpEtherFrame, encodePdu, FRAME_HEADER_BYTES } from '../../src/expether/pdu-codec.js';
import { EXPETHER_ETHERTYPE, EXPETHER_HEADER_BYTES, ExpEtherPdu, type PortRoute } from '../../src/expether/pdu.js';
import { Tlp, type TlpKind } from '../../src/pcie/tlp.js';

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const seqOrNone = fc.oneof(u32, fc.constant(-1));
const bytesOf = (dw: number) => fc.uint8Array({ minLength: dw * 4, maxLength: dw * 4 });
const be = fc.integer({ min: 0, max: 15 });
const nonZeroBe = fc.integer({ min: 1, max: 15 });

/** TLPs in the form the TLP codec decodes (fields a kind's header does not hold are the Tlp defaults). */
const memTlp = (kind: 'MRd' | 'MWr') =>
  fc
    .record({
      lengthDw: fc.integer({ min: 1, max: 64 }),
      requesterId: fc.integer({ min: 0, max: 0xffff }),
      tag: fc.integer({ min: 0, max: 0xff }),
      first: be,
      firstMulti: nonZeroBe,
      last: nonZeroBe,
      address: fc.oneof(fc.integer({ min: 0, max: 0x3fff_ffff }).map((a) => a * 4), fc.integer({ min: 2 ** 30, max: 2 ** 51 - 1 }).map((a) => a * 4)),
    })
    .chain((r) => (kind === 'MWr' ? bytesOf(r.lengthDw) : fc.constant(null)).map((data) => ({ ...r, data })))
    .map((r) => {
      const t = new Tlp();
      t.kind = kind;
      t.lengthDw = r.lengthDw;
      t.requesterId = r.requesterId;
      t.tag = r.tag;
      t.firstBe = r.lengthDw === 1 ? r.first : r.firstMulti;
      t.lastBe = r.lengthDw === 1 ? 0 : r.last;
      t.address = r.address;
      t.data = r.data;
      return t;
    });

const cplTlp = (kind: 'Cpl' | 'CplD') =>
  fc
    .record({
      lengthDw: fc.integer({ min: 1, max: 64 }),
      completerId: fc.integer({ min: 0, max: 0xffff }),
      requesterId: fc.integer({ min: 0, max: 0xffff }),
      tag: fc.integer({ min: 0, max: 0xff }),
      status: fc.integer({ min: 0, max: 7 }),
      byteCount: fc.integer({ min: 1, max: 4096 }),
      lowerAddress: fc.integer({ min: 0, max: 0x7f }),
    })
    .chain((r) => (kind === 'CplD' ? bytesOf(r.lengthDw) : fc.constant(null)).map((data) => ({ ...r, data })))
    .map((r) => {
      const t = new Tlp();
      t.kind = kind;
      t.lengthDw = kind === 'CplD' ? r.lengthDw : 0;
      t.firstBe = 0;
      t.lastBe = 0;
      t.completerId = r.completerId;
      t.requesterId = r.requesterId;
      t.tag = r.tag;
      t.status = r.status;
      t.byteCount = r.byteCount;
      t.lowerAddress = r.lowerAddress;
      t.data = r.data;
      return t;
    });

const cfgTlp = (kind: 'CfgRd0' | 'CfgWr0' | 'CfgRd1' | 'CfgWr1') =>
  fc
    .record({
      requesterId: fc.integer({ min: 0, max: 0xffff }),
      tag: fc.integer({ min: 0, max: 0xff }),
      firstBe: be,
      targetId: fc.integer({ min: 0, max: 0xffff }),
      register: fc.integer({ min: 0, max: 1023 }).map((r) => r * 4),
      data: kind === 'CfgWr0' || kind === 'CfgWr1' ? bytesOf(1) : fc.constant(null),
    })
    .map((r) => {
      const t = Tlp.config(kind, r.requesterId, r.tag, r.targetId, r.register, r.data);
      t.firstBe = r.firstBe;
      return t;
    });

const KINDS: TlpKind[] = ['MRd', 'MWr', 'Cpl', 'CplD', 'CfgRd0', 'CfgWr0', 'CfgRd1', 'CfgWr1'];
const anyTlp = fc.oneof(memTlp('MRd'), memTlp('MWr'), cplTlp('Cpl'), cplTlp('CplD'), cfgTlp('CfgRd0'), cfgTlp('CfgWr0'), cfgTlp('CfgRd1'), cfgTlp('CfgWr1'));

const route: fc.Arbitrary<PortRoute> = fc.record({
  mac: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  secondaryBus: fc.integer({ min: 0, max: 255 }),
  subordinateBus: fc.integer({ min: 0, max: 255 }),
  memBase: u32,
  memLimit: u32,
}).map((r) => ({ ...r })); // fc.record makes null-prototype objects; the codec makes plain ones

const tlpPdu = fc.record({ seq: u32, ack: seqOrNone, tlp: anyTlp }).map((r) => new ExpEtherPdu('tlp', r.seq, r.ack, r.tlp, null));
const ackPdu = seqOrNone.map((ack) => new ExpEtherPdu('ack', -1, ack, null, null));
const routesPdu = fc.record({ seq: u32, ack: seqOrNone, routes: fc.array(route, { maxLength: 40 }) }).map((r) => new ExpEtherPdu('routes', r.seq, r.ack, null, r.routes));
const nakPdu = fc
  .record({ ack: seqOrNone, first: u32, n: fc.nat(300) })
  .map((r) => new ExpEtherPdu('nak', -1, r.ack, null, null, { first: r.first, last: Math.min(0xffff_ffff, r.first + r.n) }));
const anyPdu = fc.oneof(tlpPdu, ackPdu, routesPdu, nakPdu);

function isBadPdu(e: unknown): boolean {
  return e instanceof DconnectError && e.code === 'BAD_PDU';
}

/** Calls `f`; true when it returned, false when it threw BAD_PDU; any other throw fails the test. */
function decodesOrBadPdu(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (isBadPdu(e)) return false;
    throw e;
  }
}

describe('ExpEther PDU codec', () => {
  it('round-trips every kind of PDU (tlp of each TLP kind, ack, routes, nak), and its length is payloadBytes()', () => {
    fc.assert(
      fc.property(anyPdu, (pdu) => {
        const bytes = encodePdu(pdu);
        assert.equal(bytes.length, pdu.payloadBytes());
        const back = decodePdu(bytes);
        assert.deepEqual(back, pdu);
        assert.ok(back instanceof ExpEtherPdu);
        if (pdu.tlp?.data) {
          assert.notEqual(back.tlp!.data, pdu.tlp.data, 'the decoded payload is a copy');
          bytes.fill(0xee);
          assert.deepEqual(back.tlp!.data, pdu.tlp.data, 'and does not alias the encoded bytes');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('covers every TLP kind', () => {
    const seen = new Set(fc.sample(tlpPdu, 400).map((p) => p.tlp!.kind));
    assert.deepEqual([...seen].sort(), [...KINDS].sort());
  });

  it('lays the header out as documented', () => {
    const tlp = Tlp.memRead(0x0300, 7, 0x1000, 64);
    const b = encodePdu(new ExpEtherPdu('tlp', 0x01020304, 5, tlp, null));
    assert.deepEqual([...b.subarray(0, EXPETHER_HEADER_BYTES)], [0x11, 0x03, 0x00, 12, 1, 2, 3, 4, 0, 0, 0, 5]);
    assert.deepEqual([...encodePdu(new ExpEtherPdu('ack', -1, -1, null, null))], [0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const r = encodePdu(new ExpEtherPdu('routes', 0, -1, null, [{ mac: 0x0060_b900_0100, secondaryBus: 3, subordinateBus: 4, memBase: 0xe000_0000, memLimit: 0xe00f_ffff }]));
    assert.deepEqual([...r], [0x13, 0x01, 0, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x60, 0xb9, 0x00, 0x01, 0x00, 3, 4, 0xe0, 0, 0, 0, 0xe0, 0x0f, 0xff, 0xff]);
    // A NAK: kind 4, ACK flag (the cumulative ACK rides along), no SEQ; body first and last missing.
    const n = encodePdu(new ExpEtherPdu('nak', -1, 0x10, null, null, { first: 0x11, last: 0x0102_0314 }));
    assert.deepEqual([...n], [0x14, 0x02, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x11, 1, 2, 3, 0x14]);
  });

  it('nak PDUs: bytes with a valid header up front decode or throw BAD_PDU; a decoded one re-encodes to the same bytes', () => {
    const nakBytes = fc.tuple(fc.constantFrom(0, 1, 2, 3), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 12 })).map(([flags, rest, body]) => {
      const b = new Uint8Array(EXPETHER_HEADER_BYTES + body);
      b.set([0x14, flags, 0, body]);
      b.set(rest.subarray(0, Math.min(8, b.length - 4)), 4);
      return b;
    });
    fc.assert(
      fc.property(nakBytes, fc.uint8Array({ minLength: 8, maxLength: 8 }), (b, body) => {
        if (b.length === EXPETHER_HEADER_BYTES + 8) b.set(body, EXPETHER_HEADER_BYTES);
        let pdu: ExpEtherPdu | null = null;
        if (!decodesOrBadPdu(() => (pdu = decodePdu(b)))) return;
        assert.deepEqual([...encodePdu(pdu!)], [...b]);
      }),
      { numRuns: 500, seed: 19 },
    );
  });

  it('every truncation and every single-byte corruption decodes or throws BAD_PDU, never anything else', () => {
    fc.assert(
      fc.property(anyPdu, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (pdu, cut, at, xor) => {
        const bytes = encodePdu(pdu);
        const short = bytes.subarray(0, cut % bytes.length);
        assert.throws(() => decodePdu(short), isBadPdu, `truncated to ${short.length} of ${bytes.length} bytes`);
        const longer = new Uint8Array(bytes.length + 1 + (cut % 7));
        longer.set(bytes);
        assert.throws(() => decodePdu(longer), isBadPdu, 'trailing bytes');
        const bad = bytes.slice();
        bad[at % bad.length] ^= xor;
        decodesOrBadPdu(() => decodePdu(bad));
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes decode or throw BAD_PDU', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void decodesOrBadPdu(() => decodePdu(b))), { numRuns: 1000 });
  });

  it('names the field in each malformed case', () => {
    const good = encodePdu(new ExpEtherPdu('tlp', 9, 3, Tlp.memWrite(1, 0x2000, new Uint8Array(8)), null));
    const edit = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    const cases: Array<[Uint8Array, RegExp]> = [
      [good.subarray(0, 5), /5 bytes, shorter than its 12-byte header/],
      [edit((b) => (b[0] = 0x21)), /version is 2/],
      [edit((b) => (b[0] = 0x17)), /kind is 7/],
      [edit((b) => (b[1] |= 0x80)), /flags 0x83 set reserved bits/],
      [edit((b) => (b[3] += 1)), /length field says 21 body bytes but 20 follow/],
      [edit((b) => (b[1] = 0x02)), /tlp PDU has the SEQ flag clear/],
      [edit((b) => (b[1] = 0x01)), /ack field is 3 but the ACK flag is clear/],
      [edit((b) => (b[EXPETHER_HEADER_BYTES] = 0xff)), /bad TLP: unknown or unsupported TLP Fmt\/Type/],
      [edit((b) => (b[EXPETHER_HEADER_BYTES + 3] = 1)), /bad TLP: TLP length field says 1 DW \(4 bytes\) but 8 payload bytes follow/],
      [new Uint8Array([0x11, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /empty body/],
      [new Uint8Array([0x12, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), /ack PDU has the SEQ flag set/],
      [new Uint8Array([0x12, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /ack PDU has a 1-byte body/],
      [new Uint8Array([0x13, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /shorter than its 2-byte route count/],
      [new Uint8Array([0x14, 0x01, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]), /nak PDU has the SEQ flag set \(a nak has no sequence number\)/],
      [new Uint8Array([0x14, 0x00, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), /nak PDU has a 4-byte body, expected 8/],
      [new Uint8Array([0x14, 0x00, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 4]), /nak PDU names 5\.\.4, an empty range/],
      [new Uint8Array([0x13, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), /route count says 1 entries \(18 body bytes\) but the body is 2 bytes/],
    ];
    for (const [b, re] of cases) {
      assert.throws(() => decodePdu(b), (e: unknown) => isBadPdu(e) && re.test((e as Error).message), String(re));
    }
  });

  it('refuses to encode what the header cannot hold, naming the field', () => {
    const tlp = Tlp.memRead(1, 1, 0, 4);
    const cases: Array<[ExpEtherPdu, RegExp]> = [
      [new ExpEtherPdu('tlp', -1, -1, tlp, null), /tlp seq -1 is not an integer/],
      [new ExpEtherPdu('tlp', 2 ** 32, -1, tlp, null), /seq 4294967296/],
      [new ExpEtherPdu('tlp', 0, 1.5, tlp, null), /ack 1.5/],
      [new ExpEtherPdu('ack', 4, 0, null, null), /an ack has no sequence number/],
      [new ExpEtherPdu('tlp', 0, -1, null, null), /kind tlp but tlp is null/],
      [new ExpEtherPdu('nak', -1, -1, null, null), /kind nak but its range is null/],
      [new ExpEtherPdu('nak', 3, -1, null, null, { first: 1, last: 1 }), /a nak has no sequence number/],
      [new ExpEtherPdu('nak', -1, -1, null, null, { first: 4, last: 3 }), /nak range 4\.\.3 is empty/],
      [new ExpEtherPdu('ack', -1, -1, null, null, { first: 1, last: 1 }), /kind ack also carries a NAK range/],
      [new ExpEtherPdu('routes', 0, -1, null, [{ mac: 1, secondaryBus: 256, subordinateBus: 0, memBase: 0, memLimit: 0 }]), /routes\[0\]\.secondaryBus 256/],
      [new ExpEtherPdu('tlp', 0, -1, Tlp.memWrite(1, 2, new Uint8Array(4)), null), /tlp: cannot encode MWr: address 2/],
    ];
    for (const [p, re] of cases) assert.throws(() => encodePdu(p), (e: unknown) => isBadPdu(e) && re.test((e as Error).message), String(re));
  });
});

describe('ExpEther frame codec', () => {
  const frameOf = (pdu: ExpEtherPdu, dst: number, src: number, vlan: number) => {
    const f = new Frame(dst, src, vlan, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes());
    f.readRequest = pdu.tlp?.kind === 'MRd';
    return f;
  };
  const mac = fc.integer({ min: 0, max: 2 ** 48 - 1 });
  const small = anyPdu.filter((p) => p.payloadBytes() <= 1500);

  it('round-trips a whole tagged frame (MACs, VLAN, EtherType, PDU, readRequest)', () => {
    fc.assert(
      fc.property(small, mac, mac, fc.integer({ min: 1, max: 4094 }), (pdu, dst, src, vlan) => {
        const f = frameOf(pdu, dst, src, vlan);
        const b = encodeExpEtherFrame(f);
        assert.equal(b.length, FRAME_HEADER_BYTES + f.payloadBytes);
        assert.deepEqual(decodeExpEtherFrame(b), f);
      }),
      { numRuns: 300 },
    );
  });

  it('truncated or corrupted frames throw BAD_PDU', () => {
    fc.assert(
      fc.property(small, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (pdu, cut, at, xor) => {
        const b = encodeExpEtherFrame(frameOf(pdu, 1, 2, 3));
        assert.throws(() => decodeExpEtherFrame(b.subarray(0, cut % b.length)), isBadPdu);
        const bad = b.slice();
        bad[at % bad.length] ^= xor;
        decodesOrBadPdu(() => decodeExpEtherFrame(bad));
      }),
    );
    const b = encodeExpEtherFrame(frameOf(new ExpEtherPdu('ack', -1, 0, null, null), 1, 2, 3));
    b[16] = 0x08;
    b[17] = 0x00;
    assert.throws(() => decodeExpEtherFrame(b), (e: unknown) => isBadPdu(e) && /EtherType is 0x800/.test((e as Error).message));
  });

  it('refuses a frame whose payload is not an ExpEther PDU or whose payloadBytes disagrees', () => {
    assert.throws(() => encodeExpEtherFrame(new Frame(1, 2, 3, EXPETHER_ETHERTYPE, 'x', 42)), (e: unknown) => isBadPdu(e) && /not an ExpEther PDU/.test((e as Error).message));
    const pdu = new ExpEtherPdu('ack', -1, 0, null, null);
    assert.throws(() => encodeExpEtherFrame(new Frame(1, 2, 3, EXPETHER_ETHERTYPE, pdu, 13)), (e: unknown) => isBadPdu(e) && /payloadBytes is 13 but its PDU encodes to 12/.test((e as Error).message));
  });
});
