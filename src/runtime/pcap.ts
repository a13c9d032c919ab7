/**
 * The pcap file format (the classic one every tool reads: tcpdump, Wireshark, tshark), nanosecond
 * variant: magic 0xa1b23c4d, version 2.4, link type 1 (Ethernet). Frames are written without
 * preamble or FCS, as capture hardware delivers them. Pure encoding: the CLI writes the bytes.
 * (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html)
 */
const MAGIC_NS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;
/** Largest frame kept whole (an ExpEther frame is at most 1518 bytes). */
export const SNAPLEN = 65535;

/** The 24-byte file header. */
export function pcapFileHeader(): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, MAGIC_NS, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, SNAPLEN, true);
  v.setUint32(20, LINKTYPE_ETHERNET, true);
  return b;
}

/** One record: a 16-byte header (time in s and ns, lengths) and the frame's bytes. */
export function pcapRecord(timePs: number, frame: Uint8Array): Uint8Array {
  const ns = Math.floor(timePs / 1000);
  return pcapRecordAt(Math.floor(ns / 1e9), ns % 1e9, frame);
}

/** One record stamped in seconds and nanoseconds (live captures: wall time since the Unix epoch, beyond a double's picoseconds). */
export function pcapRecordAt(seconds: number, nanos: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + frame.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, seconds, true);
  v.setUint32(4, nanos, true);
  v.setUint32(8, frame.length, true);
  v.setUint32(12, frame.length, true);
  out.set(frame, 16);
  return out;
}

/** Reads a nanosecond pcap back (tests, and anyone checking a capture without Wireshark). */
export function readPcap(bytes: Uint8Array): { timeNs: number; frame: Uint8Array }[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes.length < 24 || v.getUint32(0, true) !== MAGIC_NS) throw new Error('not a nanosecond pcap file (magic 0xa1b23c4d, little-endian)');
  if (v.getUint32(20, true) !== LINKTYPE_ETHERNET) throw new Error('not an Ethernet capture');
  const out: { timeNs: number; frame: Uint8Array }[] = [];
  let off = 24;
  while (off < bytes.length) {
    if (off + 16 > bytes.length) throw new Error(`truncated record header at byte ${off}`);
    const len = v.getUint32(off + 8, true);
    if (off + 16 + len > bytes.length) throw new Error(`truncated record at byte ${off}: ${len} bytes announced`);
    out.push({ timeNs: v.getUint32(off, true) * 1e9 + v.getUint32(off + 4, true), frame: bytes.subarray(off + 16, off + 16 + len) });
    off += 16 + len;
  }
  return out;
}
