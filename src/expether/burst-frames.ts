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
 *   bytes 0-1        constituent count k (2..MAX_BURST_PARTS)
 *   bytes 2..2+2k    each constituent's TLP payload bytes (u16, big-endian)
 *   then             constituent 0 as a whole frame (pdu-codec.ts encodeExpEtherFrame: its headers, its payload)
 *   then             the payloads of constituents 1..k-1, back to back
 *
 * Constituent 0's payload and the rest are adjacent, so a decoder takes the burst's data as one view.
 * Every other constituent follows from the first and the lengths (pcie/burst.ts).
 */
import { DconnectError } from '../core/errors.js';
import { Frame } from '../ethernet/frame.js';
import { asBurst, constituent, encodedParts, MAX_BURST_BYTES, sliceBurst } from '../pcie/burst.js';
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
    for (let i = 0; i < parts.length; i++) {
      const one = new ExpEtherPdu('tlp', pdu.seq + i, pdu.ack, constituent(pdu.tlp, i), null);
      out[i] = plain(frame, one, parts[i]);
    }
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
  let frames: Frame[] | null = null;
  const run = (a: number, b: number) => {
    if (a === 0 && b === n) return clean(frame, a, b);
    if (b - a > 1) return clean(burstPiece(frame, a, b), a, b);
    frames ??= constituentFrames(frame);
    clean(frames[a], a, b);
  };
  let from = 0;
  for (let i = 0; i < n; i++) {
    if (!isHit(i)) continue;
    if (i > from) run(from, i);
    frames ??= constituentFrames(frame);
    hit(frames[i], i);
    from = i + 1;
  }
  if (from < n) run(from, n);
}

function plain(burst: Frame, pdu: ExpEtherPdu, payloadBytes: number): Frame {
  const f = new Frame(burst.dst, burst.src, burst.vlan, burst.etherType, pdu, payloadBytes);
  f.readRequest = burst.readRequest;
  return f;
}

/** Most constituents a burst record may hold: a burst of MAX_BURST_BYTES at 16-byte payloads. */
export const MAX_BURST_PARTS = MAX_BURST_BYTES / 16;

function bad(message: string): DconnectError {
  return new DconnectError('BAD_PDU', message);
}

/**
 * Whether `frame` is a burst of TLP frames of one write or one read's completions (what
 * `encodeBurstFrame` takes). A read burst (requests, or several requests' completions) crosses frame
 * by frame: its constituents' tags are not derivable from the first.
 */
export function isTlpBurstFrame(frame: Frame): boolean {
  return frame.parts !== null && frame.payload instanceof ExpEtherPdu && frame.payload.tlp !== null && frame.payload.tlp.count > 1 && frame.payload.tlp.data !== null && frame.payload.tlp.reads === null;
}

/** Bytes `encodeBurstFrame` makes of `frame` (a TLP burst frame). */
export function burstFrameBytes(frame: Frame): number {
  const tlp = (frame.payload as ExpEtherPdu).tlp!;
  return 2 + 2 * tlp.count + FRAME_HEADER_BYTES + frame.parts![0] + (tlp.data!.length - tlp.parts![0]);
}

/** A TLP burst frame in the compact encoding (see the file comment). */
export function encodeBurstFrame(frame: Frame): Uint8Array {
  if (!isTlpBurstFrame(frame)) throw bad('cannot encode a burst record: the frame is not a burst of TLP frames with data');
  const pdu = frame.payload as ExpEtherPdu;
  const tlp = pdu.tlp!;
  const parts = tlp.parts!;
  const k = tlp.count;
  if (k > MAX_BURST_PARTS) throw bad(`cannot encode a burst record of ${k} constituents (at most ${MAX_BURST_PARTS})`);
  const first = encodeExpEtherFrame(constituentFrames0(frame));
  const out = new Uint8Array(burstFrameBytes(frame));
  out[0] = k >>> 8;
  out[1] = k & 0xff;
  for (let i = 0; i < k; i++) {
    out[2 + 2 * i] = parts[i] >>> 8;
    out[3 + 2 * i] = parts[i] & 0xff;
  }
  const at = 2 + 2 * k;
  out.set(first, at);
  out.set(tlp.data!.subarray(parts[0]), at + first.length);
  return out;
}

/** Constituent 0 of a TLP burst frame as its own frame. */
function constituentFrames0(frame: Frame): Frame {
  const pdu = frame.payload as ExpEtherPdu;
  return plain(frame, new ExpEtherPdu('tlp', pdu.seq, pdu.ack, constituent(pdu.tlp!, 0), null), frame.parts![0]);
}

/**
 * Decodes what `encodeBurstFrame` made into a burst frame (its TLP's data a view of `bytes`); the
 * receiver sets its arrival times. `maxPayloadBytes`: the receiving port's MTU, which every constituent
 * frame must fit. Throws a DconnectError 'BAD_PDU' naming what is wrong.
 */
export function decodeBurstFrame(bytes: Uint8Array, maxPayloadBytes: number): Frame<ExpEtherPdu> {
  const n = bytes.length;
  if (n < 2) throw bad(`burst record is ${n} bytes, too short for its count`);
  const k = (bytes[0]! << 8) | bytes[1]!;
  if (k < 2 || k > MAX_BURST_PARTS) throw bad(`burst record count ${k} is outside 2..${MAX_BURST_PARTS}`);
  const at = 2 + 2 * k;
  if (n < at + FRAME_HEADER_BYTES) throw bad(`burst record of ${k} constituents is ${n} bytes, too short for its lengths and first frame`);
  const parts = new Uint16Array(k);
  let rest = 0;
  for (let i = 0; i < k; i++) {
    parts[i] = (bytes[2 + 2 * i]! << 8) | bytes[3 + 2 * i]!;
    if (i > 0) rest += parts[i];
  }
  const firstEnd = n - rest;
  if (firstEnd <= at + FRAME_HEADER_BYTES) throw bad(`burst record: its lengths say ${rest} payload bytes follow the first frame, more than the record holds`);
  const f0 = decodeExpEtherFrame(bytes.subarray(at, firstEnd));
  const t = f0.payload.tlp;
  if (f0.payload.kind !== 'tlp' || !t || !t.data || (t.kind !== 'MWr' && t.kind !== 'CplD')) throw bad('burst record: its first frame is not a TLP with a payload (MWr or CplD)');
  if (t.data.length !== parts[0]) throw bad(`burst record: its first TLP carries ${t.data.length} bytes, its lengths say ${parts[0]}`);
  for (let i = 0; i < k; i++) if (parts[i] === 0 || parts[i] % 4 !== 0) throw bad(`burst record: constituent ${i} has ${parts[i]} payload bytes (a positive multiple of 4)`);
  // The burst's data: constituent 0's payload and the rest are adjacent in the record.
  t.data = bytes.subarray(firstEnd - parts[0], n);
  // The burst spans more than one DW: its last byte enables are a write's whole DW, whatever constituent 0's (a 1-DW one has none).
  if (t.kind === 'MWr') t.lastBe = 0xf;
  asBurst(t, parts);
  const framePayloads = encodedParts(t, new Float64Array(k));
  const frameParts = new Uint16Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) {
    const p = EXPETHER_HEADER_BYTES + framePayloads[i];
    if (p > maxPayloadBytes) throw bad(`burst record: constituent ${i} makes a ${p}-byte frame payload, more than the port's ${maxPayloadBytes}`);
    frameParts[i] = p;
    total += p;
  }
  const frame = new Frame<ExpEtherPdu>(f0.dst, f0.src, f0.vlan, f0.etherType, f0.payload, total, frameParts);
  frame.readRequest = false;
  return frame;
}
