import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeRxRead,
  decodeRxWriteBack,
  decodeSrrctl,
  decodeTxDesc,
  DESC_BYTES,
  encodeRxRead,
  encodeRxWriteBack,
  encodeSrrctl,
  encodeTxDesc,
  RX_ERR,
  RX_STATUS,
  TX_CMD,
  TX_STATUS,
} from '../../src/devices/nic/nic-defs.js';

/** A little-endian value of `n` bytes at `i`. */
function le(b: Uint8Array, i: number, n: number): number {
  let v = 0;
  for (let k = n - 1; k >= 0; k--) v = v * 256 + b[i + k];
  return v;
}

describe('legacy transmit descriptor', () => {
  it('puts the address at 0 (64-bit), the length at 8, CMD at 11 and STA at 12, the rest zero', () => {
    const d = { address: 0x1_2345_6780, lengthBytes: 1514, cmd: TX_CMD.EOP | TX_CMD.RS, status: TX_STATUS.DD | TX_STATUS.BAD };
    const b = encodeTxDesc(d);
    assert.equal(b.length, DESC_BYTES);
    assert.equal(le(b, 0, 4), 0x2345_6780);
    assert.equal(le(b, 4, 4), 0x1);
    assert.equal(le(b, 8, 2), 1514);
    assert.equal(b[10], 0, 'CSO');
    assert.equal(b[11], 0x09, 'CMD: EOP (bit 0) | RS (bit 3)');
    assert.equal(b[12], 0x11, 'STA: DD (bit 0) | BAD (bit 4)');
    assert.deepEqual([...b.subarray(13)], [0, 0, 0], 'CSS and special');
    assert.deepEqual(decodeTxDesc(b), d);
  });

  it('round-trips addresses across the whole 64-bit range a JS number holds exactly', () => {
    for (const address of [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x8000_0000, 0x7_ffff_fff0, 2 ** 53 - 1]) {
      const d = { address, lengthBytes: 0xffff, cmd: 0xff, status: 0xff };
      assert.deepEqual(decodeTxDesc(encodeTxDesc(d)), d, `0x${address.toString(16)}`);
    }
  });

  it('decodes from a view into a larger buffer (a burst of fetched descriptors)', () => {
    const burst = new Uint8Array(3 * DESC_BYTES);
    const ds = [0, 1, 2].map((i) => ({ address: 0x9000_0000 + i * 0x1000, lengthBytes: 100 + i, cmd: i === 2 ? TX_CMD.EOP : 0, status: 0 }));
    ds.forEach((d, i) => burst.set(encodeTxDesc(d), i * DESC_BYTES));
    assert.deepEqual(
      ds.map((_, i) => decodeTxDesc(burst.subarray(i * DESC_BYTES, (i + 1) * DESC_BYTES))),
      ds,
    );
  });
});

describe('header-split receive descriptor', () => {
  it('read format: the packet buffer address at 0, the header buffer address at 8, both 64-bit', () => {
    const d = { packetAddress: 0x2_0000_1000, headerAddress: 0x3_8000_0040 };
    const b = encodeRxRead(d);
    assert.equal(b.length, DESC_BYTES);
    assert.equal(le(b, 0, 8), 0x2_0000_1000);
    assert.equal(le(b, 8, 8), 0x3_8000_0040);
    assert.deepEqual(decodeRxRead(b), d);
    for (const a of [0, 0xffff_ffff, 2 ** 53 - 1]) assert.deepEqual(decodeRxRead(encodeRxRead({ packetAddress: a, headerAddress: a })), { packetAddress: a, headerAddress: a });
  });

  it('write-back format: header length at 4, status at 8, errors at 10, packet length at 12', () => {
    const w = { headerBytes: 30, packetBytes: 1024, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 };
    const b = encodeRxWriteBack(w);
    assert.equal(b.length, DESC_BYTES);
    assert.equal(le(b, 0, 4), 0);
    assert.equal(le(b, 4, 2), 30);
    assert.equal(le(b, 8, 2), 0x3);
    assert.equal(le(b, 10, 2), 0);
    assert.equal(le(b, 12, 2), 1024);
    assert.deepEqual([b[6], b[7], b[14], b[15]], [0, 0, 0, 0]);
    assert.deepEqual(decodeRxWriteBack(b), w);
    const err = { headerBytes: 0, packetBytes: 0, status: RX_STATUS.DD | RX_STATUS.EOP, errors: RX_ERR.RXE | RX_ERR.HBO };
    const eb = encodeRxWriteBack(err);
    assert.equal(le(eb, 10, 2), 0x90, 'RXE (bit 7) | HBO (bit 4)');
    assert.deepEqual(decodeRxWriteBack(eb), err);
    const max = { headerBytes: 0xffff, packetBytes: 0xffff, status: 0xffff, errors: 0xffff };
    assert.deepEqual(decodeRxWriteBack(encodeRxWriteBack(max)), max);
  });

  it('a write-back read out of a ring buffer at an offset decodes the same', () => {
    const ring = new Uint8Array(4 * DESC_BYTES);
    const w = { headerBytes: 64, packetBytes: 1450, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 };
    ring.set(encodeRxWriteBack(w), 3 * DESC_BYTES);
    assert.deepEqual(decodeRxWriteBack(ring.subarray(3 * DESC_BYTES)), w);
  });
});

describe('SRRCTL', () => {
  it('BSIZEPKT in bits 4:0 (KiB), BSIZEHDR in bits 13:8 (64 B units), and back', () => {
    assert.equal(encodeSrrctl(2048, 128), 0x0202);
    assert.equal(encodeSrrctl(1024, 0), 0x0001);
    assert.equal(encodeSrrctl(31 * 1024, 63 * 64), 0x3f1f);
    for (const [p, h] of [
      [1024, 64],
      [2048, 256],
      [16 * 1024, 0],
      [31 * 1024, 4032],
    ]) {
      assert.deepEqual(decodeSrrctl(encodeSrrctl(p, h)), { packetBufferBytes: p, headerBufferBytes: h });
    }
  });

  it('decoding ignores the bits outside the two fields', () => {
    assert.deepEqual(decodeSrrctl(0xffff_c0e2), { packetBufferBytes: 2 * 1024, headerBufferBytes: 0 });
  });

  it('a size the fields cannot hold is refused, not truncated', () => {
    assert.throws(() => encodeSrrctl(32 * 1024, 64), RangeError, '32 KiB would wrap to 0');
    assert.throws(() => encodeSrrctl(1500, 64), RangeError, 'not whole KiB');
    assert.throws(() => encodeSrrctl(0, 64), RangeError, 'no packet buffer');
    assert.throws(() => encodeSrrctl(1024, 100), RangeError, 'not 64 B units');
    assert.throws(() => encodeSrrctl(1024, 4096), RangeError, 'past BSIZEHDR');
  });
});
