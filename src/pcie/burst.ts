/**
 * Bursts (burst granularity, docs/architecture.md "Two granularities"): the TLPs of one flow that the
 * per-TLP model would send back to back (one DMA write split at MPS and 4 KiB, one read's completions
 * split at the RCB) travel as one `Tlp` with `count` constituents. Constituent i is derivable: its
 * payload is `parts[i]` bytes of the one contiguous `data` view, its address the burst's plus the
 * bytes before it; a completion's byte count and lower address follow the same way. Every hop serves
 * the constituents analytically and keeps per-TLP's counters; `constituent` rebuilds one exactly
 * where bytes or a per-TLP object are needed (retransmission).
 */
import { headerBytes, headerBytesAt, Tlp } from './tlp.js';

/** Largest burst a run may ask for, bytes: bounds every burst's constituents (4096 at MPS 128... 65536 at 16 B). */
export const MAX_BURST_BYTES = 1 << 20;

/** Splits `total` bytes from `address` into constituent payloads of `limit(address, rest)` bytes each. */
export function splitParts(address: number, total: number, limit: (address: number, restBytes: number) => number): Uint16Array {
  const out: number[] = [];
  let off = 0;
  while (off < total) {
    const n = limit(address + off, total - off);
    out.push(n);
    off += n;
  }
  return Uint16Array.from(out);
}

/** Makes `t` a burst of `parts` (a single part stays a plain TLP, unless ready times must travel). */
export function asBurst(t: Tlp, parts: Uint16Array): Tlp {
  t.count = parts.length;
  t.parts = parts.length > 1 ? parts : null;
  if (t.parts) t.lengthDw = parts[0] >>> 2;
  return t;
}

/** Payload bytes of constituent i. */
export function partBytes(t: Tlp, i: number): number {
  return t.parts ? t.parts[i] : t.data ? t.data.length : 0;
}

/** Whether `t` must be served as a burst: several constituents, or ready times to honour. */
export function isBurst(t: Tlp): boolean {
  return t.count > 1 || t.readyPs !== null;
}

/** Header bytes of the constituent starting `offsetBytes` into the burst (a 4DW header from 4 GiB). */
export function partHeaderBytes(t: Tlp, offsetBytes: number): number {
  return headerBytesAt(t.kind, t.address + offsetBytes);
}

/** Constituents [from, to) as a burst of their own (a view: data, parts and ready times are shared). */
export function sliceBurst(t: Tlp, from: number, to: number): Tlp {
  let off = 0;
  for (let i = 0; i < from; i++) off += partBytes(t, i);
  let len = 0;
  for (let i = from; i < to; i++) len += partBytes(t, i);
  const s = new Tlp();
  s.kind = t.kind;
  s.requesterId = t.requesterId;
  s.tag = t.tag;
  s.completerId = t.completerId;
  s.status = t.status;
  s.firstBe = t.firstBe;
  // A request of one DW has no last byte enables (PCIe Base Spec 2.2.5): a 1-DW constituent of a longer burst drops them.
  s.lastBe = to - from === 1 && len === 4 && t.kind !== 'CplD' && t.kind !== 'Cpl' ? 0 : t.lastBe;
  s.address = t.address + off;
  s.byteCount = t.byteCount - off;
  s.lowerAddress = (t.lowerAddress + off) & 0x7f;
  s.data = t.data ? t.data.subarray(off, off + len) : null;
  s.count = to - from;
  s.parts = t.parts && s.count > 1 ? t.parts.subarray(from, to) : null;
  s.lengthDw = (s.parts ? s.parts[0] : len) >>> 2;
  s.readyPs = t.readyPs ? t.readyPs.subarray(from, to) : null;
  return s;
}

/** Constituent i as the plain TLP per-TLP granularity would have sent. */
export function constituent(t: Tlp, i: number): Tlp {
  if (!t.parts) {
    if (t.readyPs === null) return t;
    const c = sliceBurst(t, 0, 1);
    c.readyPs = null;
    return c;
  }
  const c = sliceBurst(t, i, i + 1);
  c.readyPs = null;
  return c;
}

/** Each constituent's encoded length (header + payload), in order, into `out` (length count). */
export function encodedParts(t: Tlp, out: Float64Array): Float64Array {
  let off = 0;
  for (let i = 0; i < t.count; i++) {
    const n = partBytes(t, i);
    out[i] = (t.parts ? partHeaderBytes(t, off) : headerBytes(t)) + n;
    off += n;
  }
  return out;
}
