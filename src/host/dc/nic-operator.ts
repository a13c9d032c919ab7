import { labelCallback } from '../../core/digest.js';
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

  move(spec: NicMoveSpec, done: (stats: NicMoveStats) => void, fail: (err: Error) => void): void {
    const s = spec;
    const F = s.frameBytes;
    if (s.chunkBytes % F !== 0 && s.kind !== 'pipeline') throw new DconnectError('BAD_OPTION', `chunk size ${s.chunkBytes} is not a multiple of the ${F}-byte frame payload`, `use a chunk that is a multiple of ${F} bytes`);
    const nic = s.nic;
    // Frames and chunks on the wire: skipped chunks (the observer's answers) leave the move, and the
    // chunks after a skip keep consecutive wire numbers; `dataChunk` names where their bytes are.
    let totalFrames = framesOf(s.lengthBytes, F);
    const framesPerChunk = s.chunkBytes / F;
    let chunks = Math.ceil(s.lengthBytes / s.chunkBytes);
    let gapChunk = Infinity;
    let gapChunks = 0;
    const dataChunk = (c: number): number => (c >= gapChunk ? c + gapChunks : c);
    /** Removes `k` whole chunks from wire chunk `from` on (one skip per move). */
    const skipChunks = (from: number, k: number): void => {
      if (!Number.isInteger(k) || k < 1 || gapChunks > 0 || from + k >= chunks || s.observer === undefined) throw new Error(`nic operator: cannot skip ${k} chunks from ${from} of ${chunks}`);
      gapChunk = from;
      gapChunks = k;
      chunks -= k;
      totalFrames -= k * framesPerChunk;
      s.observer.skipped(from * framesPerChunk, k * framesPerChunk);
    };
    const stats: NicMoveStats = { frames: totalFrames, commands: 0, creditsSent: 0, startPs: this.scheduler.now(), endPs: 0 };
    let failed = false;
    let finished = false;
    const stop = (e: Error): void => {
      if (failed || finished) return;
      failed = true;
      fail(e);
    };
    const finish = (): void => {
      if (failed || finished) return;
      finished = true;
      stats.endPs = this.scheduler.now();
      done(stats);
    };
    const frameLen = (seq: number) => Math.min(F, s.lengthBytes - (seq + (seq >= gapChunk * framesPerChunk ? gapChunks * framesPerChunk : 0)) * F);
    const header = (h: Omit<BtHeader, 'src'>) => encodeBtHeader({ ...h, src: nic.mac });

    // The host CPU: work that costs perFrameCpuNs per frame runs when the CPU is free.
    let cpuFreePs = 0;
    const cpu = (frames: number, fn: () => void, label: string): void => {
      const now = this.scheduler.now();
      cpuFreePs = Math.max(cpuFreePs, now) + frames * s.perFrameCpuNs * 1000;
      if (s.cpu) s.cpu.cpuBusyPs += frames * s.perFrameCpuNs * 1000;
      this.scheduler.schedule(cpuFreePs - now, labelCallback(fn, label));
    };

    // ---- Sending frames to a client within its credit (serve: from chunks; pipeline: from frame buffers).
    let outCredit = 0;
    let nextOut = 0;
    let sentDone = 0;
    /** Where frame `seq`'s payload is, once it is there (null: not yet). */
    let payloadOf: (seq: number) => number | null = () => null;
    let onSent: (seq: number) => void = () => {};
    let sending = false;
    const pumpOut = (): void => {
      if (sending || failed) return;
      // The batch is posted after its CPU time, all at once: it needs two descriptors a frame (header and
      // payload) from what is free now, less one kept for a credit frame that may be posted meanwhile.
      const batch: [number, number][] = [];
      while (batch.length < BATCH_FRAMES && nextOut < totalFrames && nextOut < outCredit && nic.txFree() >= 2 * (batch.length + 1) + 1) {
        const at = payloadOf(nextOut);
        if (at === null) break;
        batch.push([nextOut++, at]);
      }
      if (batch.length === 0) return;
      sending = true;
      cpu(batch.length, () => {
        sending = false;
        for (const [seq, at] of batch) {
          const len = frameLen(seq);
          nic.transmit(header({ dst: s.toMac!, type: BT_TYPE.DATA, stream: s.stream, seq, value: len }), { address: at, lengthBytes: len }, (ok) => {
            if (!ok) return stop(new DconnectError('DEVICE_ERROR', `the NIC refused frame ${seq} of the move (bad descriptor)`));
            sentDone++;
            onSent(seq);
          });
        }
        pumpOut();
      }, 'nic-op>send');
    };

    // ---- Receiving frames from a client into posted buffers, granting credit for them. Credit never
    // passes the buffers posted, nor what the NIC's receive packet buffer holds beyond the frames
    // already placed: a NIC that places frames slower than the line brings them (its DMA bound by the
    // fabric) buffers the difference, and a frame that does not fit would be missed. One frame's room
    // stays for the other client's credit frames.
    const window = Math.max(1, Math.floor(nic.rxBufferBytes / (BT_FRAME_HEADER_BYTES + F)) - 1);
    /** Credit is sent in steps of a quarter window (delayed acknowledgement), or when it reaches the end. */
    const creditStep = Math.max(1, Math.floor(window / 4));
    let inCredit = 0;
    let nextIn = 0;
    let creditPending = false;
    const grant = (posted: number): void => {
      const limit = Math.min(posted, nextIn + window, totalFrames);
      if (limit <= inCredit || (limit < totalFrames && limit - inCredit < creditStep && inCredit > nextIn)) return;
      inCredit = limit;
      if (creditPending) return;
      creditPending = true;
      // The credit frame waits for a free transmit descriptor if the ring is full (it needs one).
      const sendCredit = (): void => {
        if (nic.txFree() < 1) return void this.scheduler.schedule(1_000_000, labelCallback(sendCredit, 'nic-op>credit-retry'));
        creditPending = false;
        stats.creditsSent++;
        nic.transmit(header({ dst: s.fromMac!, type: BT_TYPE.CREDIT, stream: s.stream, seq: 0, value: inCredit }), null, (ok) => {
          if (!ok) stop(new DconnectError('DEVICE_ERROR', 'the NIC refused a credit frame'));
        });
      };
      cpu(1, sendCredit, 'nic-op>credit');
    };
    /** Checks a received data frame: ours, in order, with its payload where the buffer was. */
    const takeData = (r: Received): BtHeader | null => {
      if (r.errors) {
        stop(new DconnectError('DEVICE_ERROR', `the NIC refused a received frame (errors 0x${r.errors.toString(16)}): its buffers were too small`));
        return null;
      }
      let h: BtHeader;
      try {
        h = decodeBtHeader(r.header, r.header.length + r.packetBytes);
      } catch (e) {
        stop(e as Error);
        return null;
      }
      if (h.type === BT_TYPE.CREDIT) {
        if (h.stream === s.stream && h.src === s.toMac && h.value > outCredit) {
          outCredit = Math.min(h.value, totalFrames);
          pumpOut();
        }
        return null;
      }
      if (h.stream !== s.stream || h.src !== s.fromMac || h.seq !== nextIn) {
        stop(new DconnectError('PROTOCOL', `expected frame ${nextIn} of stream ${s.stream} from the sending client, got frame ${h.seq} of stream ${h.stream}`, 'a frame was lost or reordered on the NIC network'));
        return null;
      }
      nextIn++;
      return h;
    };
    /** Receive descriptors for credit frames only (serve): no packet buffer, the header is all there is. */
    const postCreditBuffers = (): void => {
      while (nic.rxFree() > 0) nic.postReceive(0, onCreditOnly);
    };
    const onCreditOnly = (r: Received): void => {
      if (r.errors === 0) takeData(r);
      else stop(new DconnectError('PROTOCOL', 'a data frame arrived where only credit was expected'));
      postCreditBuffers();
    };

    /**
     * One drive command for a chunk (serve reads it into its slot, ingest writes it from there): its
     * bytes and blocks from the chunk's place in the data. `done(ok)` from the completion; a failure
     * has already stopped the move.
     */
    const driveIo = (op: 'read' | 'write', chunk: number, slot: number, done: (ok: boolean) => void): void => {
      const drive = s.drive!;
      const bytes = Math.min(s.chunkBytes, s.lengthBytes - dataChunk(chunk) * s.chunkBytes);
      const slba = (s.driveOffset! + dataChunk(chunk) * s.chunkBytes) / drive.blockBytes;
      stats.commands++;
      drive.driver.submitIo(op, slba, bytes / drive.blockBytes, [{ address: slot, lengthBytes: bytes }], labelCallback((st: NvmeStatus) => {
        if (!isSuccess(st)) stop(new DconnectError('DEVICE_ERROR', `${op} of ${drive.name} blocks ${slba}.. (chunk ${chunk}) failed: ${statusName(st)}`));
        done(isSuccess(st));
      }, `nic-op>${op}:${bytes}`));
    };

    if (totalFrames === 0) return finish();

    if (s.kind === 'serve') {
      // Chunks are read from the drive into free slots (up to depth commands) and sent in order.
      const drive = s.drive!;
      const freeSlots = s.slots.slice().reverse();
      const slotOf = new Map<number, number>();
      const readDone = new Set<number>();
      let nextRead = 0;
      let reads = 0;
      const readMore = (): void => {
        while (!failed && nextRead < chunks && reads < s.depth && freeSlots.length > 0 && drive.driver.freeSlots() > 0) {
          const chunk = nextRead++;
          const slot = freeSlots.pop()!;
          slotOf.set(chunk, slot);
          reads++;
          driveIo('read', chunk, slot, (ok) => {
            reads--;
            if (!ok) return;
            readDone.add(chunk);
            pumpOut();
            readMore();
          });
        }
      };
      payloadOf = (seq) => {
        const chunk = Math.floor(seq / framesPerChunk);
        return readDone.has(chunk) ? slotOf.get(chunk)! + (seq % framesPerChunk) * F : null;
      };
      onSent = (seq) => {
        const chunk = Math.floor(seq / framesPerChunk);
        if ((seq + 1) % framesPerChunk === 0 || seq === totalFrames - 1) {
          // The chunk's frames have all left (they finish in order): its slot is free again.
          freeSlots.push(slotOf.get(chunk)!);
          slotOf.delete(chunk);
          readDone.delete(chunk);
          if (s.observer && sentDone < totalFrames) {
            const k = s.observer.chunkDone(dataChunk(chunk), dataChunk(nextRead));
            if (k > 0) skipChunks(nextRead, k);
          }
          readMore();
        }
        if (sentDone === totalFrames) finish();
      };
      nic.onInterrupt = pumpOut;
      postCreditBuffers();
      readMore();
      return;
    }

    if (s.kind === 'ingest') {
      // Receive buffers are posted chunk by chunk at the frame's place in its slot, so a chunk lands
      // contiguous and is written to the drive with one command.
      const drive = s.drive!;
      const freeSlots = s.slots.slice().reverse();
      const slotOf = new Map<number, number>();
      let postedFrames = 0;
      let received = 0;
      let writes = 0;
      let written = 0;
      const complete: number[] = [];
      const postMore = (): void => {
        while (!failed && postedFrames < totalFrames && nic.rxFree() > 0) {
          const seq = postedFrames;
          const chunk = Math.floor(seq / framesPerChunk);
          if (seq % framesPerChunk === 0) {
            if (freeSlots.length === 0) break;
            slotOf.set(chunk, freeSlots.pop()!);
          }
          nic.postReceive(slotOf.get(chunk)! + (seq % framesPerChunk) * F, onData);
          postedFrames++;
        }
        grant(postedFrames);
      };
      const onData = (r: Received): void => {
        const h = takeData(r);
        if (!h) return;
        if (r.packetBytes !== frameLen(h.seq)) return stop(new DconnectError('PROTOCOL', `frame ${h.seq} carried ${r.packetBytes} payload bytes, not ${frameLen(h.seq)}`));
        received++;
        grant(postedFrames);
        if (received % framesPerChunk === 0 || received === totalFrames) {
          const chunk = Math.floor(h.seq / framesPerChunk);
          complete.push(chunk);
          // The stack's work for the chunk's frames (a last chunk may be short).
          cpu(received - chunk * framesPerChunk, writeMore, 'nic-op>chunk-in');
        }
      };
      const writeMore = (): void => {
        while (!failed && complete.length > 0 && writes < s.depth && drive.driver.freeSlots() > 0) {
          const chunk = complete.shift()!;
          const slot = slotOf.get(chunk)!;
          writes++;
          driveIo('write', chunk, slot, (ok) => {
            writes--;
            if (!ok) return;
            slotOf.delete(chunk);
            freeSlots.push(slot);
            if (++written === chunks) return finish();
            if (s.observer) {
              // The first chunk no receive buffer was posted for: its frames have no credit yet.
              const next = Math.ceil(postedFrames / framesPerChunk);
              const k = next < chunks ? s.observer.chunkDone(dataChunk(chunk), dataChunk(next)) : 0;
              if (k > 0) skipChunks(next, k);
            }
            postMore();
            writeMore();
          });
        }
      };
      postMore();
      return;
    }

    // pipeline: each frame buffer is posted for receive, then sent on from where it landed, then reposted.
    const free = s.slots.slice().reverse();
    const landed = new Map<number, number>();
    const postMore = (): void => {
      let posted = false;
      while (!failed && free.length > 0 && nic.rxFree() > 0) {
        const buf = free.pop()!;
        nic.postReceive(buf, (r) => onFrame(r, buf));
        posted = true;
      }
      // Credit up to the buffers posted: a buffer is held from its frame's arrival until it has been sent
      // on, so frames below sentDone + (buffers not waiting to be posted) have a place. A credit frame from
      // the receiving client takes a descriptor for a moment (its buffer is reposted at once); a data frame
      // arriving meanwhile waits in the NIC's receive FIFO for the next one.
      if (posted) grant(sentDone + s.slots.length - free.length);
    };
    const onFrame = (r: Received, buf: number): void => {
      if (r.errors === 0 && r.packetBytes === 0) {
        // A credit frame from the receiving client: its buffer was not used.
        takeData(r);
        free.push(buf);
        postMore();
        return;
      }
      const h = takeData(r);
      if (!h) return;
      // The stack parses the header (its CPU time per frame) before the frame can be sent on; sending
      // it costs the same again in pumpOut, so a forwarded frame costs two frames' CPU.
      cpu(
        1,
        () => {
          landed.set(h.seq, buf);
          pumpOut();
        },
        'nic-op>parsed',
      );
      grant(sentDone + s.slots.length - free.length);
    };
    payloadOf = (seq) => landed.get(seq) ?? null;
    onSent = (seq) => {
      free.push(landed.get(seq)!);
      landed.delete(seq);
      if (sentDone === totalFrames) return finish();
      postMore();
    };
    nic.onInterrupt = pumpOut;
    postMore();
  }
}
