import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { frameDst, frameEtherType, frameSrc, macAt, writeEthHeader } from '../../src/devices/net-port.js';
import {
  BLOCK_TRANSFER_ETHERTYPE,
  BT_FRAME_HEADER_BYTES,
  BT_HEADER_BYTES,
  BT_MAX_PAYLOAD_BYTES,
  BT_TYPE,
  decodeBtHeader,
  encodeBtFrame,
  encodeBtHeader,
  framesOf,
  type BtHeader,
} from '../../src/net/block-transfer.js';

const A = 0x0060_b920_0103;
const B = 0x0200_0000_0102;

function payload(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);
}

/** Asserts `fn` throws a DconnectError MALFORMED_PACKET whose message matches `what`. */
function malformed(fn: () => unknown, what: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DconnectError, `a DconnectError, got ${String(e)}`);
    assert.equal(e.code, 'MALFORMED_PACKET');
    assert.match(e.message, what);
    return true;
  });
}

describe('Ethernet header helpers', () => {
  it('write and read 48-bit MACs and the EtherType, most significant byte first', () => {
    const f = new Uint8Array(14);
    writeEthHeader(f, 0xffee_ddcc_bbaa, 0x0102_0304_0506, 0x88b6);
    assert.deepEqual([...f], [0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 1, 2, 3, 4, 5, 6, 0x88, 0xb6]);
    assert.equal(frameDst(f), 0xffee_ddcc_bbaa);
    assert.equal(frameSrc(f), 0x0102_0304_0506);
    assert.equal(frameEtherType(f), 0x88b6);
    assert.equal(macAt(f, 6), 0x0102_0304_0506);
  });
});

describe('block transfer header', () => {
  it('is 16 bytes after the Ethernet header, big-endian: type, flags, stream, sequence, value, reserved', () => {
    const h: BtHeader = { dst: B, src: A, type: BT_TYPE.DATA, stream: 0x1234, seq: 0x89ab_cdef, value: 1024 };
    const b = encodeBtHeader(h);
    assert.equal(b.length, BT_FRAME_HEADER_BYTES);
    assert.equal(BT_FRAME_HEADER_BYTES, 14 + BT_HEADER_BYTES);
    assert.equal(frameEtherType(b), BLOCK_TRANSFER_ETHERTYPE);
    assert.deepEqual([...b.subarray(14)], [1, 0, 0x12, 0x34, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0x04, 0x00, 0, 0, 0, 0]);
    assert.deepEqual(decodeBtHeader(b, BT_FRAME_HEADER_BYTES + 1024), h);
  });

  it('round-trips DATA frames with their payload and CREDIT frames, including the extremes', () => {
    const cases: [BtHeader, Uint8Array | null][] = [
      [{ dst: B, src: A, type: BT_TYPE.DATA, stream: 0, seq: 0, value: 1 }, payload(1, 1)],
      [{ dst: B, src: A, type: BT_TYPE.DATA, stream: 0xffff, seq: 0xffff_ffff, value: BT_MAX_PAYLOAD_BYTES }, payload(BT_MAX_PAYLOAD_BYTES, 2)],
      [{ dst: A, src: B, type: BT_TYPE.CREDIT, stream: 7, seq: 0, value: 0xffff_ffff }, null],
      [{ dst: 0xffff_ffff_ffff, src: 0, type: BT_TYPE.CREDIT, stream: 1, seq: 5, value: 0 }, null],
    ];
    for (const [h, p] of cases) {
      const f = encodeBtFrame(h, p);
      assert.equal(f.length, BT_FRAME_HEADER_BYTES + (p?.length ?? 0));
      assert.deepEqual(decodeBtHeader(f), h);
      if (p) assert.deepEqual(f.subarray(BT_FRAME_HEADER_BYTES), p);
    }
    assert.equal(BT_FRAME_HEADER_BYTES + BT_MAX_PAYLOAD_BYTES, 1514, 'the largest frame is Ethernet\'s largest');
  });

  it('decodes from a header buffer alone, given the whole frame\'s length (what a NIC splits off)', () => {
    const h: BtHeader = { dst: B, src: A, type: BT_TYPE.DATA, stream: 3, seq: 9, value: 512 };
    const f = encodeBtFrame(h, payload(512, 3));
    const headerBuffer = new Uint8Array(64);
    headerBuffer.set(f.subarray(0, BT_FRAME_HEADER_BYTES));
    assert.deepEqual(decodeBtHeader(headerBuffer.subarray(0, BT_FRAME_HEADER_BYTES), f.length), h);
    // A view into a larger buffer at an offset decodes the same.
    const big = new Uint8Array(100 + f.length);
    big.set(f, 100);
    assert.deepEqual(decodeBtHeader(big.subarray(100)), h);
  });

  it('encodeBtHeader writes into a given buffer and zeroes flags and reserved', () => {
    const out = new Uint8Array(BT_FRAME_HEADER_BYTES).fill(0xff);
    encodeBtHeader({ dst: B, src: A, type: BT_TYPE.CREDIT, stream: 1, seq: 0, value: 32 }, out);
    assert.equal(out[15], 0);
    assert.deepEqual([...out.subarray(26, 30)], [0, 0, 0, 0]);
    assert.equal(decodeBtHeader(out).value, 32);
  });

  it('framesOf rounds up', () => {
    assert.equal(framesOf(0, 1024), 0);
    assert.equal(framesOf(1, 1024), 1);
    assert.equal(framesOf(1024, 1024), 1);
    assert.equal(framesOf(1025, 1024), 2);
    assert.equal(framesOf(256 * 1024 * 1024, 1024), 262144);
  });
});

describe('block transfer header: malformed frames', () => {
  const data = (): Uint8Array => encodeBtFrame({ dst: B, src: A, type: BT_TYPE.DATA, stream: 1, seq: 2, value: 100 }, payload(100, 4));
  const credit = (): Uint8Array => encodeBtFrame({ dst: B, src: A, type: BT_TYPE.CREDIT, stream: 1, seq: 0, value: 10 }, null);

  it('shorter than the header', () => {
    malformed(() => decodeBtHeader(new Uint8Array(0)), /0 bytes, shorter than its 30-byte header/);
    malformed(() => decodeBtHeader(data().subarray(0, BT_FRAME_HEADER_BYTES - 1)), /29 bytes, shorter than its 30-byte header/);
  });

  it('another EtherType', () => {
    const f = data();
    f[12] = 0x88;
    f[13] = 0xb5; // ExpEther's
    malformed(() => decodeBtHeader(f), /EtherType 0x88b5, not 0x88b6/);
    const ip = credit();
    ip[12] = 0x08;
    ip[13] = 0x00;
    malformed(() => decodeBtHeader(ip), /EtherType 0x800/);
  });

  it('an unknown type', () => {
    for (const t of [0, 3, 0xff]) {
      const f = data();
      f[14] = t;
      malformed(() => decodeBtHeader(f), new RegExp(`unknown type ${t}\\b`));
    }
  });

  it('non-zero flags or reserved bytes', () => {
    const flags = data();
    flags[15] = 1;
    malformed(() => decodeBtHeader(flags), /reserved fields are not zero/);
    for (let i = 26; i < 30; i++) {
      const r = credit();
      r[i] = 0x80;
      malformed(() => decodeBtHeader(r), /reserved fields are not zero/);
    }
  });

  it('DATA whose length field does not match its payload', () => {
    const f = data();
    malformed(() => decodeBtHeader(f.subarray(0, f.length - 1)), /DATA says 100 payload bytes but carries 99/);
    malformed(() => decodeBtHeader(f, f.length + 4), /DATA says 100 payload bytes but carries 104/);
    const empty = encodeBtFrame({ dst: B, src: A, type: BT_TYPE.DATA, stream: 1, seq: 0, value: 1 }, null);
    malformed(() => decodeBtHeader(empty), /DATA says 1 payload bytes but carries 0/);
  });

  it('CREDIT with a payload', () => {
    const c = credit();
    const withPayload = new Uint8Array(c.length + 8);
    withPayload.set(c);
    malformed(() => decodeBtHeader(withPayload), /CREDIT carries 8 payload bytes/);
    malformed(() => decodeBtHeader(c, c.length + 1), /CREDIT carries 1 payload bytes/);
  });

  it('the error says what to suspect', () => {
    try {
      decodeBtHeader(new Uint8Array(3));
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof DconnectError);
      assert.match(e.message, /^block transfer frame: /);
      assert.ok(e.hint && e.hint.length > 0);
    }
  });
});
