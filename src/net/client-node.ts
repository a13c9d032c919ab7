import { labelCallback, type StateDigest } from '../core/digest.js';
import { DconnectError } from '../core/errors.js';
import { Ring } from '../core/ring.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import { frameDst, type NetPort, type NetReceiver } from '../devices/net-port.js';
import { BT_FRAME_HEADER_BYTES, BT_TYPE, decodeBtHeader, encodeBtFrame, framesOf } from './block-transfer.js';

export interface ClientParams {
  /** CPU time of the client's stack per frame sent or received (driver, protocol, copy to or from the application), ns. */
  perFrameCpuNs: number;
  /** Frames the client lets a sender have outstanding when it receives (its socket buffer over the frame payload). */
  windowFrames: number;
  /** A receiving client returns credit after every this many frames it has consumed (delayed acknowledgement). */
  creditEveryFrames: number;
}

/** One transfer the client takes part in: a stream it sends or receives. */
interface Stream {
  id: number;
  role: 'send' | 'receive';
  peer: number;
  lengthBytes: number;
  frameBytes: number;
  frames: number;
  /** send: next frame to send and the credit limit; receive: next frame expected and credit granted. */
  next: number;
  credit: number;
  /** The application's bytes: send reads them, receive hands them over. */
  source: ((offset: number, length: number) => Uint8Array) | null;
  sink: ((offset: number, data: Uint8Array) => void) | null;
  done: (error: Error | null) => void;
  finished: boolean;
  /** A skip (skipFrames): frames numbered from gapAt on carry the application's bytes gap frames later. */
  gapAt: number;
  gap: number;
}

/**
 * A client on a NIC's network: a traffic source and sink outside the I/O box (a backup client, the
 * next node of an HDFS pipeline). It speaks the block transfer protocol (net/block-transfer.ts) with
 * its own stack costs: every frame takes perFrameCpuNs of its one CPU, and its NIC paces it at line
 * rate (a full output buffer makes it wait). As a receiver it grants windowFrames of credit and hands
 * each frame's payload to the application in order.
 */
export class ClientNode implements NetReceiver {
  private readonly streams = new Map<number, Stream>();
  /** The CPU: frames it has work queued for, in order (bounded by the credit the client granted or holds). */
  private readonly cpuQueue = new Ring<() => void>();
  private cpuBusy = false;
  /**
   * Frames the port refused, sent first when it has room again; while any wait the stack makes no new
   * data frame, so this holds at most one data frame and one credit per stream.
   */
  private readonly pendingTx = new Ring<Uint8Array>();
  readonly counters = { txFrames: 0, rxFrames: 0, txPayloadBytes: 0, rxPayloadBytes: 0, creditsSent: 0, creditsReceived: 0, badFrames: 0, cpuBusyPs: 0 };

  constructor(
    readonly name: string,
    private readonly scheduler: Scheduler,
    readonly params: ClientParams,
    private readonly port: NetPort,
    readonly mac: number,
    trace?: TraceRegistry,
  ) {
    port.attach(this);
    trace?.register(`client.${name}`, () => this.counters);
  }

  /**
   * Sends `lengthBytes` from `source` as stream `id` to `peer`, as the peer's credit allows; `done`
   * once the last frame has left the client's stack.
   */
  send(id: number, peer: number, lengthBytes: number, frameBytes: number, source: (offset: number, length: number) => Uint8Array, done: (error: Error | null) => void): void {
    this.open({ id, role: 'send', peer, lengthBytes, frameBytes, frames: framesOf(lengthBytes, frameBytes), next: 0, credit: 0, source, sink: null, done, finished: false, gapAt: Infinity, gap: 0 });
  }

  /** Receives stream `id` from `peer` into `sink` (in order); grants the first window at once. */
  receive(id: number, peer: number, lengthBytes: number, frameBytes: number, sink: (offset: number, data: Uint8Array) => void, done: (error: Error | null) => void): void {
    const s: Stream = { id, role: 'receive', peer, lengthBytes, frameBytes, frames: framesOf(lengthBytes, frameBytes), next: 0, credit: 0, source: null, sink, done, finished: false, gapAt: Infinity, gap: 0 };
    this.open(s);
    this.grant(s);
  }

  /**
   * The fast path's relabelling (runtime/nic-moves.ts): `frames` frames of stream `id` from frame
   * `at` on leave the transfer (their bytes are moved by other means). The frames on the wire keep
   * consecutive numbers: the one numbered `at` carries the application's bytes of frame at + frames,
   * and the stream is `frames` shorter, so credit and the frames in flight stay as they are. Only
   * frames not yet made (a sender) or granted (a receiver) can leave.
   */
  skipFrames(id: number, at: number, frames: number): void {
    const s = this.streams.get(id);
    if (!s || s.finished || s.gap > 0 || !Number.isInteger(frames) || frames < 1 || at < s.next || at + frames >= s.frames || s.credit > s.frames - frames) {
      throw new Error(`${this.name}: cannot skip ${frames} frames from ${at} of stream ${id}`);
    }
    s.gapAt = at;
    s.gap = frames;
    s.frames -= frames;
  }

  /** Where frame `seq`'s bytes are in the application's data. */
  private offsetOf(s: Stream, seq: number): number {
    return (seq >= s.gapAt ? seq + s.gap : seq) * s.frameBytes;
  }

  private open(s: Stream): void {
    if (this.streams.has(s.id)) throw new DconnectError('BAD_OPTION', `${this.name} already has a stream ${s.id}`, 'give each transfer its own stream id');
    this.streams.set(s.id, s);
    // An empty stream has no frame whose sending or arrival would end it: it is done at once (as its own event).
    if (s.frames === 0) this.scheduler.schedule(0, labelCallback(() => this.finish(s, null), 'client>empty-stream'));
  }

  /** Runs `work` on the client's CPU after perFrameCpuNs, in order behind earlier work. */
  private cpu(work: () => void): void {
    this.cpuQueue.push(work);
    if (!this.cpuBusy) this.cpuNext();
  }

  private cpuNext(): void {
    if (this.cpuQueue.length === 0) {
      this.cpuBusy = false;
      return;
    }
    this.cpuBusy = true;
    this.counters.cpuBusyPs += this.params.perFrameCpuNs * 1000;
    this.scheduler.schedule(this.params.perFrameCpuNs * 1000, this.cpuDone);
  }

  private readonly cpuDone = labelCallback(() => {
    this.cpuQueue.shift()!();
    if (this.pendingTx.length === 0) this.cpuNext();
    else this.cpuBusy = false; // resumes from netReady: the stack waits for its NIC
  }, 'client>cpu');

  private transmit(frame: Uint8Array): void {
    if (this.pendingTx.length === 0 && this.port.send(frame)) return;
    this.pendingTx.push(frame);
  }

  netReady(): void {
    while (this.pendingTx.length > 0 && this.port.send(this.pendingTx.peek()!)) this.pendingTx.shift();
    if (this.pendingTx.length > 0) return;
    if (!this.cpuBusy) this.cpuNext();
    this.pumpSends();
  }

  /** Queues frames of sending streams while credit allows (one CPU slot each). */
  private pumpSends(): void {
    for (const s of this.streams.values()) {
      if (s.role !== 'send' || s.finished) continue;
      while (s.next < s.credit && s.next < s.frames && this.pendingTx.length === 0 && this.cpuQueue.length < 2) {
        const seq = s.next++;
        const off = this.offsetOf(s, seq);
        const len = Math.min(s.frameBytes, s.lengthBytes - off);
        this.cpu(() => {
          const frame = encodeBtFrame({ dst: s.peer, src: this.mac, type: BT_TYPE.DATA, stream: s.id, seq, value: len }, s.source!(off, len));
          this.transmit(frame);
          this.counters.txFrames++;
          this.counters.txPayloadBytes += len;
          if (seq === s.frames - 1) this.finish(s, null);
          this.pumpSends();
        });
      }
    }
  }

  netReceive(frame: Uint8Array): void {
    // The MAC's destination filter: another station's unicast frame (a switch floods those it has not learnt yet) is not ours.
    if ((frame[0] & 1) === 0 && frameDst(frame) !== this.mac) return;
    let h;
    try {
      h = decodeBtHeader(frame);
    } catch {
      this.counters.badFrames++;
      return;
    }
    const s = this.streams.get(h.stream);
    if (!s || s.finished || h.src !== s.peer) {
      this.counters.badFrames++;
      return;
    }
    if (h.type === BT_TYPE.CREDIT) {
      if (s.role !== 'send') return void this.counters.badFrames++;
      this.counters.creditsReceived++;
      if (h.value > s.credit) s.credit = Math.min(h.value, s.frames);
      this.pumpSends();
      return;
    }
    if (s.role !== 'receive') return void this.counters.badFrames++;
    if (h.seq !== s.next) {
      // Credits make loss impossible on the modelled network; a gap means a frame was lost or reordered.
      this.finish(s, new DconnectError('PROTOCOL', `${this.name}: stream ${s.id} expected frame ${s.next} but got ${h.seq}`, 'a frame was lost or reordered on the NIC network'));
      return;
    }
    s.next++;
    const payload = frame.subarray(BT_FRAME_HEADER_BYTES);
    this.counters.rxFrames++;
    this.counters.rxPayloadBytes += payload.length;
    // The CPU's queue of received frames is bounded by the credit this client granted (windowFrames).
    this.cpu(() => {
      if (s.finished) return; // the stream failed (a gap) after this frame arrived: nothing more is delivered or granted
      s.sink!(this.offsetOf(s, h.seq), payload);
      const consumed = h.seq + 1;
      if (consumed === s.frames) this.finish(s, null);
      // Credit every creditEveryFrames, and whenever the sender has used all it had (a window smaller than creditEveryFrames would otherwise stall).
      else if (consumed % this.params.creditEveryFrames === 0 || consumed === s.credit) this.grant(s, consumed);
    });
  }

  /** Sends credit: frames below consumed + windowFrames may come. */
  private grant(s: Stream, consumed = 0): void {
    const limit = Math.min(consumed + this.params.windowFrames, s.frames);
    if (limit <= s.credit) return;
    s.credit = limit;
    this.counters.creditsSent++;
    this.transmit(encodeBtFrame({ dst: s.peer, src: this.mac, type: BT_TYPE.CREDIT, stream: s.id, seq: 0, value: limit }, null));
  }

  private finish(s: Stream, error: Error | null): void {
    s.finished = true;
    this.streams.delete(s.id);
    s.done(error);
  }

  digest(d: StateDigest): void {
    d.section(this.name);
    d.num(this.cpuQueue.length);
    d.flag(this.cpuBusy);
    d.num(this.pendingTx.length);
    for (const s of this.streams.values()) {
      d.num(s.next);
      d.num(s.credit);
    }
  }
}
