import { DconnectError } from '../core/errors.js';
import { ETH_HEADER_BYTES, frameDst, frameEtherType, frameSrc, writeEthHeader } from '../devices/net-port.js';

/**
 * The block transfer protocol NICs and clients speak (dconnect's own, on IEEE 802's second local
 * experimental EtherType; ExpEther has the first): a stream of DATA frames numbered from 0, each with
 * a fixed payload (the last may be shorter), under credit flow control: the receiver's CREDIT frame says
 * "send frames numbered below N". Credits keep every receive ring and buffer from overflowing, so no
 * frame is ever dropped by a receiver and the protocol needs no retransmission on a lossless network
 * (a frame lost anyway is a gap the receiver reports). A header is 16 bytes after the Ethernet header,
 * big-endian (network order):
 *
 *   0 type (1 DATA, 2 CREDIT)   1 flags (0)   2 stream id (u16)   4 sequence (u32)
 *   8 DATA: payload bytes / CREDIT: the credit limit (u32)         12 reserved (u32, 0)
 */
export const BLOCK_TRANSFER_ETHERTYPE = 0x88b6;
export const BT_HEADER_BYTES = 16;
/** Ethernet header plus ours: what a NIC splits off into the host's header buffer. */
export const BT_FRAME_HEADER_BYTES = ETH_HEADER_BYTES + BT_HEADER_BYTES;
/** Largest payload a frame may carry: Ethernet's 1500 B less our header. */
export const BT_MAX_PAYLOAD_BYTES = 1500 - BT_HEADER_BYTES;

export const BT_TYPE = { DATA: 1, CREDIT: 2 } as const;

export interface BtHeader {
  dst: number;
  src: number;
  type: number;
  stream: number;
  seq: number;
  /** DATA: payload bytes; CREDIT: frames numbered below this may be sent. */
  value: number;
}

/** A frame's first BT_FRAME_HEADER_BYTES: the Ethernet header and ours. */
export function encodeBtHeader(h: BtHeader, out = new Uint8Array(BT_FRAME_HEADER_BYTES)): Uint8Array {
  writeEthHeader(out, h.dst, h.src, BLOCK_TRANSFER_ETHERTYPE);
  const v = new DataView(out.buffer, out.byteOffset + ETH_HEADER_BYTES, BT_HEADER_BYTES);
  v.setUint8(0, h.type);
  v.setUint8(1, 0);
  v.setUint16(2, h.stream);
  v.setUint32(4, h.seq);
  v.setUint32(8, h.value);
  v.setUint32(12, 0);
  return out;
}

/** A whole frame: header and payload. */
export function encodeBtFrame(h: BtHeader, payload: Uint8Array | null): Uint8Array {
  const out = new Uint8Array(BT_FRAME_HEADER_BYTES + (payload?.length ?? 0));
  encodeBtHeader(h, out);
  if (payload) out.set(payload, BT_FRAME_HEADER_BYTES);
  return out;
}

const bad = (msg: string) => new DconnectError('MALFORMED_PACKET', `block transfer frame: ${msg}`, 'the sender is not speaking this protocol, or the frame was corrupted');

/**
 * Decodes the header of a frame (or of a header buffer holding its first bytes; `frameBytes` is the
 * whole frame's length). Throws a DconnectError (MALFORMED_PACKET) naming what is wrong.
 */
export function decodeBtHeader(b: Uint8Array, frameBytes = b.length): BtHeader {
  if (b.length < BT_FRAME_HEADER_BYTES) throw bad(`${b.length} bytes, shorter than its ${BT_FRAME_HEADER_BYTES}-byte header`);
  const et = frameEtherType(b);
  if (et !== BLOCK_TRANSFER_ETHERTYPE) throw bad(`EtherType 0x${et.toString(16)}, not 0x${BLOCK_TRANSFER_ETHERTYPE.toString(16)}`);
  const v = new DataView(b.buffer, b.byteOffset + ETH_HEADER_BYTES, BT_HEADER_BYTES);
  const h: BtHeader = { dst: frameDst(b), src: frameSrc(b), type: v.getUint8(0), stream: v.getUint16(2), seq: v.getUint32(4), value: v.getUint32(8) };
  if (h.type !== BT_TYPE.DATA && h.type !== BT_TYPE.CREDIT) throw bad(`unknown type ${h.type}`);
  if (v.getUint8(1) !== 0 || v.getUint32(12) !== 0) throw bad('reserved fields are not zero');
  const payload = frameBytes - BT_FRAME_HEADER_BYTES;
  if (h.type === BT_TYPE.DATA && h.value !== payload) throw bad(`DATA says ${h.value} payload bytes but carries ${payload}`);
  if (h.type === BT_TYPE.CREDIT && payload !== 0) throw bad(`CREDIT carries ${payload} payload bytes`);
  return h;
}

/** Frames a stream of `lengthBytes` takes at `frameBytes` of payload each. */
export function framesOf(lengthBytes: number, frameBytes: number): number {
  return Math.ceil(lengthBytes / frameBytes);
}
