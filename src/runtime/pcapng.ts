/**
 * The pcapng file format, for a capture of several cables: one Interface Description Block per cable,
 * named after it (`if_name`), stamped in nanoseconds (`if_tsresol` 9), and each frame an Enhanced
 * Packet Block naming its interface, so Wireshark shows which cable a frame was on (the
 * `frame.interface_name` field). Little-endian; link type 1 (Ethernet). Frames are written as the MAC
 * hands them over, without preamble, FCS or the pad a wire adds below 60 bytes: the pad carries
 * nothing and is not part of the frame's bytes in the model (pcap.ts does the same).
 * (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html)
 */
import { SNAPLEN } from './pcap.js';

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const LINKTYPE_ETHERNET = 1;
const OPT_END = 0;
const IF_NAME = 2;
const IF_TSRESOL = 9;

const pad4 = (n: number) => (n + 3) & ~3;

/** A block: type, total length, body (padded to 4 bytes), total length again. */
function block(type: number, body: Uint8Array): Uint8Array {
  const total = 12 + pad4(body.length);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, total, true);
  out.set(body, 8);
  v.setUint32(total - 4, total, true);
  return out;
}

/** Options: code, length, value padded to 4; then opt_endofopt. */
function options(opts: [number, Uint8Array][]): Uint8Array {
  const size = opts.reduce((n, [, v]) => n + 4 + pad4(v.length), 4);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let off = 0;
  for (const [code, value] of opts) {
    v.setUint16(off, code, true);
    v.setUint16(off + 2, value.length, true);
    out.set(value, off + 4);
    off += 4 + pad4(value.length);
  }
  v.setUint16(off, OPT_END, true);
  return out;
}

/** The Section Header Block: byte order, version 1.0, section length unknown. */
export function pcapngSectionHeader(): Uint8Array {
  const body = new Uint8Array(16);
  const v = new DataView(body.buffer);
  v.setUint32(0, BYTE_ORDER_MAGIC, true);
  v.setUint16(4, 1, true);
  v.setUint16(6, 0, true);
  v.setBigInt64(8, -1n, true);
  return block(SHB, body);
}

/** An Interface Description Block for one cable, `name` as `dconnect links` gives it; nanosecond stamps. */
export function pcapngInterface(name: string): Uint8Array {
  const opts = options([
    [IF_NAME, new TextEncoder().encode(name)],
    [IF_TSRESOL, Uint8Array.of(9)],
  ]);
  const body = new Uint8Array(8 + opts.length);
  const v = new DataView(body.buffer);
  v.setUint16(0, LINKTYPE_ETHERNET, true);
  v.setUint32(4, SNAPLEN, true);
  body.set(opts, 8);
  return block(IDB, body);
}

/** An Enhanced Packet Block: the frame on interface `iface` (its IDB's index, from 0) at `timePs`. */
export function pcapngPacket(iface: number, timePs: number, frame: Uint8Array): Uint8Array {
  return pcapngPacketNs(iface, BigInt(Math.floor(timePs / 1000)), frame);
}

function pcapngPacketNs(iface: number, ns: bigint, frame: Uint8Array): Uint8Array {
  const body = new Uint8Array(20 + pad4(frame.length));
  const v = new DataView(body.buffer);
  v.setUint32(0, iface, true);
  v.setUint32(4, Number(ns >> 32n), true);
  v.setUint32(8, Number(ns & 0xffffffffn), true);
  v.setUint32(12, frame.length, true);
  v.setUint32(16, frame.length, true);
  body.set(frame, 20);
  return block(EPB, body);
}

/** An Enhanced Packet Block stamped `seconds` + `nanos` (live captures' wall clock: Unix time in ps is beyond a double's integers). */
export function pcapngPacketAt(iface: number, seconds: number, nanos: number, frame: Uint8Array): Uint8Array {
  return pcapngPacketNs(iface, BigInt(seconds) * 1_000_000_000n + BigInt(nanos), frame);
}

/** Reads a pcapng file of this module's kind back (tests, and anyone checking a capture without Wireshark). */
export function readPcapng(bytes: Uint8Array): { interfaces: string[]; packets: { iface: number; timeNs: number; frame: Uint8Array }[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes.length < 28 || v.getUint32(0, true) !== SHB || v.getUint32(8, true) !== BYTE_ORDER_MAGIC) throw new Error('not a little-endian pcapng file');
  const interfaces: string[] = [];
  const packets: { iface: number; timeNs: number; frame: Uint8Array }[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (off + 12 > bytes.length) throw new Error(`truncated block at byte ${off}`);
    const type = v.getUint32(off, true);
    const total = v.getUint32(off + 4, true);
    if (total < 12 || off + total > bytes.length || v.getUint32(off + total - 4, true) !== total) throw new Error(`bad block length ${total} at byte ${off}`);
    if (type === IDB) {
      let o = off + 16;
      let name = `if${interfaces.length}`;
      while (o + 4 <= off + total - 4) {
        const code = v.getUint16(o, true);
        const len = v.getUint16(o + 2, true);
        if (code === OPT_END) break;
        if (code === IF_NAME) name = new TextDecoder().decode(bytes.subarray(o + 4, o + 4 + len));
        o += 4 + pad4(len);
      }
      interfaces.push(name);
    } else if (type === EPB) {
      const len = v.getUint32(off + 20, true);
      packets.push({ iface: v.getUint32(off + 8, true), timeNs: v.getUint32(off + 12, true) * 2 ** 32 + v.getUint32(off + 16, true), frame: bytes.subarray(off + 28, off + 28 + len) });
    }
    off += total;
  }
  return { interfaces, packets };
}
