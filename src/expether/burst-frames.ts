/**
 * A burst frame (burst granularity: ethernet/frame.ts `parts`) as the frames per-TLP granularity puts
 * on the wire: each TLP constituent in its own ExpEther frame with its own sequence number, each bare
 * ACK of an ACK burst in its own frame. Whatever must see real frames uses this one split: a channel
 * that crosses processes (live/udp-transport.ts), captures (runtime/capture.ts). The far bridge then
 * receives plain frames, which its per-frame path (reorder buffer, NAKs) handles at any granularity.
 *
 * A burst of TLP frames also has a compact encoding of its own (`encodeBurstFrame`), for a channel that
 * carries bursts whole (the live UDP channel on a cable without injected faults): the constituents
 * share one header, so it is written once, with the data of all of them back to back:
 *
 *   bytes 0-1        constituent count k (2..MAX_BURST_PARTS); bit 15 set: a read burst (below)
 *   [read burst      u16 m, the requests its constituents belong to (1..k), then m tags (u16) and m
 *                    lengths (u16): an MRd burst's requests, or for completions each request's bytes
 *                    left at its first completion here (its byte count)]
 *   then 2k bytes    each constituent's TLP payload bytes (u16, big-endian; 0 for a read request)
 *   then             constituent 0 as a whole frame (pdu-codec.ts encodeExpEtherFrame: its headers, its payload)
 *   then             the payloads of constituents 1..k-1, back to back
 *
 * Constituent 0's payload and the rest are adjacent, so a decoder takes the burst's data as one view.
 * Every other constituent follows from the first, the lengths and, for a read burst, the requests'
 * tags (pcie/burst.ts): a read burst is several requests back to back from one address (an MRd
 * burst), or their completions in order (a completion burst), whose tags the first constituent alone
 * does not give.
 */
import { DconnectError } from '../core/errors.js';
import { Frame } from '../ethernet/frame.js';
import { asBurst, constituent, encodedParts, readBurst, readSet, requestAt, sliceBurst } from '../pcie/burst.js';
import type { Tlp } from '../pcie/tlp.js';
import { decodeExpEtherFrame, encodeExpEtherFrame, FRAME_HEADER_BYTES } from './pdu-codec.js';
import { EXPETHER_HEADER_BYTES, ExpEtherPdu } from './pdu.js';

/** The frames `frame` stands for, oldest first (itself when it is not a burst). */
export function constituentFrames(frame: Frame): Frame[] {
  const parts = frame.parts;
  if (parts === null) return [frame];
  const pdu = frame.payload;
  if (!(pdu instanceof ExpEtherPdu)) throw new Error(`a burst of ${parts.length} frames whose payload is not an ExpEther PDU: only bridges send bursts`);
  const out: Frame[] = new Array(parts.length);
  if (pdu.tlp !== null) {
    // Every frame carries the cumulative ACK the burst piggybacked (per-TLP's would carry the same: none arrived in between).
    for (let i = 0; i < parts.length; i++) out[i] = constituentFrame(frame, i);
    return out;
  }
  const acks = pdu.burstAcks;
  if (pdu.kind !== 'ack' || acks === null || acks.length !== parts.length) throw new Error(`a burst of ${parts.length} frames of kind ${pdu.kind} with ${acks ? acks.length : 'no'} ACK values: bursts carry TLPs or bare ACKs`);
  for (let i = 0; i < parts.length; i++) out[i] = plain(frame, new ExpEtherPdu('ack', -1, acks[i], null, null), parts[i]);
  return out;
}

/**
 * Frames [from, to) of a burst frame (TLP or bare-ACK; at least two) as one of their own, with their ready times when
 * the burst has them (views: a hop that adds to the piece's times adds to the burst's). A channel
 * that draws faults per frame sends the runs between faulty frames this way.
 */
export function burstPiece(frame: Frame, from: number, to: number): Frame {
  if (to - from < 2) throw new RangeError(`a burst piece of ${to - from} frames: one frame crosses as constituentFrames' own`);
  const pdu = frame.payload as ExpEtherPdu;
  let one: ExpEtherPdu;
  if (pdu.tlp !== null) one = new ExpEtherPdu('tlp', pdu.seq + from, pdu.ack, sliceBurst(pdu.tlp, from, to), null);
  else {
    const acks = pdu.burstAcks!.subarray(from, to);
    one = new ExpEtherPdu('ack', -1, acks[acks.length - 1], null, null);
    one.burstAcks = acks;
  }
  const parts = frame.parts!.subarray(from, to);
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += parts[i];
  const out = new Frame(frame.dst, frame.src, frame.vlan, frame.etherType, one, total, parts);
  out.readRequest = frame.readRequest;
  if (frame.readyPs) out.readyPs = frame.readyPs.subarray(from, to);
  return out;
}

/**
 * A burst frame split where per-frame faults hit it, in frame order (a channel that draws faults per
 * frame): `isHit(i)` is asked for each frame in turn (the caller draws there); each frame hit goes to
 * `hit` as its constituent, and each run between hits to `clean`: the frame itself when nothing hit,
 * a burst piece of two or more frames, or one constituent.
 */
export function splitAtHits(frame: Frame, isHit: (i: number) => boolean, clean: (run: Frame, from: number, to: number) => void, hit: (one: Frame, i: number) => void): void {
  // A frame with ready times may stand for one frame only (pcie/burst.ts asBurst): it is its own run.
  const n = frame.readyPs?.length ?? frame.parts!.length;
  // Only the frames that cross alone are made (at 1% loss and reordering a hit is ~1 frame in 50;
  // making every frame of a burst at its first hit was a `sliceBurst` per frame).
  let acks: Frame[] | null = null;
  const one = (i: number): Frame => {
    if (frame.parts === null) return frame;
    const pdu = frame.payload;
    if (pdu instanceof ExpEtherPdu && pdu.tlp !== null) return constituentFrame(frame, i);
    return (acks ??= constituentFrames(frame))[i]; // a bare-ACK burst's frames (or its error)
  };
  const run = (a: number, b: number) => {
    if (a === 0 && b === n) return clean(frame, a, b);
    if (b - a > 1) return clean(burstPiece(frame, a, b), a, b);
    clean(one(a), a, b);
  };
  let from = 0;
  for (let i = 0; i < n; i++) {
    if (!isHit(i)) continue;
    if (i > from) run(from, i);
    hit(one(i), i);
    from = i + 1;
  }
  if (from < n) run(from, n);
}

function plain(burst: Frame, pdu: ExpEtherPdu, payloadBytes: number): Frame {
  const f = new Frame(burst.dst, burst.src, burst.vlan, burst.etherType, pdu, payloadBytes);
  f.readRequest = burst.readRequest;
  return f;
}

/** Most constituents a burst record may hold: the count field's 15 bits (a burst of more crosses frame by frame). */
export const MAX_BURST_PARTS = 0x7fff;

/** Bit 15 of the count field: the record holds a read burst, its requests' tags and lengths after the count. */
const READ_BURST = 0x8000;

function bad(message: string): DconnectError {
  return new DconnectError('BAD_PDU', message);
}

/**
 * Whether `frame` is a burst of TLP frames that `encodeBurstFrame` takes: one write, one read's
 * completions, an MRd burst, or several requests' completions, of at most MAX_BURST_PARTS constituents.
 */
export function isTlpBurstFrame(frame: Frame): boolean {
  if (frame.parts === null || !(frame.payload instanceof ExpEtherPdu)) return false;
  const t = frame.payload.tlp;
  return t !== null && t.count > 1 && t.count <= MAX_BURST_PARTS && (t.data !== null || (t.kind === 'MRd' && t.reads !== null));
}

/** A read burst's requests as the record carries them: tags, and each request's bytes from its first constituent here. */
function recordReads(t: Tlp): { tags: Uint16Array; lens: Uint16Array } | null {
  const r = t.reads;
  if (r === null) return null;
  if (t.kind === 'MRd') return { tags: r.tags, lens: r.lens };
  const from = t.readsOffsetBytes;
  const j0 = requestAt(r, from);
  const j1 = requestAt(r, from + t.data!.length - 1);
  const lens = r.lens.slice(j0, j1 + 1);
  lens[0] = r.ends[j0] - from;
  return { tags: r.tags.subarray(j0, j1 + 1), lens };
}

/** Bytes `encodeBurstFrame` makes of `frame` (a TLP burst frame). */
export function burstFrameBytes(frame: Frame): number {
  const tlp = (frame.payload as ExpEtherPdu).tlp!;
  const reads = recordReads(tlp);
  const dataBytes = tlp.data ? tlp.data.length - tlp.parts![0] : 0;
  return 2 + (reads ? 2 + 4 * reads.tags.length : 0) + 2 * tlp.count + FRAME_HEADER_BYTES + frame.parts![0] + dataBytes;
}

/**
 * How many constituents of a TLP burst frame, from `from` on, fit a record of at most `maxBytes`
 * (a read burst counted as if each had a request of its own; 0 when not even one does).
 */
export function constituentsFitting(frame: Frame, from: number, maxBytes: number): number {
  const tlp = (frame.payload as ExpEtherPdu).tlp!;
  const dataParts = tlp.parts!;
  const perPart = tlp.reads !== null ? 6 : 2;
  let bytes = (tlp.reads !== null ? 4 : 2) + FRAME_HEADER_BYTES + frame.parts![from] - dataParts[from];
  let to = from;
  while (to < tlp.count && bytes + perPart + dataParts[to] <= maxBytes) bytes += perPart + dataParts[to++];
  return to - from;
}

/** A TLP burst frame in the compact encoding (see the file comment). */
export function encodeBurstFrame(frame: Frame): Uint8Array {
  const out = new Uint8Array(burstFrameBytes(frame));
  encodeBurstFrameInto(frame, out, 0);
  return out;
}

/** Writes `frame` in the compact encoding at `out[at..]` (room for burstFrameBytes(frame)); returns where it ends. */
export function encodeBurstFrameInto(frame: Frame, out: Uint8Array, at: number): number {
  if (!isTlpBurstFrame(frame)) throw bad(`cannot encode a burst record: the frame is not a burst of 2..${MAX_BURST_PARTS} TLP frames (writes, completions or read requests)`);
  const pdu = frame.payload as ExpEtherPdu;
  const tlp = pdu.tlp!;
  const parts = tlp.parts!;
  const k = tlp.count;
  const reads = recordReads(tlp);
  const first = encodeExpEtherFrame(constituentFrame(frame, 0));
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint16(at, reads ? READ_BURST | k : k);
  at += 2;
  if (reads) {
    const m = reads.tags.length;
    v.setUint16(at, m);
    for (let j = 0; j < m; j++) {
      v.setUint16(at + 2 + 2 * j, reads.tags[j]);
      v.setUint16(at + 2 + 2 * m + 2 * j, reads.lens[j]);
    }
    at += 2 + 4 * m;
  }
  for (let i = 0; i < k; i++) v.setUint16(at + 2 * i, parts[i]);
  at += 2 * k;
  out.set(first, at);
  at += first.length;
  if (tlp.data) {
    const rest = tlp.data.subarray(parts[0]);
    out.set(rest, at);
    at += rest.length;
  }
  return at;
}

/** Constituent i of a TLP burst frame as its own frame (what constituentFrames gives at i, alone). */
export function constituentFrame(frame: Frame, i: number): Frame {
  const pdu = frame.payload as ExpEtherPdu;
  return plain(frame, new ExpEtherPdu('tlp', pdu.seq + i, pdu.ack, constituent(pdu.tlp!, i), null), frame.parts![i]);
}

/**
 * Decodes what `encodeBurstFrame` made into a burst frame (its TLP's data a view of `bytes`); the
 * receiver sets its arrival times. `maxPayloadBytes`: the receiving port's MTU, which every constituent
 * frame must fit. Throws a DconnectError 'BAD_PDU' naming what is wrong.
 */
export function decodeBurstFrame(bytes: Uint8Array, maxPayloadBytes: number): Frame<ExpEtherPdu> {
  const n = bytes.length;
  if (n < 2) throw bad(`burst record is ${n} bytes, too short for its count`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, n);
  const word = v.getUint16(0);
  const isRead = (word & READ_BURST) !== 0;
  const k = word & ~READ_BURST;
  if (k < 2 || k > MAX_BURST_PARTS) throw bad(`burst record count ${k} is outside 2..${MAX_BURST_PARTS}`);
  let at = 2;
  let tags: Uint16Array | null = null;
  let lens: Uint16Array | null = null;
  if (isRead) {
    if (n < at + 2) throw bad('read burst record is too short for its request count');
    const m = v.getUint16(at);
    if (m < 1 || m > k) throw bad(`read burst record: ${m} requests for ${k} constituents (1..${k})`);
    if (n < at + 2 + 4 * m) throw bad(`read burst record is ${n} bytes, too short for its ${m} requests`);
    tags = new Uint16Array(m);
    lens = new Uint16Array(m);
    for (let j = 0; j < m; j++) {
      tags[j] = v.getUint16(at + 2 + 2 * j);
      lens[j] = v.getUint16(at + 2 + 2 * m + 2 * j);
      if (lens[j] === 0 || lens[j] % 4 !== 0 || lens[j] > 4096) throw bad(`read burst record: request ${j} asks ${lens[j]} bytes (a positive multiple of 4, at most 4096)`);
    }
    at += 2 + 4 * m;
  }
  const partsAt = at;
  at += 2 * k;
  if (n < at + FRAME_HEADER_BYTES) throw bad(`burst record of ${k} constituents is ${n} bytes, too short for its lengths and first frame`);
  const parts = new Uint16Array(k);
  let rest = 0;
  for (let i = 0; i < k; i++) {
    parts[i] = v.getUint16(partsAt + 2 * i);
    if (i > 0) rest += parts[i];
  }
  const firstEnd = n - rest;
  if (firstEnd <= at + FRAME_HEADER_BYTES) throw bad(`burst record: its lengths say ${rest} payload bytes follow the first frame, more than the record holds`);
  const f0 = decodeExpEtherFrame(bytes.subarray(at, firstEnd));
  const t0 = f0.payload.tlp;
  if (f0.payload.kind !== 'tlp' || !t0) throw bad('burst record: its first frame is not a TLP');
  let t: Tlp;
  if (tags !== null && lens !== null && t0.kind === 'MRd') t = readRequests(t0, tags, lens, parts);
  else {
    if (!t0.data || (t0.kind !== 'MWr' && t0.kind !== 'CplD')) throw bad(`burst record: its first frame is a ${t0.kind}, not a TLP with a payload (MWr or CplD)${tags ? ' or a read request' : ''}`);
    if (t0.data.length !== parts[0]) throw bad(`burst record: its first TLP carries ${t0.data.length} bytes, its lengths say ${parts[0]}`);
    for (let i = 0; i < k; i++) if (parts[i] === 0 || parts[i] % 4 !== 0) throw bad(`burst record: constituent ${i} has ${parts[i]} payload bytes (a positive multiple of 4)`);
    t = t0;
    // The burst's data: constituent 0's payload and the rest are adjacent in the record.
    t.data = bytes.subarray(firstEnd - parts[0], n);
    // The burst spans more than one DW: its last byte enables are a write's whole DW, whatever constituent 0's (a 1-DW one has none).
    if (t.kind === 'MWr') t.lastBe = 0xf;
    if (tags !== null && lens !== null) {
      if (t.kind !== 'CplD') throw bad(`read burst record: its first frame is a ${t.kind}, not a read request or a completion`);
      completionReads(t, tags, lens, parts);
    }
    asBurst(t, parts);
  }
  const framePayloads = encodedParts(t, new Float64Array(k));
  const frameParts = new Uint16Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) {
    const p = EXPETHER_HEADER_BYTES + framePayloads[i];
    if (p > maxPayloadBytes) throw bad(`burst record: constituent ${i} makes a ${p}-byte frame payload, more than the port's ${maxPayloadBytes}`);
    frameParts[i] = p;
    total += p;
  }
  const pdu = t === t0 ? f0.payload : new ExpEtherPdu('tlp', f0.payload.seq, f0.payload.ack, t, null);
  const frame = new Frame<ExpEtherPdu>(f0.dst, f0.src, f0.vlan, f0.etherType, pdu, total, frameParts);
  frame.readRequest = t.kind === 'MRd'; // as the sender's frame said (a trace label: ports count reads' queueing)
  return frame;
}

/** An MRd burst from its first request and the record's requests: back to back from its address, on one side of 4 GiB, none across 4 KiB. */
function readRequests(t0: Tlp, tags: Uint16Array, lens: Uint16Array, parts: Uint16Array): Tlp {
  const m = tags.length;
  if (m !== parts.length) throw bad(`read burst record: ${m} requests, ${parts.length} constituents (one each)`);
  for (let i = 0; i < parts.length; i++) if (parts[i] !== 0) throw bad(`read burst record: request ${i} has ${parts[i]} payload bytes (requests carry none)`);
  if (t0.tag !== tags[0] || t0.lengthDw * 4 !== lens[0]) throw bad(`read burst record: its first request (tag ${t0.tag}, ${t0.lengthDw * 4} bytes) is not its first listed (tag ${tags[0]}, ${lens[0]} bytes)`);
  const high = t0.address >= 2 ** 32;
  for (let j = 0, a = t0.address; j < m; a += lens[j++]) {
    if ((a % 4096) + lens[j] > 4096) throw bad(`read burst record: request ${j} at 0x${a.toString(16)} crosses a 4 KiB boundary`);
    if (a >= 2 ** 32 !== high || (!high && a + lens[j] > 2 ** 32)) throw bad(`read burst record: request ${j} at 0x${a.toString(16)} is not on the first request's side of 4 GiB`);
  }
  return readBurst(t0.requesterId, readSet(t0.address, tags, lens));
}

/**
 * A completion burst's read set from the record's requests: request j's completions are the next
 * constituents, which give it all its listed bytes (the last request may have more to come).
 */
function completionReads(t: Tlp, tags: Uint16Array, lens: Uint16Array, parts: Uint16Array): void {
  if (t.tag !== tags[0] || t.byteCount !== lens[0]) throw bad(`read burst record: its first completion (tag ${t.tag}, byte count ${t.byteCount}) is not its first request listed (tag ${tags[0]}, ${lens[0]} bytes)`);
  let j = 0;
  let left = lens[0];
  for (let i = 0; i < parts.length; i++) {
    if (left === 0) {
      if (++j >= lens.length) throw bad(`read burst record: constituent ${i} answers no listed request (${lens.length} requests)`);
      left = lens[j];
    }
    if (parts[i] > left) throw bad(`read burst record: constituent ${i} (${parts[i]} bytes) runs past request ${j}'s ${lens[j]}`);
    left -= parts[i];
  }
  if (j !== lens.length - 1) throw bad(`read burst record: ${lens.length} requests listed, the constituents answer ${j + 1}`);
  t.reads = readSet(t.lowerAddress, tags, lens);
  t.readsOffsetBytes = 0;
}
