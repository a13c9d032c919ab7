import { labelCallback, type StateDigest } from '../../core/digest.js';
import { DconnectError } from '../../core/errors.js';
import type { Scheduler } from '../../core/scheduler.js';
import { isSuccess, statusName, type NvmeStatus } from '../../devices/nvme/nvme-defs.js';
import { BT_FRAME_HEADER_BYTES, BT_TYPE, decodeBtHeader, encodeBtHeader, framesOf, type BtHeader } from '../../net/block-transfer.js';
import type { NicDriver, Received } from '../nic-driver.js';
import type { BlockDevice } from './manager.js';

/** serve: SSD -> client; ingest: client -> SSD; pipeline: client -> NIC -> another client. */
export type NicMoveKind = 'serve' | 'ingest' | 'pipeline';

export interface NicMoveSpec {
  kind: NicMoveKind;
  nic: NicDriver;
  /** serve: the source drive; ingest: the destination drive. */
  drive?: BlockDevice;
  driveOffset?: number;
  /** The client data comes from (ingest, pipeline) and the one it goes to (serve, pipeline), by MAC. */
  fromMac?: number;
  toMac?: number;
  /** Stream id of the transfer (both legs of a pipeline use it). */
  stream: number;
  lengthBytes: number;
  /** Bytes per drive command (serve, ingest); a multiple of frameBytes. */
  chunkBytes: number;
  /** Drive commands in flight at most (serve, ingest). */
  depth: number;
  /**
   * Relay buffers' bus addresses (a DC buffer's BAR for direct moves, host memory for conventional):
   * serve and ingest, one per chunk in flight, chunkBytes each; pipeline, one per frame, frameBytes each.
   */
  slots: number[];
  /** Payload bytes per frame. */
  frameBytes: number;
  /** Host CPU per frame for the transfer stack (header build or parse, descriptor handling), ns. */
  perFrameCpuNs: number;
  /** Where the stack's CPU time is added up (ps), for whoever traces it (the runtime: `hostcpu.<host>`). */
  cpu?: { cpuBusyPs: number };
  /** Told of every chunk done (serve, ingest); may answer that chunks were moved by other means (see NicMoveObserver). */
  observer?: NicMoveObserver;
}

/**
 * What the operator tells whoever watches a serve or ingest (the runtime's fast path), at chunk
 * boundaries. Chunks are named by their place in the move (data labels), whatever was skipped before.
 */
export interface NicMoveObserver {
  /**
   * Chunk `chunk` is done (serve: its frames all sent and written back; ingest: written to the drive).
   * `next` is the first chunk the move has not started yet (serve: not read; ingest: no receive buffer
   * posted for any of its frames). Returns how many whole chunks from `next` on to treat as moved (0:
   * none). The operator then goes on as if they were not part of the move: the frames on the wire keep
   * consecutive numbers (the frame numbered `gapFrame` carries the data of frame gapFrame + skipped
   * frames), so credit and ring state stay as they are; `skipped` tells the runtime, which must give
   * the client the same relabelling (ClientNode.skipFrames) before any event runs.
   */
  chunkDone(chunk: number, next: number): number;
  /** The skip as the wire sees it: frames from `gapFrame` on carry the data `frames` frames later. */
  skipped(gapFrame: number, frames: number): void;
}

export interface NicMoveStats {
  frames: number;
  /** Drive commands issued (reads for serve, writes for ingest). */
  commands: number;
  creditsSent: number;
  startPs: number;
  endPs: number;
}

/** Frames the stack posts per turn at most before it yields its CPU (Linux's xmit_more batches, NAPI's budget of 64). */
const BATCH_FRAMES = 64;

/**
 * The DC operator's moves with a NIC (the paper's section 4 next step). Data frames travel between
 * the NIC and relay buffers: a DC buffer for the direct moves, so payloads never cross the host link
 * and the host only posts descriptors, builds and parses headers (split into host memory by the NIC)
 * and commands the drive; host memory for the conventional ones. Flow control is the block transfer
 * protocol's credit: the host grants a sending client credit for receive buffers it has posted, and
 * sends to a receiving client within the credit that client granted.
 */
export class NicOperator {
  constructor(private readonly scheduler: Scheduler) {}

  /** Starts a move; the returned object is the move in progress (its state, `digest()`). */
  move(spec: NicMoveSpec, done: (stats: NicMoveStats) => void, fail: (err: Error) => void): NicMove {
    const F = spec.frameBytes;
    if (spec.chunkBytes % F !== 0 && spec.kind !== 'pipeline') throw new DconnectError('BAD_OPTION', `chunk size ${spec.chunkBytes} is not a multiple of the ${F}-byte frame payload`, `use a chunk that is a multiple of ${F} bytes`);
    const m = spec.kind === 'serve' ? new ServeMove(this.scheduler, spec, done, fail) : spec.kind === 'ingest' ? new IngestMove(this.scheduler, spec, done, fail) : new PipelineMove(this.scheduler, spec, done, fail);
    m.start();
    return m;
  }
}

/**
 * A move with a NIC in progress, as an object (DcOperator's move is the model): the parts every kind
 * shares are here (the host CPU, sending within a client's credit, receiving and granting credit, the
 * drive's commands, the skip the fast path asks for); each kind adds where a frame's payload is, what
 * happens when one has left, and how it starts. `digest()` describes the state relative to now, with
 * slot addresses, chunk and frame numbers as labels (only how many of each).
 */
export abstract class NicMove {
  protected readonly F: number;
  protected readonly nic: NicDriver;
  /** Frames and chunks on the wire: skipped chunks (the observer's answers) leave the move, and the chunks after a skip keep consecutive wire numbers; `dataChunk` names where their bytes are. */
  protected totalFrames: number;
  protected readonly framesPerChunk: number;
  protected chunks: number;
  private gapChunk = Infinity;
  private gapChunks = 0;
  readonly stats: NicMoveStats;
  protected failed = false;
  private finished = false;
  /** The host CPU: work that costs perFrameCpuNs per frame runs when it is free. */
  private cpuFreePs = 0;
  // Sending frames to a client within its credit (serve: from chunks; pipeline: from frame buffers).
  private outCredit = 0;
  private nextOut = 0;
  protected sentDone = 0;
  private sending = false;
  // Receiving frames from a client into posted buffers, granting credit for them. Credit never passes
  // the buffers posted, nor what the NIC's receive packet buffer holds beyond the frames already
  // placed: a NIC that places frames slower than the line brings them (its DMA bound by the fabric)
  // buffers the difference, and a frame that does not fit would be missed. One frame's room stays for
  // the other client's credit frames.
  private readonly window: number;
  /** Credit is sent in steps of a quarter window (delayed acknowledgement), or when it reaches the end. */
  private readonly creditStep: number;
  private inCredit = 0;
  private nextIn = 0;
  private creditPending = false;

  constructor(
    protected readonly scheduler: Scheduler,
    protected readonly s: NicMoveSpec,
    private readonly done: (stats: NicMoveStats) => void,
    private readonly fail: (err: Error) => void,
  ) {
    this.F = s.frameBytes;
    this.nic = s.nic;
    this.totalFrames = framesOf(s.lengthBytes, this.F);
    this.framesPerChunk = s.chunkBytes / this.F;
    this.chunks = Math.ceil(s.lengthBytes / s.chunkBytes);
    this.stats = { frames: this.totalFrames, commands: 0, creditsSent: 0, startPs: scheduler.now(), endPs: 0 };
    this.window = Math.max(1, Math.floor(this.nic.rxBufferBytes / (BT_FRAME_HEADER_BYTES + this.F)) - 1);
    this.creditStep = Math.max(1, Math.floor(this.window / 4));
  }

  /** Starts the move (an empty one finishes at once). */
  start(): void {
    if (this.totalFrames === 0) return this.finish();
    this.begin();
  }

  /** The kind's first steps. */
  protected abstract begin(): void;
  /** Where frame `seq`'s payload is, once it is there (null: not yet). */
  protected payloadOf(_seq: number): number | null {
    return null;
  }
  /** Frame `seq` has left the NIC (sentDone counts it already). */
  protected onSent(_seq: number): void {}
  /** The kind's own state, for `digest`. */
  protected abstract digestKind(d: StateDigest): void;

  /**
   * The move's state relative to now: frames and credit each way (as distances, not absolute
   * numbers: sequence numbers are labels), whether a send batch or a credit is on its way, when the
   * host CPU is free, the skip, and the kind's own.
   */
  digest(d: StateDigest): void {
    d.section(`nic-move:${this.s.kind}`);
    d.num(this.totalFrames - this.nextOut);
    d.num(this.outCredit - this.nextOut);
    d.num(this.nextOut - this.sentDone);
    d.num(this.inCredit - this.nextIn);
    d.num(this.totalFrames - this.nextIn);
    d.flag(this.sending);
    d.flag(this.creditPending);
    d.flag(this.failed);
    d.flag(this.finished);
    d.until(this.cpuFreePs);
    d.num(this.chunks);
    this.digestKind(d);
  }

  protected dataChunk(c: number): number {
    return c >= this.gapChunk ? c + this.gapChunks : c;
  }

  /** Removes `k` whole chunks from wire chunk `from` on (one skip per move). */
  protected skipChunks(from: number, k: number): void {
    const s = this.s;
    if (!Number.isInteger(k) || k < 1 || this.gapChunks > 0 || from + k >= this.chunks || s.observer === undefined) throw new Error(`nic operator: cannot skip ${k} chunks from ${from} of ${this.chunks}`);
    this.gapChunk = from;
    this.gapChunks = k;
    this.chunks -= k;
    this.totalFrames -= k * this.framesPerChunk;
    s.observer.skipped(from * this.framesPerChunk, k * this.framesPerChunk);
  }

  protected stop(e: Error): void {
    if (this.failed || this.finished) return;
    this.failed = true;
    this.fail(e);
  }

  protected finish(): void {
    if (this.failed || this.finished) return;
    this.finished = true;
    this.stats.endPs = this.scheduler.now();
    this.done(this.stats);
  }

  protected frameLen(seq: number): number {
    const F = this.F;
    return Math.min(F, this.s.lengthBytes - (seq + (seq >= this.gapChunk * this.framesPerChunk ? this.gapChunks * this.framesPerChunk : 0)) * F);
  }

  private header(h: Omit<BtHeader, 'src'>): Uint8Array {
    return encodeBtHeader({ ...h, src: this.nic.mac });
  }

  /** Work of `frames` frames' CPU time, run when the host CPU is free. */
  protected cpu(frames: number, fn: () => void, label: string): void {
    const s = this.s;
    const now = this.scheduler.now();
    this.cpuFreePs = Math.max(this.cpuFreePs, now) + frames * s.perFrameCpuNs * 1000;
    if (s.cpu) s.cpu.cpuBusyPs += frames * s.perFrameCpuNs * 1000;
    this.scheduler.schedule(this.cpuFreePs - now, labelCallback(fn, label));
  }

  /** Sends what the credit allows and has its payload in place, a batch at a time. */
  protected pumpOut(): void {
    if (this.sending || this.failed) return;
    const nic = this.nic;
    // The batch is posted after its CPU time, all at once: it needs two descriptors a frame (header and
    // payload) from what is free now, less one kept for a credit frame that may be posted meanwhile.
    const batch: [number, number][] = [];
    while (batch.length < BATCH_FRAMES && this.nextOut < this.totalFrames && this.nextOut < this.outCredit && nic.txFree() >= 2 * (batch.length + 1) + 1) {
      const at = this.payloadOf(this.nextOut);
      if (at === null) break;
      batch.push([this.nextOut++, at]);
    }
    if (batch.length === 0) return;
    this.sending = true;
    this.cpu(batch.length, () => {
      this.sending = false;
      for (const [seq, at] of batch) {
        const len = this.frameLen(seq);
        nic.transmit(this.header({ dst: this.s.toMac!, type: BT_TYPE.DATA, stream: this.s.stream, seq, value: len }), { address: at, lengthBytes: len }, (ok) => {
          if (!ok) return this.stop(new DconnectError('DEVICE_ERROR', `the NIC refused frame ${seq} of the move (bad descriptor)`));
          this.sentDone++;
          this.onSent(seq);
        });
      }
      this.pumpOut();
    }, 'nic-op>send');
  }

  /** Grants the sending client credit up to `posted` buffers (within the window), in steps. */
  protected grant(posted: number): void {
    const limit = Math.min(posted, this.nextIn + this.window, this.totalFrames);
    if (limit <= this.inCredit || (limit < this.totalFrames && limit - this.inCredit < this.creditStep && this.inCredit > this.nextIn)) return;
    this.inCredit = limit;
    if (this.creditPending) return;
    this.creditPending = true;
    this.cpu(1, () => this.sendCredit(), 'nic-op>credit');
  }

  /** The credit frame; it waits for a free transmit descriptor if the ring is full (it needs one). */
  private sendCredit(): void {
    const nic = this.nic;
    if (nic.txFree() < 1) return void this.scheduler.schedule(1_000_000, labelCallback(() => this.sendCredit(), 'nic-op>credit-retry'));
    this.creditPending = false;
    this.stats.creditsSent++;
    nic.transmit(this.header({ dst: this.s.fromMac!, type: BT_TYPE.CREDIT, stream: this.s.stream, seq: 0, value: this.inCredit }), null, (ok) => {
      if (!ok) this.stop(new DconnectError('DEVICE_ERROR', 'the NIC refused a credit frame'));
    });
  }

  /** Checks a received data frame: ours, in order, with its payload where the buffer was (a credit frame is taken here and answers null). */
  protected takeData(r: Received): BtHeader | null {
    const s = this.s;
    if (r.errors) {
      this.stop(new DconnectError('DEVICE_ERROR', `the NIC refused a received frame (errors 0x${r.errors.toString(16)}): its buffers were too small`));
      return null;
    }
    let h: BtHeader;
    try {
      h = decodeBtHeader(r.header, r.header.length + r.packetBytes);
    } catch (e) {
      this.stop(e as Error);
      return null;
    }
    if (h.type === BT_TYPE.CREDIT) {
      if (h.stream === s.stream && h.src === s.toMac && h.value > this.outCredit) {
        this.outCredit = Math.min(h.value, this.totalFrames);
        this.pumpOut();
      }
      return null;
    }
    if (h.stream !== s.stream || h.src !== s.fromMac || h.seq !== this.nextIn) {
      this.stop(new DconnectError('PROTOCOL', `expected frame ${this.nextIn} of stream ${s.stream} from the sending client, got frame ${h.seq} of stream ${h.stream}`, 'a frame was lost or reordered on the NIC network'));
      return null;
    }
    this.nextIn++;
    return h;
  }

  /**
   * One drive command for a chunk (serve reads it into its slot, ingest writes it from there): its
   * bytes and blocks from the chunk's place in the data. `done(ok)` from the completion; a failure
   * has already stopped the move.
   */
  protected driveIo(op: 'read' | 'write', chunk: number, slot: number, done: (ok: boolean) => void): void {
    const s = this.s;
    const drive = s.drive!;
    const bytes = Math.min(s.chunkBytes, s.lengthBytes - this.dataChunk(chunk) * s.chunkBytes);
    const slba = (s.driveOffset! + this.dataChunk(chunk) * s.chunkBytes) / drive.blockBytes;
    this.stats.commands++;
    drive.driver.submitIo(op, slba, bytes / drive.blockBytes, [{ address: slot, lengthBytes: bytes }], labelCallback((st: NvmeStatus) => {
      if (!isSuccess(st)) this.stop(new DconnectError('DEVICE_ERROR', `${op} of ${drive.name} blocks ${slba}.. (chunk ${chunk}) failed: ${statusName(st)}`));
      done(isSuccess(st));
    }, `nic-op>${op}:${bytes}`));
  }
}

/** Serve: chunks are read from the drive into free slots (up to depth commands) and sent in order; the client's credit frames come back on buffers without a payload. */
class ServeMove extends NicMove {
  private readonly freeSlots = this.s.slots.slice().reverse();
  private readonly slotOf = new Map<number, number>();
  private readonly readDone = new Set<number>();
  private nextRead = 0;
  private reads = 0;

  protected begin(): void {
    this.nic.onInterrupt = () => this.pumpOut();
    this.postCreditBuffers();
    this.readMore();
  }

  private readMore(): void {
    const s = this.s;
    while (!this.failed && this.nextRead < this.chunks && this.reads < s.depth && this.freeSlots.length > 0 && s.drive!.driver.freeSlots() > 0) {
      const chunk = this.nextRead++;
      const slot = this.freeSlots.pop()!;
      this.slotOf.set(chunk, slot);
      this.reads++;
      this.driveIo('read', chunk, slot, (ok) => {
        this.reads--;
        if (!ok) return;
        this.readDone.add(chunk);
        this.pumpOut();
        this.readMore();
      });
    }
  }

  protected override payloadOf(seq: number): number | null {
    const chunk = Math.floor(seq / this.framesPerChunk);
    return this.readDone.has(chunk) ? this.slotOf.get(chunk)! + (seq % this.framesPerChunk) * this.F : null;
  }

  protected override onSent(seq: number): void {
    const s = this.s;
    const chunk = Math.floor(seq / this.framesPerChunk);
    if ((seq + 1) % this.framesPerChunk === 0 || seq === this.totalFrames - 1) {
      // The chunk's frames have all left (they finish in order): its slot is free again.
      this.freeSlots.push(this.slotOf.get(chunk)!);
      this.slotOf.delete(chunk);
      this.readDone.delete(chunk);
      if (s.observer && this.sentDone < this.totalFrames) {
        const k = s.observer.chunkDone(this.dataChunk(chunk), this.dataChunk(this.nextRead));
        if (k > 0) this.skipChunks(this.nextRead, k);
      }
      this.readMore();
    }
    if (this.sentDone === this.totalFrames) this.finish();
  }

  /** Receive descriptors for credit frames only: no packet buffer, the header is all there is. */
  private postCreditBuffers(): void {
    while (this.nic.rxFree() > 0) this.nic.postReceive(0, this.onCreditOnly);
  }

  private readonly onCreditOnly = (r: Received): void => {
    if (r.errors === 0) this.takeData(r);
    else this.stop(new DconnectError('PROTOCOL', 'a data frame arrived where only credit was expected'));
    this.postCreditBuffers();
  };

  protected digestKind(d: StateDigest): void {
    d.num(this.chunks - this.nextRead);
    d.num(this.reads);
    d.num(this.freeSlots.length);
    d.num(this.readDone.size);
  }
}

/** Ingest: receive buffers are posted chunk by chunk at the frame's place in its slot, so a chunk lands contiguous and is written to the drive with one command. */
class IngestMove extends NicMove {
  private readonly freeSlots = this.s.slots.slice().reverse();
  private readonly slotOf = new Map<number, number>();
  private postedFrames = 0;
  private received = 0;
  private writes = 0;
  private written = 0;
  /** Chunks whose frames have all arrived, waiting for their write. */
  private readonly complete: number[] = [];

  protected begin(): void {
    this.postMore();
  }

  private postMore(): void {
    while (!this.failed && this.postedFrames < this.totalFrames && this.nic.rxFree() > 0) {
      const seq = this.postedFrames;
      const chunk = Math.floor(seq / this.framesPerChunk);
      if (seq % this.framesPerChunk === 0) {
        if (this.freeSlots.length === 0) break;
        this.slotOf.set(chunk, this.freeSlots.pop()!);
      }
      this.nic.postReceive(this.slotOf.get(chunk)! + (seq % this.framesPerChunk) * this.F, this.onData);
      this.postedFrames++;
    }
    this.grant(this.postedFrames);
  }

  private readonly onData = (r: Received): void => {
    const h = this.takeData(r);
    if (!h) return;
    if (r.packetBytes !== this.frameLen(h.seq)) return this.stop(new DconnectError('PROTOCOL', `frame ${h.seq} carried ${r.packetBytes} payload bytes, not ${this.frameLen(h.seq)}`));
    this.received++;
    this.grant(this.postedFrames);
    if (this.received % this.framesPerChunk === 0 || this.received === this.totalFrames) {
      const chunk = Math.floor(h.seq / this.framesPerChunk);
      this.complete.push(chunk);
      // The stack's work for the chunk's frames (a last chunk may be short).
      this.cpu(this.received - chunk * this.framesPerChunk, this.writeMore, 'nic-op>chunk-in');
    }
  };

  private readonly writeMore = (): void => {
    const s = this.s;
    while (!this.failed && this.complete.length > 0 && this.writes < s.depth && s.drive!.driver.freeSlots() > 0) {
      const chunk = this.complete.shift()!;
      const slot = this.slotOf.get(chunk)!;
      this.writes++;
      this.driveIo('write', chunk, slot, (ok) => {
        this.writes--;
        if (!ok) return;
        this.slotOf.delete(chunk);
        this.freeSlots.push(slot);
        if (++this.written === this.chunks) return this.finish();
        if (s.observer) {
          // The first chunk no receive buffer was posted for: its frames have no credit yet.
          const next = Math.ceil(this.postedFrames / this.framesPerChunk);
          const k = next < this.chunks ? s.observer.chunkDone(this.dataChunk(chunk), this.dataChunk(next)) : 0;
          if (k > 0) this.skipChunks(next, k);
        }
        this.postMore();
        this.writeMore();
      });
    }
  };

  protected digestKind(d: StateDigest): void {
    d.num(this.totalFrames - this.postedFrames);
    d.num(this.postedFrames - this.received);
    d.num(this.chunks - this.written);
    d.num(this.writes);
    d.num(this.complete.length);
    d.num(this.freeSlots.length);
  }
}

/** Pipeline: each frame buffer is posted for receive, then sent on from where it landed, then reposted. */
class PipelineMove extends NicMove {
  private readonly free = this.s.slots.slice().reverse();
  /** Frames parsed and waiting to be sent on, by sequence number: the buffer each landed in. */
  private readonly landed = new Map<number, number>();

  protected begin(): void {
    this.nic.onInterrupt = () => this.pumpOut();
    this.postMore();
  }

  private postMore(): void {
    let posted = false;
    while (!this.failed && this.free.length > 0 && this.nic.rxFree() > 0) {
      const buf = this.free.pop()!;
      this.nic.postReceive(buf, (r) => this.onFrame(r, buf));
      posted = true;
    }
    // Credit up to the buffers posted: a buffer is held from its frame's arrival until it has been sent
    // on, so frames below sentDone + (buffers not waiting to be posted) have a place. A credit frame from
    // the receiving client takes a descriptor for a moment (its buffer is reposted at once); a data frame
    // arriving meanwhile waits in the NIC's receive FIFO for the next one.
    if (posted) this.grant(this.sentDone + this.s.slots.length - this.free.length);
  }

  private onFrame(r: Received, buf: number): void {
    if (r.errors === 0 && r.packetBytes === 0) {
      // A credit frame from the receiving client: its buffer was not used.
      this.takeData(r);
      this.free.push(buf);
      this.postMore();
      return;
    }
    const h = this.takeData(r);
    if (!h) return;
    // The stack parses the header (its CPU time per frame) before the frame can be sent on; sending
    // it costs the same again in pumpOut, so a forwarded frame costs two frames' CPU.
    this.cpu(
      1,
      () => {
        this.landed.set(h.seq, buf);
        this.pumpOut();
      },
      'nic-op>parsed',
    );
    this.grant(this.sentDone + this.s.slots.length - this.free.length);
  }

  protected override payloadOf(seq: number): number | null {
    return this.landed.get(seq) ?? null;
  }

  protected override onSent(seq: number): void {
    this.free.push(this.landed.get(seq)!);
    this.landed.delete(seq);
    if (this.sentDone === this.totalFrames) return this.finish();
    this.postMore();
  }

  protected digestKind(d: StateDigest): void {
    d.num(this.free.length);
    d.num(this.landed.size);
  }
}
