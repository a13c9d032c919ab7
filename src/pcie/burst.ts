/**
 * Bursts (burst granularity, docs/architecture.md "Two granularities"): the TLPs of one flow that the
 * per-TLP model would send back to back (one DMA write split at MPS and 4 KiB, one read's completions
 * split at the RCB) travel as one `Tlp` with `count` constituents. Constituent i is derivable: its
 * payload is `parts[i]` bytes of the one contiguous `data` view, its address the burst's plus the
 * bytes before it; a completion's byte count and lower address follow the same way. Every hop serves
 * the constituents analytically and keeps per-TLP's counters; `constituent` rebuilds one exactly
 * where bytes or a per-TLP object are needed (retransmission).
 *
 * Reads travel as bursts too: an MRd burst is the read requests a DMA engine issues back to back (one
 * per free tag, contiguous addresses), and the completer answers it with one completion burst holding
 * every request's completions in order. Both carry a `ReadSet` (each request's tag and length), from
 * which a constituent's tag, address, byte count and lower address follow.
 */
import { headerBytes, headerBytesAt, Tlp, type ReadSet } from './tlp.js';

/** Largest burst a run may ask for, bytes: bounds every burst's constituents (4096 at MPS 128... 65536 at 16 B). */
export const MAX_BURST_BYTES = 1 << 20;

/**
 * Most read requests in one MRd burst. A read burst's completions free their tags at one event, and
 * the next requests then meet, at every hop they share with another flow, whatever that flow
 * committed meanwhile (per-TLP's would have slipped in between): the longer the burst, the later the
 * read loop runs. Measured on the equivalence matrix (2 MiB moves, 2026-12-06): 1 request per burst
 * gives 13 of 15 cells within 0.5% (summed |error| 2.86%, worst 1.56%) at 30-47% of per-TLP's events
 * on the modern and direct cells; 2 requests the same 13 cells (3.49%, worst 1.55%) at a fifth to a
 * quarter fewer events; 4 requests 4.73%, worst 2.25%. Again after the ACK timer and DC buffer
 * changes (later that day): 2 requests 13 cells, 3.44%, worst 1.43%; 4 requests 13 cells, 4.59%, worst
 * 2.33% (`modern` conventional x8) at 17-32% of per-TLP's events; 8 requests 10 cells, 16.2%.
 */
export const MAX_READ_BURST_REQUESTS = 2;

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

/** The read set of requests `tags[j]` asking `lens[j]` bytes each, back to back from `address`. */
export function readSet(address: number, tags: ArrayLike<number>, lens: ArrayLike<number>): ReadSet {
  const ends = new Float64Array(lens.length);
  let end = 0;
  for (let j = 0; j < lens.length; j++) ends[j] = end += lens[j];
  return { address, tags: Uint16Array.from(tags), lens: Uint16Array.from(lens), ends };
}

/** Requests [from, to) of a read set as one of their own (views). */
function subReads(r: ReadSet, from: number, to: number): ReadSet {
  const before = from > 0 ? r.ends[from - 1] : 0;
  const ends = new Float64Array(to - from);
  for (let j = from; j < to; j++) ends[j - from] = r.ends[j] - before;
  return { address: r.address + before, tags: r.tags.subarray(from, to), lens: r.lens.subarray(from, to), ends };
}

/** The request of a read set holding byte `offset` (counted from its first requested byte). */
export function requestAt(r: ReadSet, offset: number): number {
  let lo = 0;
  let hi = r.ends.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r.ends[mid] <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An MRd burst standing for the requests of `reads` (one TLP when it holds one). */
export function readBurst(requesterId: number, reads: ReadSet): Tlp {
  const t = Tlp.memRead(requesterId, reads.tags[0], reads.address, reads.lens[0]);
  if (reads.lens.length === 1) return t;
  t.reads = reads;
  t.count = reads.lens.length;
  t.parts = new Uint16Array(t.count); // requests carry no payload
  return t;
}

/**
 * The completions answering `req` (a read or a read burst) with `data`, split by `limit(address,
 * restBytes)` within each request as per-TLP splits them: a plain TLP, one read's burst, or one burst
 * holding every request's completions in order.
 */
export function completionBurst(req: Tlp, completerId: number, status: number, data: Uint8Array, limit: (address: number, restBytes: number) => number, requestReadyPs: Float64Array | null = null): Tlp {
  const reads = req.reads;
  const first = Tlp.completion(req, completerId, status, data, reads ? reads.lens[0] : data.length, req.address);
  if (reads === null) return asBurst(first, splitParts(req.address, data.length, limit));
  // Each request's completions, split as per-TLP splits them, ready when the completer had its data.
  const out: number[] = [];
  const ready: number[] = [];
  for (let j = 0, start = 0; j < reads.lens.length; start = reads.ends[j++]) {
    const a = reads.address + start;
    for (let off = 0; off < reads.lens[j]; ) {
      const n = limit(a + off, reads.lens[j] - off);
      out.push(n);
      if (requestReadyPs) ready.push(requestReadyPs[j]);
      off += n;
    }
  }
  first.reads = reads;
  first.readsOffsetBytes = 0;
  if (requestReadyPs) first.readyPs = Float64Array.from(ready);
  return asBurst(first, Uint16Array.from(out));
}

/** Bytes a request (or an MRd burst, all of them) asks for, or a write's payload: what a completer checks against its BAR. */
export function spanBytes(t: Tlp): number {
  if (t.kind === 'MRd') return t.reads ? t.reads.ends[t.reads.ends.length - 1] : t.lengthDw * 4;
  return t.data ? t.data.length : t.lengthDw * 4;
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
  if (to === t.count && t.data) len = t.data.length - off; // the rest of a burst: no need to walk it
  else for (let i = from; i < to; i++) len += partBytes(t, i);
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
  s.lengthDw = s.parts ? s.parts[0] >>> 2 : t.data ? len >>> 2 : t.lengthDw; // a request without data keeps its length
  s.readyPs = t.readyPs ? t.readyPs.subarray(from, to) : null;
  if (t.reads !== null) sliceReads(t, s, from, to, off);
  return s;
}

/** A read burst's slice: its requests (an MRd burst) or where its completions start (a completion burst), and its first constituent's fields. */
function sliceReads(t: Tlp, s: Tlp, from: number, to: number, off: number): void {
  const r = t.reads!;
  if (t.kind === 'MRd') {
    const sub = subReads(r, from, to);
    s.address = sub.address;
    s.tag = sub.tags[0];
    s.lengthDw = sub.lens[0] >>> 2;
    s.lastBe = s.lengthDw > 1 ? 0xf : 0;
    if (to - from > 1) s.reads = sub;
    else s.parts = null;
    return;
  }
  const at = t.readsOffsetBytes + off;
  const j = requestAt(r, at);
  s.tag = r.tags[j];
  s.byteCount = r.ends[j] - at;
  s.lowerAddress = (r.address + at) & 0x7f;
  s.address = 0;
  if (to - from > 1) {
    s.reads = r;
    s.readsOffsetBytes = at;
  }
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
