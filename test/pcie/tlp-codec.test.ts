import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { CPL_STATUS, Tlp, bdf } from '../../src/pcie/tlp.js';
import { decodeTlp, encodeTlp, encodeTlpInto, encodedLength } from '../../src/pcie/tlp-codec.js';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const bytes = (s: string) => Uint8Array.from(s.trim().split(/\s+/), (x) => parseInt(x, 16));
const seq = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

function assertMalformed(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DconnectError, `expected DconnectError, got ${String(e)}`);
    assert.equal(e.code, 'MALFORMED_PACKET');
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------- byte-exact layouts from the spec

test('3DW MWr: requester 0x0100, tag 5, address 0xC000_1000, 128 bytes', () => {
  const data = seq(128);
  const t = Tlp.memWrite(0x0100, 0xc000_1000, data, 0x05);
  const b = encodeTlp(t);
  assert.equal(b.length, 12 + 128);
  assert.equal(encodedLength(t), 140);
  // Fmt 010 Type 00000 | 0 | Length[9:8]=0 | Length=0x20 ; RID 0100 Tag 05 LastBE f FirstBE f ; address
  assert.equal(hex(b.subarray(0, 12)), '40 00 00 20 01 00 05 ff c0 00 10 00');
  assert.deepEqual(b.subarray(12), data);
});

test('1 DW MWr: Last DW BE is 0, First DW BE f', () => {
  const t = Tlp.memWrite(0x0100, 0x1000, seq(4), 0x01);
  assert.equal(hex(encodeTlp(t).subarray(0, 12)), '40 00 00 01 01 00 01 0f 00 00 10 00');
});

test('4DW MRd at address 0x2_0000_0040, 64 bytes', () => {
  const t = Tlp.memRead(0x0100, 0x09, 0x2_0000_0040, 64);
  const b = encodeTlp(t);
  assert.equal(b.length, 16);
  // Fmt 001 Type 00000 ; Length 16 ; RID 0100 Tag 09 BE ff ; addr hi 00000002 ; addr lo 00000040
  assert.equal(hex(b), '20 00 00 10 01 00 09 ff 00 00 00 02 00 00 00 40');
});

test('3DW MRd just below 4 GiB, 4DW MRd at exactly 4 GiB', () => {
  assert.equal(hex(encodeTlp(Tlp.memRead(0x0200, 1, 0xffff_fffc, 4))), '00 00 00 01 02 00 01 0f ff ff ff fc');
  assert.equal(hex(encodeTlp(Tlp.memRead(0x0200, 1, 0x1_0000_0000, 4))), '20 00 00 01 02 00 01 0f 00 00 00 01 00 00 00 00');
});

test('CplD: completer 0x0300, SC, byte count 512, requester 0x0100, tag 7, lower address 0x40', () => {
  const req = Tlp.memRead(0x0100, 7, 0x8000_0040, 512);
  const data = seq(512, 3);
  const t = Tlp.completion(req, 0x0300, CPL_STATUS.SC, data, 512, 0x40);
  const b = encodeTlp(t);
  assert.equal(b.length, 12 + 512);
  // Fmt 010 Type 01010 ; Length 128 ; CID 0300 | Status 000 BCM 0 ByteCount 0x200 ; RID 0100 Tag 07 R|LA 40
  assert.equal(hex(b.subarray(0, 12)), '4a 00 00 80 03 00 02 00 01 00 07 40');
  assert.deepEqual(b.subarray(12), data);
});

test('Cpl with UR status (no data)', () => {
  const req = Tlp.memRead(0x0100, 0x22, 0x1000, 8);
  const t = Tlp.completion(req, 0x0300, CPL_STATUS.UR, null, 8, 0);
  // Fmt 000 Type 01010 ; Length reserved 0 ; CID 0300 | Status 001 -> 0x20 in byte 6 | BC 8 ; RID 0100 Tag 22 LA 0
  assert.equal(hex(encodeTlp(t)), '0a 00 00 00 03 00 20 08 01 00 22 00');
  // CA status and Byte Count high bits share byte 6: status 100 | BC 0xabc
  const ca = Tlp.completion(req, 0x0300, CPL_STATUS.CA, null, 0xabc, 0x7f);
  assert.equal(hex(encodeTlp(ca)), '0a 00 00 00 03 00 8a bc 01 00 22 7f');
});

test('CfgRd0 to bus 3 dev 0 fn 0 register 0x10', () => {
  const t = Tlp.config('CfgRd0', 0x0000, 0x11, bdf(3, 0, 0), 0x10, null);
  // Fmt 000 Type 00100 ; Length 1 ; RID 0000 Tag 11 LastBE 0 FirstBE f ; BDF 0300 | reg 0x10
  assert.equal(hex(encodeTlp(t)), '04 00 00 01 00 00 11 0f 03 00 00 10');
});

test('CfgWr1 to bus 3 dev 0 fn 0 register 0x10, and an extended register', () => {
  const t = Tlp.config('CfgWr1', 0x0000, 0x12, bdf(3, 0, 0), 0x10, bytes('de ad be ef'));
  assert.equal(hex(encodeTlp(t)), '45 00 00 01 00 00 12 0f 03 00 00 10 de ad be ef');
  // bus 3 dev 31 fn 7 register 0xffc: Ext Register Number f, Register Number 3f
  const e = Tlp.config('CfgWr0', 0x0100, 0x13, bdf(3, 31, 7), 0xffc, bytes('01 02 03 04'));
  e.firstBe = 0x3;
  assert.equal(hex(encodeTlp(e)), '44 00 00 01 01 00 13 03 03 ff 0f fc 01 02 03 04');
  const r1 = Tlp.config('CfgRd1', 0x0100, 0x14, bdf(3, 0, 0), 0x10, null);
  assert.equal(hex(encodeTlp(r1)), '05 00 00 01 01 00 14 0f 03 00 00 10');
});

test('Length 1024 DW is encoded as 0 and decodes back to 1024', () => {
  const data = seq(4096);
  const t = Tlp.memWrite(0x0100, 0x10_0000, data, 1);
  const b = encodeTlp(t);
  assert.equal(hex(b.subarray(0, 4)), '40 00 00 00');
  const d = decodeTlp(b);
  assert.equal(d.lengthDw, 1024);
  assert.deepEqual(d.data, data);
  const rd = encodeTlp(Tlp.memRead(0x0100, 2, 0x10_0000, 4096));
  assert.equal(hex(rd.subarray(0, 4)), '00 00 00 00');
  assert.equal(decodeTlp(rd).lengthDw, 1024);
  // Length[9:8] lands in byte 2: 0x300 DW
  assert.equal(hex(encodeTlp(Tlp.memRead(0x0100, 2, 0, 0x300 * 4)).subarray(0, 4)), '00 00 03 00');
});

test('Byte Count 4096 is encoded as 0 and decodes back to 4096', () => {
  const req = Tlp.memRead(0x0100, 3, 0x1000, 4096);
  const t = Tlp.completion(req, 0x0300, CPL_STATUS.SC, seq(128), 4096, 0);
  const b = encodeTlp(t);
  assert.equal(hex(b.subarray(4, 8)), '03 00 00 00');
  assert.equal(decodeTlp(b).byteCount, 4096);
});

// ---------------------------------------------------------------- decode of hand-built bytes / round trips

test('decode of a hand-built 3DW MWr', () => {
  const d = decodeTlp(bytes('40 00 00 02 01 00 05 ff c0 00 10 00 01 02 03 04 05 06 07 08'));
  assert.equal(d.kind, 'MWr');
  assert.equal(d.requesterId, 0x0100);
  assert.equal(d.tag, 5);
  assert.equal(d.address, 0xc000_1000);
  assert.equal(d.lengthDw, 2);
  assert.equal(d.firstBe, 0xf);
  assert.equal(d.lastBe, 0xf);
  assert.deepEqual(d.data, bytes('01 02 03 04 05 06 07 08'));
});

test('round trip of each constructor kind, and re-encoding gives the same bytes', () => {
  const req = Tlp.memRead(0xabcd, 0xfe, 0x1234_5678_9abc, 256);
  const all = [
    Tlp.memWrite(0x0100, 0xc000_1000, seq(128), 5),
    Tlp.memWrite(0xffff, 2 ** 53, seq(8), 0xff),
    req,
    Tlp.memRead(0x0001, 0, 0, 4),
    Tlp.completion(req, 0x0300, CPL_STATUS.SC, seq(256), 256, 0x3c),
    Tlp.completion(req, 0x0300, CPL_STATUS.CRS, null, 4, 0),
    Tlp.config('CfgRd0', 0x0100, 1, bdf(3, 0, 0), 0x10, null),
    Tlp.config('CfgWr0', 0x0100, 2, bdf(3, 1, 2), 0x100, seq(4)),
    Tlp.config('CfgRd1', 0x0100, 3, bdf(255, 31, 7), 0xffc, null),
    Tlp.config('CfgWr1', 0x0100, 4, bdf(3, 0, 0), 0, seq(4)),
  ];
  for (const t of all) {
    const b = encodeTlp(t);
    assert.equal(b.length, encodedLength(t));
    const d = decodeTlp(b);
    assert.deepEqual(d, t, t.kind);
    assert.deepEqual(encodeTlp(d), b, t.kind);
  }
});

test('addresses up to 2^53 round-trip exactly', () => {
  for (const a of [2 ** 32, 2 ** 32 + 4, 2 ** 48 + 0xfffc, 2 ** 53 - 4, 2 ** 53]) {
    const d = decodeTlp(encodeTlp(Tlp.memRead(1, 1, a, 4)));
    assert.equal(d.address, a);
  }
});

test('decoded payload is a copy, not a view of the input buffer', () => {
  const b = encodeTlp(Tlp.memWrite(0x0100, 0x1000, seq(8), 1));
  const d = decodeTlp(b);
  assert.notEqual(d.data!.buffer, b.buffer);
  b[12] = 0x99;
  assert.equal(d.data![0], 0);
});

test('decode works on a subarray at a non-zero offset', () => {
  const t = Tlp.memWrite(0x0100, 0x2_0000_0000, seq(16), 9);
  const frame = new Uint8Array(100).fill(0xee);
  const n = encodeTlpInto(t, frame, 37);
  assert.equal(n, encodedLength(t));
  assert.deepEqual(decodeTlp(frame.subarray(37, 37 + n)), t);
});

test('encodeTlpInto overwrites every header byte of a dirty buffer and checks room', () => {
  const t = Tlp.completion(Tlp.memRead(1, 2, 0, 4), 0x0300, CPL_STATUS.UR, null, 4, 0);
  const buf = new Uint8Array(12).fill(0xff);
  encodeTlpInto(t, buf, 0);
  assert.deepEqual(buf, encodeTlp(t));
  assert.throws(() => encodeTlpInto(t, new Uint8Array(11), 0), RangeError);
});

// ---------------------------------------------------------------- property test

const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const be4 = fc.integer({ min: 0, max: 0xf });
const nzBe4 = fc.integer({ min: 1, max: 0xf });
const lengthDw = fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.constantFrom(1, 2, 1023, 1024));
const address = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 30 - 1 }).map((x) => x * 4), // 3DW
  fc.integer({ min: 2 ** 30, max: 2 ** 51 }).map((x) => x * 4), // 4DW, up to 2^53
  fc.constantFrom(0, 2 ** 32 - 4, 2 ** 32, 2 ** 53 - 4, 2 ** 53),
);
const payload = (n: number) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 });

const memTlp = fc
  .record({ write: fc.boolean(), rid: u16, tag: u8, address, n: lengthDw, fbe: be4, nzfbe: nzBe4, lbe: nzBe4 })
  .chain((r) =>
    (r.write ? payload(r.n) : fc.constant(null)).map((data) => {
      const t = new Tlp();
      t.kind = r.write ? 'MWr' : 'MRd';
      t.requesterId = r.rid;
      t.tag = r.tag;
      t.address = r.address;
      t.lengthDw = r.n;
      t.firstBe = r.n === 1 ? r.fbe : r.nzfbe;
      t.lastBe = r.n === 1 ? 0 : r.lbe;
      t.data = data;
      return t;
    }),
  );

const cfgTlp = fc
  .record({
    kind: fc.constantFrom<'CfgRd0' | 'CfgWr0' | 'CfgRd1' | 'CfgWr1'>('CfgRd0', 'CfgWr0', 'CfgRd1', 'CfgWr1'),
    rid: u16,
    tag: u8,
    target: u16,
    reg: fc.integer({ min: 0, max: 1023 }).map((x) => x * 4),
    fbe: be4,
    data: payload(1),
  })
  .map((r) => {
    const t = Tlp.config(r.kind, r.rid, r.tag, r.target, r.reg, r.kind === 'CfgWr0' || r.kind === 'CfgWr1' ? r.data : null);
    t.firstBe = r.fbe;
    return t;
  });

const cplTlp = fc
  .record({
    withData: fc.boolean(),
    rid: u16,
    tag: u8,
    cid: u16,
    status: fc.integer({ min: 0, max: 7 }),
    bc: fc.integer({ min: 1, max: 4096 }),
    la: fc.integer({ min: 0, max: 0x7f }),
    n: lengthDw,
  })
  .chain((r) =>
    (r.withData ? payload(r.n) : fc.constant(null)).map((data) => {
      const req = new Tlp();
      req.requesterId = r.rid;
      req.tag = r.tag;
      return Tlp.completion(req, r.cid, r.status, data, r.bc, r.la);
    }),
  );

const anyTlp = fc.oneof(memTlp, cfgTlp, cplTlp);

test('property: random valid TLPs of every kind round-trip through encode/decode', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(anyTlp, (t) => {
      seen.add(t.kind);
      const b = encodeTlp(t);
      assert.equal(b.length, encodedLength(t));
      assert.equal(b.length, (t.address >= 2 ** 32 && (t.kind === 'MRd' || t.kind === 'MWr') ? 16 : 12) + (t.data ? t.lengthDw * 4 : 0));
      const d = decodeTlp(b);
      assert.deepEqual(d, t);
      assert.deepEqual(encodeTlp(d), b);
    }),
    { numRuns: 500 },
  );
  assert.deepEqual([...seen].sort(), ['CfgRd0', 'CfgRd1', 'CfgWr0', 'CfgWr1', 'Cpl', 'CplD', 'MRd', 'MWr']);
});

test('property: arbitrary bytes either decode or throw MALFORMED_PACKET, never anything else', () => {
  const header = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 40 }),
    // Start from a valid fmt/type byte so that the deeper checks get exercised too.
    fc
      .tuple(fc.constantFrom(0x00, 0x20, 0x40, 0x60, 0x04, 0x44, 0x05, 0x45, 0x0a, 0x4a), fc.uint8Array({ minLength: 11, maxLength: 40 }))
      .map(([b0, rest]) => Uint8Array.of(b0, ...rest)),
  );
  fc.assert(
    fc.property(header, (b) => {
      try {
        const t = decodeTlp(b);
        // Whatever decodes must re-encode to a packet of the same size that decodes to the same Tlp.
        const again = encodeTlp(t);
        assert.equal(again.length, b.length);
        assert.deepEqual(decodeTlp(again), t);
      } catch (e) {
        if (!(e instanceof DconnectError) || e.code !== 'MALFORMED_PACKET') throw e;
      }
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------- rejection of malformed input

test('rejects a TLP shorter than a 3DW header', () => {
  assertMalformed(() => decodeTlp(new Uint8Array(0)), /0 bytes/);
  assertMalformed(() => decodeTlp(bytes('40 00 00 01 01 00 05 0f c0 00 10')), /11 bytes.*12 bytes/);
});

test('rejects a 4DW header cut short', () => {
  assertMalformed(() => decodeTlp(bytes('20 00 00 01 01 00 05 0f 00 00 00 02 00 00')), /4DW.*14 bytes/);
});

test('rejects unknown Fmt/Type combinations', () => {
  for (const b0 of [0x01, 0x02, 0x30 /* msg */, 0x4b /* CplDLk */, 0x80 /* prefix */, 0x24 /* 4DW cfg */, 0x6a /* 4DW CplD */]) {
    assertMalformed(() => decodeTlp(Uint8Array.of(b0, 0, 0, 1, 0, 0, 0, 0x0f, 0, 0, 0, 0, 1, 2, 3, 4)), /Fmt\/Type/);
  }
});

test('rejects payload length that does not match the Length field', () => {
  const good = encodeTlp(Tlp.memWrite(0x0100, 0x1000, seq(128), 5));
  // Length says 32 DW but only 12 payload bytes follow
  assertMalformed(() => decodeTlp(good.subarray(0, 24)), /32 DW but only 12 payload bytes/);
  // Trailing bytes
  const long = new Uint8Array(good.length + 4);
  long.set(good);
  assertMalformed(() => decodeTlp(long), /32 DW \(128 bytes\) but 132 payload bytes/);
  // No payload at all
  assertMalformed(() => decodeTlp(good.subarray(0, 12)), /only 0 payload bytes/);
  // CplD too short
  const cpld = encodeTlp(Tlp.completion(Tlp.memRead(1, 1, 0, 8), 0x0300, 0, seq(8), 8, 0));
  assertMalformed(() => decodeTlp(cpld.subarray(0, 16)), /2 DW but only 4/);
});

test('rejects payload on kinds without data', () => {
  assertMalformed(() => decodeTlp(bytes('00 00 00 01 01 00 05 0f c0 00 10 00 00 00 00 00')), /MRd carries no data but 4 bytes/);
  assertMalformed(() => decodeTlp(bytes('0a 00 00 00 03 00 20 08 01 00 22 00 00 00 00 00')), /Cpl carries no data/);
  assertMalformed(() => decodeTlp(bytes('04 00 00 01 00 00 11 0f 03 00 00 10 00 00 00 00')), /CfgRd0 carries no data/);
});

test('rejects a 4DW memory header carrying an address below 4 GiB', () => {
  assertMalformed(() => decodeTlp(bytes('20 00 00 01 01 00 05 0f 00 00 00 00 c0 00 10 00')), /4DW header for address 0xc0001000 below 4 GiB/);
  assertMalformed(() => decodeTlp(bytes('60 00 00 01 01 00 05 0f 00 00 00 00 00 00 00 00 01 02 03 04')), /below 4 GiB/);
});

test('rejects addresses above 2^53', () => {
  assertMalformed(() => decodeTlp(bytes('20 00 00 01 01 00 05 0f 00 20 00 00 00 00 00 04')), /beyond 2\^53/);
  assertMalformed(() => decodeTlp(bytes('20 00 00 01 01 00 05 0f ff ff ff ff 00 00 00 00')), /beyond 2\^53/);
});

test('rejects config requests whose Length is not 1 or whose Last DW BE is set', () => {
  assertMalformed(() => decodeTlp(bytes('04 00 00 02 00 00 11 0f 03 00 00 10')), /must be 1 DW/);
  assertMalformed(() => decodeTlp(bytes('44 00 00 02 00 00 11 0f 03 00 00 10 01 02 03 04 05 06 07 08')), /must be 1 DW/);
  assertMalformed(() => decodeTlp(bytes('04 00 00 01 00 00 11 ff 03 00 00 10')), /Last DW BE/);
});

test('rejects byte enables that break the spec rules', () => {
  assertMalformed(() => decodeTlp(bytes('00 00 00 01 01 00 05 ff c0 00 10 00')), /Last DW BE is 0xf but must be 0/);
  assertMalformed(() => decodeTlp(bytes('00 00 00 02 01 00 05 f0 c0 00 10 00')), /First DW BE is 0/);
  assertMalformed(() => decodeTlp(bytes('00 00 00 02 01 00 05 0f c0 00 10 00')), /Last DW BE is 0/);
});

test('rejects TD (digest) and EP (poisoned)', () => {
  assertMalformed(() => decodeTlp(bytes('00 00 80 01 01 00 05 0f c0 00 10 00')), /TD set/);
  assertMalformed(() => decodeTlp(bytes('00 00 40 01 01 00 05 0f c0 00 10 00')), /EP set/);
});

test('encode rejects Tlps that cannot be represented', () => {
  const bad = (mut: (t: Tlp) => void, base: () => Tlp = () => Tlp.memRead(1, 1, 0x1000, 8)) => {
    const t = base();
    mut(t);
    return () => encodeTlp(t);
  };
  assertMalformed(bad((t) => (t.lengthDw = 0)), /lengthDw 0/);
  assertMalformed(bad((t) => (t.lengthDw = 1025)), /lengthDw 1025/);
  assertMalformed(bad((t) => (t.address = 0x1002)), /DW-aligned/);
  assertMalformed(bad((t) => (t.address = 2 ** 53 + 4)), /DW-aligned/);
  assertMalformed(bad((t) => (t.tag = 256)), /tag 256/);
  assertMalformed(bad((t) => (t.requesterId = -1)), /requesterId -1/);
  assertMalformed(bad((t) => (t.lastBe = 0)), /Last DW BE is 0/);
  assertMalformed(() => encodeTlp(Tlp.memWrite(1, 0x1000, seq(6))), /data has 6 bytes/);
  assertMalformed(() => encodeTlp(Tlp.memWrite(1, 0x1000, new Uint8Array(0))), /lengthDw 0/);
  assertMalformed(bad((t) => (t.data = seq(8))), /carries no data/);
  const cpl = () => Tlp.completion(Tlp.memRead(1, 1, 0, 4), 0x300, 0, null, 4, 0);
  assertMalformed(bad((t) => (t.byteCount = 0), cpl), /byteCount 0/);
  assertMalformed(bad((t) => (t.status = 8), cpl), /status 8/);
  const cfg = () => Tlp.config('CfgRd0', 1, 1, bdf(3, 0, 0), 0x10, null);
  assertMalformed(bad((t) => (t.register = 0x11), cfg), /register 17/);
  assertMalformed(bad((t) => (t.register = 0x1000), cfg), /register 4096/);
  assertMalformed(bad((t) => (t.lengthDw = 2), cfg), /must be 1 DW/);
  assertMalformed(bad((t) => (t.lastBe = 1), cfg), /lastBe/);
});
