/**
 * The UDP frame channel of live mode (issue "Live fabric"): the Ethernet cables that join a host
 * process to a box process are UDP datagrams between their sockets, one socket per node. The model's
 * ports are unchanged: each crossing cable's port gets this transport's channel instead of a cable.
 *
 * A datagram is a train: the frames a node sends one peer within one turn of its event loop, packed
 * into one datagram of at most MAX_DATAGRAM_BYTES (big-endian; a socket call per frame was most of a
 * node's cost with small TLPs, a 64-byte read completion being a frame):
 *
 *   bytes 0-3    magic 0x44434C56 ('DCLV')
 *   byte  4      version, 4
 *   byte  5      flags: reserved, sent 0, ignored
 *   bytes 6-7    record count (at least 1)
 *   bytes 8-11   epoch, u32: the host's session number
 *   bytes 12-15  salt, u32: drawn per sending process (the nonce's first part)
 *   bytes 16-23  counter, u64: the sender's, increasing (datagram-auth.ts), checked against a replay window
 *   then         the records, back to back
 *   last 16      tag: the Poly1305 MAC of every byte before it under the sender's key, nonce bytes 12-23
 *                (ChaCha20-Poly1305 with all of it as associated data; datagram-auth.ts). Without a key (the bench's MAC-off measurement only) the tag is
 *                the CRC-32 of those bytes, little-endian, then 12 zero bytes.
 *
 * A record (one frame):
 *
 *   bytes 0-1    frame length n
 *   bytes 2-3    cable id (the builder's cable; both nodes build the same topology, so they agree)
 *   byte  4      flags: bit 0, an FCS follows the frame; bit 1, a keepalive (below); bit 2, a burst
 *                (below); the others reserved, sent 0
 *   byte  5      record header length h, 6 (a longer header, e.g. an authentication tag, is skipped by
 *                this reader; it reads only the fields above)
 *   bytes h..    the tagged Ethernet frame as expether/pdu-codec.ts encodes it (no padding)
 *   then         with flag bit 0: the frame's FCS, CRC-32 little-endian as on an Ethernet wire
 *
 * A burst record (flag bit 2) carries, instead of one frame, a burst of TLP frames (burst granularity:
 * one DMA write's MWr frames, one read's completion frames, a DMA engine's read requests and their
 * completions) in expether/burst-frames.ts's encoding: the constituents' shared header once, their
 * data back to back, decoded as one view. A cable with injected
 * loss, duplication or reordering draws each frame's fault in order and carries the runs no fault hit
 * as burst records, each frame hit as its own record; corruption (a burst record has no FCS) and a
 * capture tapping the cable make a burst cross as its frames, one record each. A burst of bare ACKs (cumulative) crosses
 * as its last one alone on such a cable. A receiver hands a burst record to its port as one burst frame.
 *
 * A keepalive record (flag bit 1) carries, instead of a frame, 5 bytes: the sender's incarnation (u32,
 * drawn at process start) and its state (0 running, 1 its model stopped). Its cable id is one of the
 * sender's crossing cables to the receiver, which names the sender. A box sends one to each peer every
 * KEEPALIVE_MS and at every new epoch: the host judges a box alive by any record from it, and restarted
 * by a new incarnation (watchdog.ts), never by data progress.
 *
 * Authentication (issue 20): the MAC replaces the CRC-32 this format had (a MAC detects every error a
 * CRC does, and forgeries). A receiver picks the sender's key by the first record's cable (whose far end
 * names the sender), checks the tag, then the counter against that sender's replay window, and only then
 * reads anything else: an unauthenticated datagram (`authFailures`) or a replayed one (`replays`) is
 * dropped with no reply and changes nothing (no epoch, no peer address, no liveness). Every record of a
 * datagram must come from the same sender.
 *
 * The tag guards the whole datagram (UDP's own checksum is optional and may be off). A frame carries
 * its own FCS only on a cable that injects corruption (`--fault corrupt=...`): the bit is flipped after
 * the FCS was computed and before the datagram's tag, as on a wire, so the receiver drops that frame
 * alone, the way a MAC does, and the bridges' retransmission recovers it. A datagram whose tag fails
 * is dropped whole: lost frames, which the bridges recover as any others. The receiver decodes
 * frames as views of the datagram (Node gives each datagram its own buffer), not copies.
 *
 * Epoch rule: a session's frames must never reach a model of another session (sequence numbers would
 * collide). The host starts each session with a new, greater epoch and drops every datagram of any
 * other. A box follows the host: an older epoch is stale and dropped; a greater one means the host
 * started a new session, so the box adopts it and rebuilds its model (`onNewEpoch`, synchronously,
 * before the datagram is delivered to the rebuilt model); it sends with its current epoch. A box needs
 * no configuration to find the host: it answers to the address the host's datagrams come from.
 *
 * Faults (`--fault`) are drawn on send, once per frame, seeded per cable, with the semantics of
 * runtime/faults.ts: a frame is lost, corrupted, duplicated or held back behind the cable's next frame.
 * Live code: it uses sockets, timers and the wall clock, and nothing under the model layers imports it.
 * A datagram from the network is never trusted: every check drops and counts, and nothing it contains
 * can make the socket handler throw.
 */
import dgram from 'node:dgram';
import * as zlib from 'node:zlib';
import { Ring } from '../core/ring.js';
import { RngFactory, type RngStream } from '../core/rng.js';
import type { Callback, Scheduler } from '../core/scheduler.js';
import { Frame, JUMBO_MAX_PAYLOAD_BYTES } from '../ethernet/frame.js';
import type { EthChannel, EthPort } from '../ethernet/port.js';
import { burstPiece, constituentFrame, constituentFrames, constituentsFitting, decodeBurstFrame, encodeBurstFrameInto, isTlpBurstFrame, splitAtHits } from '../expether/burst-frames.js';
import { ExpEtherPdu } from '../expether/pdu.js';
import { decodeExpEtherFrame, encodeExpEtherFrame, FRAME_HEADER_BYTES } from '../expether/pdu-codec.js';
import { drawFault, type FaultKind, type FaultSpec } from '../runtime/faults.js';
import { drawSalt, NONCE_BYTES, ReplayWindow, SendCounter, senderKey, TAG_BYTES, tagMatches, writeTag } from './datagram-auth.js';

/** A scheduler live code can push outside input into: `inject(fn)` runs fn as an event "now". */
export interface InjectableScheduler extends Scheduler {
  inject(fn: () => void): void;
}

export interface UdpTransportOptions {
  /** This node's name, e.g. 'host' or 'box0'. */
  node: string;
  /** Where the socket binds; port 0: an ephemeral port. */
  bind: { host: string; port: number };
  /** u32 session number (see the file comment). */
  epoch: number;
  role: 'host' | 'box';
  /** `--fault` specs; link names as runtime/capture.ts's linkName gives them, matched against the cable's name. Applied on send. */
  faults?: FaultSpec[];
  /** Seeds the fault streams (one per cable: `udp-fault:NAME`). */
  seed?: number;
  /** Box only: a datagram with a greater epoch arrived; called before it is delivered (rebuild the model, re-attach the cables here). */
  onNewEpoch?: (epoch: number) => void;
  /** Hears every keepalive of the current epoch that passes the checks: which node, its incarnation and state. */
  onKeepalive?: (node: string, incarnation: number, state: number) => void;
  /**
   * The fabric key (datagram-auth.ts; 32 bytes): every datagram is MACed with it and checked against it.
   * null: no MAC, a CRC-32 in the tag's place, and no replay check: only for measuring the MAC's cost
   * (bench/live.ts, DCONNECT_BENCH_NO_MAC=1); anyone who reaches the port can then drive the fabric.
   */
  key: Uint8Array | null;
  /** Hears of an error that is not the datagram's fault (a socket error, onNewEpoch or the scheduler throwing); it is counted in `otherErrors` either way. */
  onError?: (e: Error) => void;
}

export interface UdpAddress {
  host: string;
  port: number;
}

export interface UdpCounters {
  [k: string]: number;
  datagramsSent: number;
  datagramsReceived: number;
  /** Frames (records) sent and received: a datagram (a train) carries several. */
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Too short or long, bad magic or version, a record that runs past the end, or a frame the PDU codec refuses (counted per datagram or record). */
  badDatagrams: number;
  /** Without a key only: the datagram's CRC did not match; dropped whole. */
  crcErrors: number;
  /** The tag did not match the sender's key (forged, corrupted, or another fabric's key): dropped whole, unanswered. */
  authFailures: number;
  /** An authentic datagram whose counter is older than the replay window or was seen already: dropped whole, unanswered. */
  replays: number;
  /** A frame's FCS did not match: corrupted on the way (injected corruption ends here). */
  fcsErrors: number;
  /** Of another session (see the epoch rule). */
  staleEpoch: number;
  /** For a cable this node has not attached. */
  unknownCable: number;
  /** The socket refused to send, or the peer's address is not known yet. */
  sendErrors: number;
  /** Faults injected on send. */
  lost: number;
  corrupted: number;
  duplicated: number;
  reordered: number;
  /** Errors that are nobody's datagram's fault (see `onError`). */
  otherErrors: number;
  /** Keepalive records received (not counted in framesReceived: they carry no frame). */
  keepalivesReceived: number;
  /** Burst records received (their frames are counted in framesReceived). */
  burstRecordsReceived: number;
  /** Of those, read bursts: several read requests, or their completions. */
  readBurstRecordsReceived: number;
}

export const DATAGRAM_MAGIC = 0x44434c56;
export const DATAGRAM_VERSION = 5;
export const DATAGRAM_HEADER_BYTES = 24;
/** Where the nonce (salt and counter) sits in the header. */
const NONCE_AT = 12;
/** The tag that ends a datagram (datagram-auth.ts). */
export const DATAGRAM_TAG_BYTES = TAG_BYTES;
export const RECORD_HEADER_BYTES = 6;
export const FCS_BYTES = 4;
/** Record flag: the frame's FCS follows it. */
export const RECORD_FLAG_FCS = 0x01;
/** Record flag: a keepalive, not a frame (see the file comment). */
export const RECORD_FLAG_KEEPALIVE = 0x02;
/** Record flag: a burst of TLP frames in expether/burst-frames.ts's encoding, not one frame (see the file comment). */
export const RECORD_FLAG_BURST = 0x04;
const KEEPALIVE_BYTES = 5;
/** The largest UDP payload IPv4 carries: a train is at most this long (one datagram on loopback, a few IP fragments elsewhere). */
export const MAX_DATAGRAM_BYTES = 65_507;
/** The longest frame any cable may carry: tagged Ethernet header and a jumbo payload (each cable's port has its own limit, checked per record). */
const MAX_FRAME_BYTES = FRAME_HEADER_BYTES + JUMBO_MAX_PAYLOAD_BYTES;
/** The longest record body a train holds: one record alone in a datagram (a burst longer than this crosses in pieces). */
const MAX_RECORD_BODY_BYTES = MAX_DATAGRAM_BYTES - DATAGRAM_HEADER_BYTES - DATAGRAM_TAG_BYTES - RECORD_HEADER_BYTES;
const MAX_U32 = 0xffff_ffff;
/** A reordered frame waits for the next one on its cable, but no longer than this, wall ms. */
const REORDER_HOLD_MS = 1;
/** Train buffers kept for reuse (each MAX_DATAGRAM_BYTES); more may be out while the socket sends, and are dropped to the GC on return. */
const POOLED_TRAINS = 8;
/** Socket buffers asked for (best effort: the kernel may cap them, e.g. net.core.rmem_max). */
const SOCKET_BUFFER_BYTES = 8 << 20;

type Crc32 = (data: Uint8Array, value?: number) => number;
/** zlib.crc32 (Node >= 20.15; its types are newer than this project's @types/node), else a table. */
const crc32: Crc32 = (zlib as unknown as { crc32?: Crc32 }).crc32 ?? tableCrc32;

let crcTable: Uint32Array | null = null;
function tableCrc32(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Bytes a record of an `n`-byte frame takes in a train. */
export function recordBytes(n: number, withFcs: boolean): number {
  return RECORD_HEADER_BYTES + n + (withFcs ? FCS_BYTES : 0);
}

/** Writes one record at `at` of `out` (room checked by the caller): `body` is the frame, followed by its FCS when `withFcs`. Returns the next offset. */
function putRecord(out: Uint8Array, at: number, cableId: number, body: Uint8Array, withFcs: boolean, flags = 0): number {
  putRecordHeader(out, at, cableId, body.length - (withFcs ? FCS_BYTES : 0), (withFcs ? RECORD_FLAG_FCS : 0) | flags);
  out.set(body, at + RECORD_HEADER_BYTES);
  return at + RECORD_HEADER_BYTES + body.length;
}

/** A record's header at `out[at..]`: `bodyBytes` (its FCS not counted), the cable, the flags. */
function putRecordHeader(out: Uint8Array, at: number, cableId: number, bodyBytes: number, flags: number): void {
  out[at] = bodyBytes >>> 8;
  out[at + 1] = bodyBytes & 0xff;
  out[at + 2] = cableId >>> 8;
  out[at + 3] = cableId & 0xff;
  out[at + 4] = flags;
  out[at + 5] = RECORD_HEADER_BYTES;
}

/**
 * Writes the header and the tag of a train whose records fill [DATAGRAM_HEADER_BYTES, end); returns the
 * datagram's length. `key`: the sender's key (datagram-auth.ts senderKey); null, a CRC (see the file comment).
 */
export function sealDatagram(out: Uint8Array, end: number, count: number, epoch: number, salt: number, counter: number, key: Uint8Array | null): number {
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint32(0, DATAGRAM_MAGIC);
  out[4] = DATAGRAM_VERSION;
  out[5] = 0;
  v.setUint16(6, count);
  v.setUint32(8, epoch);
  v.setUint32(12, salt);
  v.setUint32(16, Math.floor(counter / 2 ** 32));
  v.setUint32(20, counter >>> 0);
  if (key) writeTag(key, out.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES), out.subarray(0, end), out, end);
  else {
    v.setUint32(end, crc32(out.subarray(0, end)), true);
    out.fill(0, end + 4, end + DATAGRAM_TAG_BYTES);
  }
  return end + DATAGRAM_TAG_BYTES;
}

/** A frame with its FCS appended (what a record carries on a cable that injects corruption). */
export function withFcs(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + FCS_BYTES);
  out.set(frame);
  new DataView(out.buffer).setUint32(frame.length, crc32(frame), true);
  return out;
}

/**
 * One datagram holding `records` (see the file comment): for tests and tools; the transport builds its
 * trains in place. `auth`: the sender's key (senderKey) and counter; without it, keyless (a CRC).
 */
export function encodeDatagram(epoch: number, records: { cable: number; frame: Uint8Array; fcs?: boolean }[], auth?: { key: Uint8Array; counter: number; salt?: number }): Uint8Array {
  const body = records.map((r) => (r.fcs ? withFcs(r.frame) : r.frame));
  const out = new Uint8Array(DATAGRAM_HEADER_BYTES + body.reduce((n, b) => n + RECORD_HEADER_BYTES + b.length, 0) + DATAGRAM_TAG_BYTES);
  let at = DATAGRAM_HEADER_BYTES;
  records.forEach((r, i) => (at = putRecord(out, at, r.cable, body[i]!, r.fcs === true)));
  sealDatagram(out, at, records.length, epoch, auth?.salt ?? 0, auth?.counter ?? 0, auth?.key ?? null);
  return out;
}

function checkU32(v: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= MAX_U32)) throw new RangeError(`${what} ${v} is not an integer in 0..${MAX_U32}`);
}

/**
 * One crossing cable as this node sees it: the channel of its local port. Frames wait in a FIFO until
 * they have been serialized and have propagated, and leave in order, one preallocated callback sending
 * the head (as ethernet/port.ts's CableDirection delivers) into the transport's train for the peer.
 * The FIFO holds only frames the port has serialized and not yet put in a train, so it is bounded by
 * what the model sends: the bridges' windows and the port's output buffer.
 */
class UdpCable implements EthChannel {
  /**
   * Each frame's record body: the encoded frame, with its FCS on a cable that injects corruption; or,
   * for a burst record, the burst frame itself, encoded into the train when it leaves (a bridge never
   * changes a burst's PDU, TLP or data once sent: a resend makes frames of its own).
   */
  private readonly bodies = new Ring<Uint8Array | Frame>();
  /** Parallel to `bodies`: the frame was drawn for reordering. */
  private readonly holds = new Ring<boolean>();
  /** Parallel to `bodies`: a burst record (RECORD_FLAG_BURST), not one frame. */
  private readonly bursts = new Ring<boolean>();
  /** A reordered frame waiting to follow the next one (at most one per cable). */
  private held: Uint8Array | null = null;
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly propagationPs: number;
  /** Records carry an FCS: only where corruption is injected (see the file comment). */
  private readonly fcs: boolean;
  detached = false;

  constructor(
    private readonly transport: UdpTransport,
    readonly id: number,
    readonly name: string,
    readonly local: EthPort,
    readonly remote: string,
    propagationNs: number,
    readonly scheduler: InjectableScheduler,
    private readonly rates: Record<FaultKind, number> | null,
    private readonly rng: RngStream | null,
  ) {
    this.propagationPs = Math.round(propagationNs * 1000);
    this.fcs = (rates?.corrupt ?? 0) > 0;
  }

  /**
   * When a frame (or each frame of a burst record) that reached this node now has wholly arrived on
   * the cable's far end, ps; sets a burst's ready times and returns its last frame's. A cable delivers
   * at most its line rate: frames that came in one datagram, or in datagrams closer together than the
   * wire could carry them, arrive one serialization after another from the last, as on a wire. This
   * matters unpaced, where a datagram's frames all reach the model at one simulated moment: taken as
   * arriving together, tens of KiB land on the host's PCIe link at once, which its credits then let
   * go a TLP or two per UpdateFC (measured: 70% of an NBD read's writes reached the root complex one
   * TLP at a time). Frames that arrive spaced (paced, or slower than the wire) are not delayed, and a
   * burst record, sent when its last frame was wholly out, has its earlier frames arrive before it.
   */
  arrive(frame: Frame, nowPs: number): number {
    const parts = frame.parts;
    if (parts === null) {
      const at = Math.max(nowPs, this.rxLastPs + this.local.serializationPs(frame.payloadBytes));
      return (this.rxLastPs = at);
    }
    // Each frame's end from the burst's first bit, then the whole shifted to end at `last`.
    const n = parts.length;
    const ready = new Float64Array(n);
    let span = 0;
    for (let i = 0; i < n; i++) ready[i] = span += this.local.serializationPs(parts[i]);
    const last = Math.max(nowPs, this.rxLastPs + span);
    for (let i = 0; i < n; i++) ready[i] += last - span;
    frame.readyPs = ready;
    return (this.rxLastPs = last);
  }

  /** When the last frame received on this cable had wholly arrived (`arrive`), ps. */
  private rxLastPs = -Infinity;

  carry(_from: EthPort, frame: Frame, serializedInPs: number): void {
    const done = frame.readyPs;
    if (frame.parts === null || done === null) return this.carryOne(frame, serializedInPs);
    // A burst (burst granularity) crosses as the frames it stands for, each leaving when its last bit
    // does: the far bridge gets plain frames, and loss, duplication and reordering hit each one.
    const now = this.scheduler.now();
    if (this.rates === null && this.transport.tap === null) {
      if (isTlpBurstFrame(frame)) return this.carryBursts(frame, done, now);
      // A burst of bare cumulative ACKs: the last says all the others do, and they would reach the far
      // node in the same datagram, a 64-byte frame's serialization apart: it alone crosses.
      const pdu = frame.payload as ExpEtherPdu;
      const last = done.length - 1;
      if (pdu.kind === 'ack') return this.carryOne(new Frame(frame.dst, frame.src, frame.vlan, frame.etherType, new ExpEtherPdu('ack', -1, pdu.ack, null, null), frame.parts[last]), done[last] > now ? done[last] - now : 0);
    }
    if (this.rates !== null && !this.fcs && this.transport.tap === null && isTlpBurstFrame(frame)) return this.carryDrawn(frame, done, now);
    const frames = constituentFrames(frame);
    for (let i = 0; i < frames.length; i++) this.carryOne(frames[i], done[i] > now ? done[i] - now : 0);
  }

  /**
   * A burst of TLP frames on a cable with loss, duplication or reordering (no corruption: a burst
   * record has no FCS): each frame draws its fault, in order; the runs no fault hit cross as burst
   * records, and each frame hit crosses (or not) as its own record.
   */
  private carryDrawn(frame: Frame, done: Float64Array, now: number): void {
    const delay = (i: number) => (done[i] > now ? done[i] - now : 0);
    let u = 0;
    splitAtHits(
      frame,
      () => drawFault(this.rates!, (u = this.rng!.nextFloat())) !== null,
      (run, a, b) => (b - a === 1 ? this.carryOne(run, delay(a), null) : this.carryBursts(run, done.subarray(a, b), now)),
      (one, i) => this.carryOne(one, delay(i), u),
    );
  }

  /**
   * A burst of TLP frames as burst records: pieces of as many constituents as fit a datagram, each
   * leaving with its last frame's last bit, which the transport encodes straight into its trains
   * (`sendBurst`, cutting a piece again where a train fills).
   */
  private carryBursts(frame: Frame, done: Float64Array, now: number): void {
    const n = frame.parts!.length;
    for (let from = 0; from < n; ) {
      const to = from + Math.max(1, constituentsFitting(frame, from, MAX_RECORD_BODY_BYTES));
      const delay = done[to - 1] > now ? done[to - 1] - now : 0;
      if (to - from === 1) this.carryOne(constituentFrame(frame, from), delay);
      else {
        this.scheduler.schedule(delay + this.propagationPs, this.sendNext);
        this.bodies.push(from === 0 && to === n ? frame : burstPiece(frame, from, to));
        this.holds.push(false);
        this.bursts.push(true);
      }
      from = to;
    }
  }

  /** One frame as a record; on a faulty cable it draws its fault, or takes `drawn`, the draw a burst made for it (null: it drew none). */
  private carryOne(frame: Frame, serializedInPs: number, drawn?: number | null): void {
    // Encoded now: the sender may change its objects once this returns (a retransmission buffer).
    const bytes = encodeExpEtherFrame(frame);
    this.transport.tap?.(this.name, bytes);
    let body = bytes;
    let hold = false;
    let copies = 1;
    if (this.rates && this.rng && drawn !== null) {
      if (this.fcs) body = withFcs(bytes);
      const u = drawn ?? this.rng.nextFloat();
      const fault = drawFault(this.rates, u);
      const c = this.transport.counters;
      if (fault !== null) c[fault]++;
      if (fault === 'lost') return;
      if (fault === 'corrupted') {
        // After the FCS, as on a wire; which bit follows from the same draw, so there is one draw per frame.
        const bits = bytes.length * 8;
        const bit = Math.min(bits - 1, Math.floor(((u - this.rates.loss) / this.rates.corrupt) * bits));
        body[bit >>> 3]! ^= 1 << (bit & 7);
      } else if (fault === 'duplicated') copies = 2;
      else if (fault === 'reordered') hold = true;
    }
    const delay = serializedInPs + this.propagationPs;
    for (let i = 0; i < copies; i++) {
      this.scheduler.schedule(delay, this.sendNext); // first: it throws on a bad delay
      this.bodies.push(body);
      this.holds.push(hold);
      this.bursts.push(false);
    }
  }

  private readonly sendNext: Callback = () => {
    const body = this.bodies.shift()!;
    const hold = this.holds.shift()!;
    const burst = this.bursts.shift()!;
    if (this.detached) return; // a replaced model's frames never leave
    if (burst) return this.transport.sendBurst(this.remote, this.id, body as Frame);
    if (hold) {
      if (this.held) this.flushHeld(); // at most one held: the older one goes first
      this.held = body as Uint8Array;
      this.heldTimer = setTimeout(this.flushHeld, REORDER_HOLD_MS);
      this.heldTimer.unref();
      return;
    }
    this.transport.sendRecord(this.remote, this.id, body as Uint8Array, this.fcs);
    if (this.held) this.flushHeld();
  };

  private readonly flushHeld = (): void => {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const body = this.held;
    this.held = null;
    if (body && !this.detached) this.transport.sendRecord(this.remote, this.id, body, this.fcs);
  };

  detach(): void {
    this.detached = true;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.held = null;
  }
}

/** The train being filled for one peer: a pooled buffer, the records' end and count, and the session its frames belong to. */
interface Train {
  buf: Uint8Array;
  end: number;
  count: number;
  /** Frames in its records (a burst record holds several). */
  frames: number;
  epoch: number;
}

export class UdpTransport {
  readonly counters: UdpCounters = {
    datagramsSent: 0,
    datagramsReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    badDatagrams: 0,
    crcErrors: 0,
    authFailures: 0,
    replays: 0,
    fcsErrors: 0,
    staleEpoch: 0,
    unknownCable: 0,
    sendErrors: 0,
    lost: 0,
    corrupted: 0,
    duplicated: 0,
    reordered: 0,
    otherErrors: 0,
    keepalivesReceived: 0,
    burstRecordsReceived: 0,
    readBurstRecordsReceived: 0,
  };
  epoch: number;
  /** Sees every frame this node sends (as the sender transmits it, before any fault) or receives intact on a crossing cable: captures. */
  tap: ((cable: string, frame: Uint8Array) => void) | null = null;
  private readonly cables = new Map<number, UdpCable>();
  private readonly peers = new Map<string, UdpAddress>();
  private readonly heard = new Map<string, number>();
  private readonly streams: RngFactory;
  private closed = false;
  /** The train being filled per peer; sent at the end of the turn, or at once when the next record does not fit. */
  private readonly trains = new Map<string, Train>();
  /** Train buffers back from the socket, for reuse (at most POOLED_TRAINS). */
  private readonly pool: Uint8Array[] = [];
  private flushArmed = false;
  /** This node's key for what it sends, and each peer's (by node name, derived on first use); null: no MAC. */
  private readonly ownKey: Uint8Array | null;
  private readonly peerKeys = new Map<string, Uint8Array>();
  private readonly counter = new SendCounter();
  private readonly salt = drawSalt();
  /** Per sending node: the counters seen (datagram-auth.ts). One per peer node: bounded by the topology. */
  private readonly windows = new Map<string, ReplayWindow>();

  private constructor(
    private readonly o: UdpTransportOptions,
    private readonly socket: dgram.Socket,
  ) {
    this.epoch = o.epoch;
    this.ownKey = o.key ? senderKey(o.key, o.node) : null;
    this.streams = new RngFactory(o.seed ?? 0);
    socket.on('message', (msg, rinfo) => {
      try {
        this.receive(msg, rinfo);
      } catch (e) {
        this.otherError(e);
      }
    });
    // An unhandled 'error' event would end the process; a socket error is counted instead.
    socket.on('error', (e) => this.otherError(e));
  }

  static async open(o: UdpTransportOptions): Promise<UdpTransport> {
    checkU32(o.epoch, 'epoch');
    const socket = dgram.createSocket({ type: o.bind.host.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.bind.port, o.bind.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    for (const set of [() => socket.setRecvBufferSize(SOCKET_BUFFER_BYTES), () => socket.setSendBufferSize(SOCKET_BUFFER_BYTES)]) {
      try {
        set();
      } catch {
        // Best effort: smaller buffers only lose more datagrams under load, which retransmission covers.
      }
    }
    return new UdpTransport(o, socket);
  }

  address(): UdpAddress {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  setEpoch(e: number): void {
    checkU32(e, 'epoch');
    this.epoch = e;
  }

  setPeer(node: string, addr: UdpAddress): void {
    const p = this.peers.get(node);
    if (p && p.host === addr.host && p.port === addr.port) return;
    this.peers.set(node, { host: addr.host, port: addr.port });
  }

  /**
   * The channel for one crossing cable: `local` is this node's port of it, frames sent on it go to
   * node `remote`, and frames arriving for it are delivered to local's owner through `scheduler.inject`.
   * Attaching a cable id again replaces the old attachment (a box rebuilding its model).
   */
  attach(cable: { id: number; name: string }, local: EthPort, remote: string, propagationNs: number, scheduler: InjectableScheduler): EthChannel {
    if (!(Number.isInteger(cable.id) && cable.id >= 0 && cable.id <= 0xffff)) throw new RangeError(`cable id ${cable.id} does not fit the datagram's 16 bits`);
    this.cables.get(cable.id)?.detach();
    // The last spec naming this cable (or every cable) wins, as in runtime/faults.ts.
    const spec = [...(this.o.faults ?? [])].reverse().find((s) => s.link === null || s.link === cable.name);
    const ch = new UdpCable(this, cable.id, cable.name, local, remote, propagationNs, scheduler, spec?.rates ?? null, spec ? this.streams.stream(`udp-fault:${cable.name}`) : null);
    this.cables.set(cable.id, ch);
    local.channel = ch;
    return ch;
  }

  detachAll(): void {
    for (const c of this.cables.values()) c.detach();
    this.cables.clear();
  }

  /** performance.now() when the last good datagram from `node` arrived; null: none yet. */
  lastHeardMs(node: string): number | null {
    return this.heard.get(node) ?? null;
  }

  /** Sends a keepalive (see the file comment) to every peer an attached cable leads to whose address is known. */
  sendKeepalive(incarnation: number, state: number): void {
    const sent = new Set<string>();
    for (const c of this.cables.values()) {
      if (c.detached || sent.has(c.remote) || !this.peers.has(c.remote)) continue;
      sent.add(c.remote);
      const body = new Uint8Array(KEEPALIVE_BYTES);
      new DataView(body.buffer).setUint32(0, incarnation >>> 0);
      body[4] = state;
      this.sendRecord(c.remote, c.id, body, false, RECORD_FLAG_KEEPALIVE);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detachAll();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  /** Puts one record (`body`: a frame, and its FCS when `withFcs`) in the train toward `node`; it leaves with the others of this turn (see the file comment). Never throws. */
  sendRecord(node: string, cableId: number, body: Uint8Array, withFcs: boolean, flags = 0): void {
    if (!this.peers.has(node) || this.closed) {
      this.counters.sendErrors++;
      return;
    }
    const t = this.trainWithRoom(node, RECORD_HEADER_BYTES + body.length);
    t.end = putRecord(t.buf, t.end, cableId, body, withFcs, flags);
    t.count++;
    t.frames++;
  }

  /**
   * Puts a burst of TLP frames (at most one datagram's worth) in the train toward `node` as burst
   * records encoded in place: as many constituents as the current train has room for, the rest in the
   * next, so trains leave full; a lone constituent goes as a frame record. Throws only on a bug (two
   * constituents that do not fit an empty datagram: carryBursts cuts pieces that do).
   */
  sendBurst(node: string, cableId: number, frame: Frame): void {
    const n = frame.parts!.length;
    if (!this.peers.has(node) || this.closed) {
      this.counters.sendErrors += n;
      return;
    }
    for (let from = 0; from < n; ) {
      if (n - from === 1) return this.sendRecord(node, cableId, encodeExpEtherFrame(constituentFrame(frame, from)), false);
      const t = this.trainWithRoom(node, 0);
      const k = constituentsFitting(frame, from, MAX_DATAGRAM_BYTES - DATAGRAM_TAG_BYTES - t.end - RECORD_HEADER_BYTES);
      if (k < 2) {
        if (t.count === 0) throw new Error(`udp transport: a burst's constituents ${from}.. do not fit an empty datagram two at a time`);
        // Not even two fit behind what the train holds: it leaves, and the next one starts empty.
        this.flushTo(node, t);
        continue;
      }
      const to = from + k;
      const piece = from === 0 && to === n ? frame : burstPiece(frame, from, to);
      const at = t.end + RECORD_HEADER_BYTES;
      const end = encodeBurstFrameInto(piece, t.buf, at);
      putRecordHeader(t.buf, t.end, cableId, end - at, RECORD_FLAG_BURST);
      t.end = end;
      t.count++;
      t.frames += k;
      from = to;
    }
  }

  /** The train toward `node`, sent first and replaced by a new one if it has not `need` bytes left (or is of an older epoch); arms the turn's flush. */
  private trainWithRoom(node: string, need: number): Train {
    let t = this.trains.get(node);
    if (t && (t.epoch !== this.epoch || t.end + need + DATAGRAM_TAG_BYTES > MAX_DATAGRAM_BYTES)) {
      this.flushTo(node, t);
      t = undefined;
    }
    if (!t) this.trains.set(node, (t = { buf: this.pool.pop() ?? new Uint8Array(MAX_DATAGRAM_BYTES), end: DATAGRAM_HEADER_BYTES, count: 0, frames: 0, epoch: this.epoch }));
    if (!this.flushArmed) {
      this.flushArmed = true;
      setImmediate(this.flushAll);
    }
    return t;
  }

  private readonly flushAll = (): void => {
    this.flushArmed = false;
    for (const [node, t] of this.trains) this.flushTo(node, t);
  };

  /** Seals the train toward `node` and sends it; its buffer returns to the pool when the socket is done with it. */
  private flushTo(node: string, t: Train): void {
    this.trains.delete(node);
    // Frames of another session never leave under this one's epoch (a box that adopted a new epoch mid-turn).
    if (t.epoch !== this.epoch) return void this.pool.push(t.buf);
    const peer = this.peers.get(node);
    if (!peer || this.closed) {
      this.counters.sendErrors += t.frames;
      return;
    }
    const len = sealDatagram(t.buf, t.end, t.count, this.epoch, this.salt, this.counter.next(), this.ownKey);
    const buf = t.buf;
    try {
      this.socket.send(buf.subarray(0, len), peer.port, peer.host, (err) => {
        if (err) this.counters.sendErrors++;
        if (this.pool.length < POOLED_TRAINS) this.pool.push(buf);
      });
      this.counters.datagramsSent++;
      this.counters.framesSent += t.frames;
      this.counters.bytesSent += len;
    } catch {
      this.counters.sendErrors++;
    }
  }

  private otherError(e: unknown): void {
    this.counters.otherErrors++;
    try {
      this.o.onError?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // The hook's own failure must not take the socket handler down either.
    }
  }

  private receive(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    const msg = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    c.datagramsReceived++;
    c.bytesReceived += msg.length;
    const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
    const end = msg.length - DATAGRAM_TAG_BYTES;
    if (end < DATAGRAM_HEADER_BYTES || v.getUint32(0) !== DATAGRAM_MAGIC || msg[4] !== DATAGRAM_VERSION) {
      c.badDatagrams++;
      return;
    }
    if (!this.authentic(msg, v, end)) return;
    const epoch = v.getUint32(8);
    if (epoch !== this.epoch) {
      if (this.o.role === 'host' || epoch < this.epoch) {
        c.staleEpoch++;
        return;
      }
      // A box hears of the host's new session: adopt it, and let the box rebuild its model first.
      this.epoch = epoch;
      this.o.onNewEpoch?.(epoch);
    }
    try {
      this.receiveRecords(msg, v, end, rinfo);
    } finally {
      this.deliver();
    }
  }

  /**
   * The tag, then the counter (see the file comment); counts and returns false on a failure. The
   * sender is the far end of the first record's cable: an unknown cable names no key (`unknownCable`).
   */
  private authentic(msg: Uint8Array, v: DataView, end: number): boolean {
    const c = this.counters;
    this.sender = null;
    if (!this.o.key) {
      if (crc32(msg.subarray(0, end)) === v.getUint32(end, true)) return true;
      c.crcErrors++;
      return false;
    }
    if (v.getUint16(6) === 0 || end < DATAGRAM_HEADER_BYTES + RECORD_HEADER_BYTES) {
      c.badDatagrams++;
      return false;
    }
    const cable = this.cables.get(v.getUint16(DATAGRAM_HEADER_BYTES + 2));
    if (!cable) {
      c.unknownCable++;
      return false;
    }
    let key = this.peerKeys.get(cable.remote);
    if (!key) this.peerKeys.set(cable.remote, (key = senderKey(this.o.key, cable.remote)));
    if (!tagMatches(key, msg.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES), msg.subarray(0, end), msg.subarray(end, end + TAG_BYTES))) {
      c.authFailures++;
      return false;
    }
    const counter = v.getUint32(16) * 2 ** 32 + v.getUint32(20);
    let w = this.windows.get(cable.remote);
    if (!w) this.windows.set(cable.remote, (w = new ReplayWindow()));
    if (!w.check(counter)) {
      c.replays++;
      return false;
    }
    w.accept(counter);
    this.sender = cable.remote;
    return true;
  }

  /** The sender of the datagram being read, once authentic (null without a key: records are not checked for it). */
  private sender: string | null = null;

  /** The records of a datagram whose header and tag are good: each checked, the good frames queued in `arrivals`. */
  private receiveRecords(msg: Uint8Array, v: DataView, end: number, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    const count = v.getUint16(6);
    let at = DATAGRAM_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      // A record that runs past the end ends the datagram (those before it are delivered).
      if (at + RECORD_HEADER_BYTES > end) return void c.badDatagrams++;
      const n = v.getUint16(at);
      const hasFcs = (msg[at + 4]! & RECORD_FLAG_FCS) !== 0;
      const h = msg[at + 5]!;
      const next = at + h + n + (hasFcs ? FCS_BYTES : 0);
      if (h < RECORD_HEADER_BYTES || next > end) return void c.badDatagrams++;
      if (msg[at + 4]! & RECORD_FLAG_KEEPALIVE) this.receiveKeepalive(v.getUint16(at + 2), msg.subarray(at + h, at + h + n));
      else if (msg[at + 4]! & RECORD_FLAG_BURST) this.receiveBurstRecord(v.getUint16(at + 2), msg.subarray(at + h, at + h + n), hasFcs, rinfo);
      else this.receiveRecord(v.getUint16(at + 2), msg.subarray(at + h, at + h + n), hasFcs ? v.getUint32(at + h + n, true) : null, rinfo);
      at = next;
    }
    if (at !== end) c.badDatagrams++; // bytes after the last record
  }

  /** A keepalive record: the peer is alive (and which incarnation, in which state); never handed to the model. */
  private receiveKeepalive(cableId: number, body: Uint8Array): void {
    const c = this.counters;
    const cable = this.cables.get(cableId);
    if (!cable) return void c.unknownCable++;
    if (this.sender !== null && cable.remote !== this.sender) return void c.badDatagrams++; // a record of another sender's cable
    if (body.length !== KEEPALIVE_BYTES) return void c.badDatagrams++;
    c.keepalivesReceived++;
    this.heard.set(cable.remote, performance.now());
    this.o.onKeepalive?.(cable.remote, new DataView(body.buffer, body.byteOffset, body.length).getUint32(0), body[4]!);
  }

  /** A burst record: checked and decoded whole (a view of the datagram), then delivered to its cable's port as one burst frame. */
  private receiveBurstRecord(cableId: number, body: Uint8Array, hasFcs: boolean, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    const cable = this.cables.get(cableId);
    if (!cable) return void c.unknownCable++;
    if (this.sender !== null && cable.remote !== this.sender) return void c.badDatagrams++; // a record of another sender's cable
    if (hasFcs) return void c.badDatagrams++; // a burst record never carries an FCS (corruption sends frames alone)
    let frame: Frame;
    try {
      frame = decodeBurstFrame(body, cable.local.maxPayloadBytes);
    } catch {
      return void c.badDatagrams++;
    }
    c.framesReceived += frame.parts!.length;
    c.burstRecordsReceived++;
    if ((frame.payload as ExpEtherPdu).tlp?.reads) c.readBurstRecordsReceived++;
    this.setPeer(cable.remote, { host: rinfo.address, port: rinfo.port });
    this.heard.set(cable.remote, performance.now());
    this.arrivals.push({ cable, frame });
  }

  /** One record: checked, then delivered to its cable's port. `frameBytes` is a view of the datagram. */
  private receiveRecord(cableId: number, frameBytes: Uint8Array, fcs: number | null, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    c.framesReceived++;
    if (frameBytes.length > MAX_FRAME_BYTES) return void c.badDatagrams++;
    if (fcs !== null && crc32(frameBytes) !== fcs) return void c.fcsErrors++;
    const cable = this.cables.get(cableId);
    if (!cable) {
      c.unknownCable++;
      return;
    }
    if (this.sender !== null && cable.remote !== this.sender) return void c.badDatagrams++; // a record of another sender's cable
    if (frameBytes.length - FRAME_HEADER_BYTES > cable.local.maxPayloadBytes) {
      c.badDatagrams++; // larger than the receiving port's MTU (ethernet.maxPayloadBytes): a giant, dropped as a MAC drops one
      return;
    }
    let frame: Frame;
    try {
      frame = decodeExpEtherFrame(frameBytes);
    } catch {
      c.badDatagrams++; // BAD_PDU, or anything else the codec refuses
      return;
    }
    this.tap?.(cable.name, frameBytes);
    // Answer where the peer's good datagrams come from: how a box finds the host (and the host a restarted box).
    this.setPeer(cable.remote, { host: rinfo.address, port: rinfo.port });
    this.heard.set(cable.remote, performance.now());
    this.arrivals.push({ cable, frame });
  }

  /**
   * The good frames of the datagram being read, in order (at most its records: MAX_DATAGRAM_BYTES /
   * RECORD_HEADER_BYTES). They enter the model in one injected event per run of frames for one
   * scheduler, which hands on those whose line-rate arrival (`UdpCable.arrive`) is now and schedules
   * the others at theirs.
   */
  private arrivals: { cable: UdpCable; frame: Frame }[] = [];

  private deliver(): void {
    const all = this.arrivals;
    this.arrivals = [];
    for (let i = 0; i < all.length; ) {
      const scheduler = all[i]!.cable.scheduler;
      let j = i + 1;
      while (j < all.length && all[j]!.cable.scheduler === scheduler) j++;
      const run = i === 0 && j === all.length ? all : all.slice(i, j);
      scheduler.inject(() => {
        const now = scheduler.now();
        for (const { cable, frame } of run) {
          const local = cable.local;
          if (!local.owner) throw new Error(`Ethernet port ${local.name} received a frame but has no owner`);
          const lastPs = cable.arrive(frame, now);
          if (lastPs <= now) local.owner.receiveFrame(frame, local);
          else scheduler.schedule(lastPs - now, () => local.owner!.receiveFrame(frame, local));
        }
      });
      i = j;
    }
  }
}
