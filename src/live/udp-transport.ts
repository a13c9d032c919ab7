/**
 * The UDP frame channel of live mode (issue "Live fabric"): the Ethernet cables that join a host
 * process to a box process are UDP datagrams between their sockets, one socket per node. The model's
 * ports are unchanged: each crossing cable's port gets this transport's channel instead of a cable.
 *
 * Datagram (big-endian header, then the frame, then its FCS):
 *
 *   bytes 0-3    magic 0x44434C56 ('DCLV')
 *   byte  4      version, 1
 *   byte  5      flags: bit 0 KEEPALIVE (see below); the others reserved, sent 0, ignored
 *   bytes 6-7    cable id (the builder's cable; both nodes build the same topology, so they agree)
 *   bytes 8-11   epoch, u32: the host's session number
 *   bytes 12..   the tagged Ethernet frame as expether/pdu-codec.ts encodes it (no padding)
 *   last 4       FCS: CRC-32 of the frame bytes, little-endian as on an Ethernet wire
 *
 * Batches: the frames a node sends to one peer within one turn of its event loop leave together, as
 * one datagram of version 2: bytes 0-3 magic, byte 4 = 2, byte 5 = 0, bytes 6-7 the record count, then
 * each record as a u16 length and a whole version-1 datagram as above. A socket call per frame was
 * most of a node's cost with small TLPs (a 64-byte read completion is a frame); a batch is at most
 * BATCH_BYTES, so it stays one datagram on loopback and a few IP fragments elsewhere. A lost batch is
 * lost frames, which the bridges recover as any others. A lone frame still goes as version 1.
 *
 * Keepalive: a version-1 record with flag KEEPALIVE carries, instead of a frame, 5 bytes: the sender's
 * incarnation (u32, drawn at process start) and its state (0 running, 1 its model stopped). The cable id
 * is one of the sender's crossing cables to the receiver, which names the sender. A box sends one to
 * each peer every few hundred ms and at every new epoch: the host judges a box alive by any datagram
 * from it, and restarted by a new incarnation (host-node.ts), never by data progress.
 *
 * UDP's own checksum already guards the datagram; the FCS is there so that injected corruption (a bit
 * flipped after the FCS was computed) is caught the way a real MAC catches it: the frame is dropped
 * and the bridges' retransmission recovers it.
 *
 * Epoch rule: a session's frames must never reach a model of another session (sequence numbers would
 * collide). The host starts each session with a new, greater epoch and drops every datagram of any
 * other. A box follows the host: an older epoch is stale and dropped; a greater one means the host
 * started a new session, so the box adopts it and rebuilds its model (`onNewEpoch`, synchronously,
 * before the datagram is delivered to the rebuilt model); it sends with its current epoch. A box needs
 * no configuration to find the host: it answers to the address the host's datagrams come from.
 *
 * Faults (`--fault`) are applied on send, seeded per cable, with the semantics of runtime/faults.ts.
 * Live code: it uses sockets, timers and the wall clock, and nothing under the model layers imports it.
 * A datagram from the network is never trusted: every check drops and counts, and nothing it contains
 * can make the socket handler throw.
 */
import dgram from 'node:dgram';
import * as zlib from 'node:zlib';
import { Ring } from '../core/ring.js';
import { RngFactory, type RngStream } from '../core/rng.js';
import type { Callback, Scheduler } from '../core/scheduler.js';
import { JUMBO_MAX_PAYLOAD_BYTES, type Frame } from '../ethernet/frame.js';
import type { EthChannel, EthPort } from '../ethernet/port.js';
import { decodeExpEtherFrame, encodeExpEtherFrame, FRAME_HEADER_BYTES } from '../expether/pdu-codec.js';
import { drawFault, type FaultKind, type FaultSpec } from '../runtime/faults.js';

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
  /** Frames (records) sent and received: a batch datagram carries several. */
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Too short or long, bad magic or version, or a frame the PDU codec refuses. */
  badDatagrams: number;
  /** The FCS did not match: corrupted on the way (injected corruption ends here). */
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
  /** Keepalive records received (counted in framesReceived too). */
  keepalivesReceived: number;
}

export const DATAGRAM_MAGIC = 0x44434c56;
export const DATAGRAM_VERSION = 1;
export const DATAGRAM_HEADER_BYTES = 12;
export const DATAGRAM_FCS_BYTES = 4;
/** Flag of a keepalive record (byte 5). */
export const FLAG_KEEPALIVE = 0x01;
const KEEPALIVE_BYTES = 5;
/** The longest frame any cable may carry: tagged Ethernet header and a jumbo payload (each cable's port has its own limit, checked per record). */
const MAX_FRAME_BYTES = FRAME_HEADER_BYTES + JUMBO_MAX_PAYLOAD_BYTES;
const MAX_U32 = 0xffff_ffff;
/** A reordered datagram waits for the next one on its cable, but no longer than this, wall ms. */
const REORDER_HOLD_MS = 1;
/** Version of a batch datagram (several version-1 records, each behind a u16 length). */
export const BATCH_VERSION = 2;
const BATCH_HEADER_BYTES = 8;
/** A batch holds at most this many bytes (records and their lengths): under a loopback datagram's 64 KiB. */
export const BATCH_BYTES = 32 << 10;
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

/** One datagram: header, the frame's bytes and their FCS (see the file comment). */
export function encodeDatagram(cableId: number, epoch: number, frameBytes: Uint8Array, flags = 0): Uint8Array {
  const n = frameBytes.length;
  const out = new Uint8Array(DATAGRAM_HEADER_BYTES + n + DATAGRAM_FCS_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, DATAGRAM_MAGIC);
  out[4] = DATAGRAM_VERSION;
  out[5] = flags;
  v.setUint16(6, cableId);
  v.setUint32(8, epoch);
  out.set(frameBytes, DATAGRAM_HEADER_BYTES);
  v.setUint32(DATAGRAM_HEADER_BYTES + n, crc32(frameBytes), true);
  return out;
}

function checkU32(v: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= MAX_U32)) throw new RangeError(`${what} ${v} is not an integer in 0..${MAX_U32}`);
}

/**
 * One crossing cable as this node sees it: the channel of its local port. Datagrams wait in a FIFO
 * until their frame has been serialized and has propagated, and leave in order, one preallocated
 * callback sending the head (as ethernet/port.ts's CableDirection delivers). The FIFO holds only
 * frames the port has serialized and not yet put on the socket, so it is bounded by what the model
 * sends: the bridges' windows and the port's output buffer.
 */
class UdpCable implements EthChannel {
  private readonly datagrams = new Ring<Uint8Array>();
  /** Parallel to `datagrams`: the datagram was drawn for reordering. */
  private readonly holds = new Ring<boolean>();
  /** A reordered datagram waiting to follow the next one (at most one per cable). */
  private held: Uint8Array | null = null;
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly propagationPs: number;
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
  }

  carry(_from: EthPort, frame: Frame, serializedInPs: number): void {
    // Encoded now: the sender may change its objects once this returns (a retransmission buffer).
    const bytes = encodeExpEtherFrame(frame);
    this.transport.tap?.(this.name, bytes);
    const dg = encodeDatagram(this.id, this.transport.epoch, bytes);
    let hold = false;
    let copies = 1;
    if (this.rates && this.rng) {
      const u = this.rng.nextFloat();
      const fault = drawFault(this.rates, u);
      const c = this.transport.counters;
      if (fault !== null) c[fault]++;
      if (fault === 'lost') return;
      if (fault === 'corrupted') {
        // After the FCS, as on a wire; which bit follows from the same draw, so there is one draw per frame.
        const bits = (dg.length - DATAGRAM_HEADER_BYTES - DATAGRAM_FCS_BYTES) * 8;
        const bit = Math.min(bits - 1, Math.floor(((u - this.rates.loss) / this.rates.corrupt) * bits));
        dg[DATAGRAM_HEADER_BYTES + (bit >>> 3)]! ^= 1 << (bit & 7);
      } else if (fault === 'duplicated') copies = 2;
      else if (fault === 'reordered') hold = true;
    }
    const delay = serializedInPs + this.propagationPs;
    for (let i = 0; i < copies; i++) {
      this.scheduler.schedule(delay, this.sendNext); // first: it throws on a bad delay
      this.datagrams.push(dg);
      this.holds.push(hold);
    }
  }

  private readonly sendNext: Callback = () => {
    const dg = this.datagrams.shift()!;
    const hold = this.holds.shift()!;
    if (this.detached) return; // a replaced model's frames never leave
    if (hold) {
      if (this.held) this.flushHeld(); // at most one held: the older one goes first
      this.held = dg;
      this.heldTimer = setTimeout(this.flushHeld, REORDER_HOLD_MS);
      this.heldTimer.unref();
      return;
    }
    this.transport.sendTo(this.remote, dg);
    if (this.held) this.flushHeld();
  };

  private readonly flushHeld = (): void => {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const dg = this.held;
    this.held = null;
    if (dg && !this.detached) this.transport.sendTo(this.remote, dg);
  };

  detach(): void {
    this.detached = true;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.held = null;
  }
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
  };
  epoch: number;
  /** Sees every frame this node sends (as the sender transmits it, before any fault) or receives intact on a crossing cable: captures. */
  tap: ((cable: string, frame: Uint8Array) => void) | null = null;
  private readonly cables = new Map<number, UdpCable>();
  private readonly peers = new Map<string, UdpAddress>();
  private readonly heard = new Map<string, number>();
  private readonly streams: RngFactory;
  private closed = false;
  /** One callback for every send (no closure per datagram). */
  private readonly afterSend = (err: Error | null): void => {
    if (err) this.counters.sendErrors++;
  };

  private constructor(
    private readonly o: UdpTransportOptions,
    private readonly socket: dgram.Socket,
  ) {
    this.epoch = o.epoch;
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

  /** Sends a keepalive (see the file comment) to every peer an attached cable leads to whose address is known. */
  sendKeepalive(incarnation: number, state: number): void {
    const sent = new Set<string>();
    for (const c of this.cables.values()) {
      if (c.detached || sent.has(c.remote) || !this.peers.has(c.remote)) continue;
      sent.add(c.remote);
      const body = new Uint8Array(KEEPALIVE_BYTES);
      new DataView(body.buffer).setUint32(0, incarnation >>> 0);
      body[4] = state;
      this.sendTo(c.remote, encodeDatagram(c.id, this.epoch, body, FLAG_KEEPALIVE));
    }
  }

  detachAll(): void {
    for (const c of this.cables.values()) c.detach();
    this.cables.clear();
  }

  /** performance.now() when the last good datagram from `node` arrived; null: none yet. */
  lastHeardMs(node: string): number | null {
    return this.heard.get(node) ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detachAll();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  /** Queues one record (a version-1 datagram) toward `node`; it leaves with the others of this turn (see the file comment). Never throws. */
  sendTo(node: string, dg: Uint8Array): void {
    if (!this.peers.has(node) || this.closed) {
      this.counters.sendErrors++;
      return;
    }
    let b = this.batches.get(node);
    if (!b) this.batches.set(node, (b = { records: [], bytes: BATCH_HEADER_BYTES }));
    if (b.bytes + 2 + dg.length > BATCH_BYTES) this.flushTo(node, b);
    b.records.push(dg);
    b.bytes += 2 + dg.length;
    if (!this.flushArmed) {
      this.flushArmed = true;
      setImmediate(this.flushAll);
    }
  }

  /** The records waiting per peer, sent at the end of the turn (bounded: a full batch leaves at once). */
  private readonly batches = new Map<string, { records: Uint8Array[]; bytes: number }>();
  private flushArmed = false;
  private readonly flushAll = (): void => {
    this.flushArmed = false;
    for (const [node, b] of this.batches) if (b.records.length > 0) this.flushTo(node, b);
  };

  private flushTo(node: string, b: { records: Uint8Array[]; bytes: number }): void {
    const peer = this.peers.get(node);
    const records = b.records;
    b.records = [];
    b.bytes = BATCH_HEADER_BYTES;
    if (!peer || this.closed) {
      this.counters.sendErrors += records.length;
      return;
    }
    let dg: Uint8Array;
    if (records.length === 1) dg = records[0];
    else {
      dg = new Uint8Array(BATCH_HEADER_BYTES + records.reduce((n, r) => n + 2 + r.length, 0));
      const v = new DataView(dg.buffer);
      v.setUint32(0, DATAGRAM_MAGIC);
      dg[4] = BATCH_VERSION;
      v.setUint16(6, records.length);
      let at = BATCH_HEADER_BYTES;
      for (const r of records) {
        v.setUint16(at, r.length);
        dg.set(r, at + 2);
        at += 2 + r.length;
      }
    }
    try {
      this.socket.send(dg, peer.port, peer.host, this.afterSend);
      this.counters.datagramsSent++;
      this.counters.framesSent += records.length;
      this.counters.bytesSent += dg.length;
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
    if (msg.length >= BATCH_HEADER_BYTES && msg[4] === BATCH_VERSION && new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0) === DATAGRAM_MAGIC) {
      // A batch: each record is checked and delivered as a datagram of its own; a bad length ends it.
      const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
      const count = v.getUint16(6);
      let at = BATCH_HEADER_BYTES;
      for (let i = 0; i < count; i++) {
        if (at + 2 > msg.length || at + 2 + v.getUint16(at) > msg.length) {
          c.badDatagrams++;
          return;
        }
        const len = v.getUint16(at);
        this.receiveRecord(msg.subarray(at + 2, at + 2 + len), rinfo);
        at += 2 + len;
      }
      if (at !== msg.length) c.badDatagrams++;
      return;
    }
    this.receiveRecord(msg, rinfo);
  }

  /** One version-1 record: checked, then delivered to its cable's port. */
  private receiveRecord(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    c.framesReceived++;
    const n = msg.length - DATAGRAM_HEADER_BYTES - DATAGRAM_FCS_BYTES;
    const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
    if (n < 0 || n > MAX_FRAME_BYTES || v.getUint32(0) !== DATAGRAM_MAGIC || msg[4] !== DATAGRAM_VERSION) {
      c.badDatagrams++;
      return;
    }
    const frameBytes = msg.subarray(DATAGRAM_HEADER_BYTES, DATAGRAM_HEADER_BYTES + n);
    if (crc32(frameBytes) !== v.getUint32(DATAGRAM_HEADER_BYTES + n, true)) {
      c.fcsErrors++;
      return;
    }
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
    const cable = this.cables.get(v.getUint16(6));
    if (!cable) {
      c.unknownCable++;
      return;
    }
    if (msg[5]! & FLAG_KEEPALIVE) {
      if (n !== KEEPALIVE_BYTES) {
        c.badDatagrams++;
        return;
      }
      c.keepalivesReceived++;
      this.heard.set(cable.remote, performance.now());
      this.o.onKeepalive?.(cable.remote, v.getUint32(DATAGRAM_HEADER_BYTES), msg[DATAGRAM_HEADER_BYTES + 4]!);
      return;
    }
    if (n - FRAME_HEADER_BYTES > cable.local.maxPayloadBytes) {
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
    const local = cable.local;
    cable.scheduler.inject(() => {
      if (!local.owner) throw new Error(`Ethernet port ${local.name} received a frame but has no owner`);
      local.owner.receiveFrame(frame, local);
    });
  }
}
