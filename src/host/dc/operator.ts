import { labelCallback, type StateDigest } from '../../core/digest.js';
import type { Scheduler } from '../../core/scheduler.js';
import { DconnectError } from '../../core/errors.js';
import { isSuccess, statusName, type NvmeStatus } from '../../devices/nvme/nvme-defs.js';
import type { BlockDevice } from './manager.js';

export interface MoveSpec {
  src: BlockDevice;
  srcOffset: number;
  dst: BlockDevice;
  dstOffset: number;
  lengthBytes: number;
  chunkBytes: number;
  /** I/O commands in flight over source and destination together (the paper's multiplicity). */
  depth: number;
  /** Bus addresses of the relay slots (DC buffer BAR for direct, host memory for conventional), each chunkBytes. */
  slots: number[];
  /** Told of every chunk written; may answer that chunks were moved by other means (see MoveObserver). */
  observer?: MoveObserver;
  /**
   * A run list instead of one range (a file copy's extents): chunks never cross a run's end, and the
   * pipeline runs on from one run into the next. Their lengths sum to lengthBytes; srcOffset and
   * dstOffset are then unused.
   */
  segments?: readonly { srcOffset: number; dstOffset: number; lengthBytes: number }[];
}

/** Where each chunk of a run list lies on both devices (bounded by the move's length over the chunk size, plus one per run). */
function chunkTable(segments: NonNullable<MoveSpec['segments']>, chunkBytes: number): { src: number; dst: number; bytes: number }[] {
  const out: { src: number; dst: number; bytes: number }[] = [];
  for (const s of segments) {
    for (let at = 0; at < s.lengthBytes; at += chunkBytes) out.push({ src: s.srcOffset + at, dst: s.dstOffset + at, bytes: Math.min(chunkBytes, s.lengthBytes - at) });
  }
  return out;
}

/** What the operator tells whoever watches the move (the runtime's fast path), at chunk boundaries. */
export interface MoveObserver {
  /**
   * Chunk `chunk` is on the destination (called before the pipeline refills). `nextRead` is the first
   * chunk not yet read. Returns how many chunks from `nextRead` on the operator should treat as already
   * moved (0: none); they must be whole chunks before the last one.
   */
  chunkWritten?(chunk: number, nextRead: number): number;
  /** A read or write command was handed to its device's driver (views: trace-events' NVMe slices). */
  commandIssued?(c: CommandInfo): void;
  /** That command completed (`ok`: with success). */
  commandCompleted?(c: CommandInfo, ok: boolean): void;
}

/** One of the operator's commands, as its observer sees it. */
export interface CommandInfo {
  kind: 'read' | 'write';
  chunk: number;
  /** The block device's name (sda). */
  device: string;
  slba: number;
  bytes: number;
}

/** The operator's view of a move in progress: for digests (slot identities and chunk numbers are labels) and for a runtime that moves chunks by other means. */
export interface MoveHandle {
  digest(d: StateDigest): void;
  /** The first chunk not yet read. */
  nextRead(): number;
  /**
   * Treats `count` chunks from nextRead() on as already moved, at any moment (chunks in flight keep
   * their labels): what a MoveObserver's answer does, for a runtime that jumps several moves at once.
   * At least the last chunk must stay unread.
   */
  skipAhead(count: number): void;
}

export interface MoveStats {
  chunks: number;
  readCommands: number;
  writeCommands: number;
  maxInFlight: number;
  startPs: number;
  endPs: number;
}

/**
 * DC operator: moves a range from one block device to another through relay slots. Each chunk is read
 * from the source into a free slot, then written from that slot to the destination. It keeps `depth`
 * commands in flight over both devices together: a chunk whose read finished is written first (it
 * frees a slot soonest); otherwise the next chunk is read into a free slot. So reads and writes overlap
 * (pipelining) and several commands are outstanding per device (multiplexing).
 */
export class DcOperator {
  constructor(private readonly scheduler: Scheduler) {}

  move(spec: MoveSpec, done: (stats: MoveStats) => void, fail: (err: Error) => void): MoveHandle {
    const { src, dst, chunkBytes, lengthBytes } = spec;
    const table = spec.segments ? chunkTable(spec.segments, chunkBytes) : null;
    const chunks = table ? table.length : Math.ceil(lengthBytes / chunkBytes);
    const freeSlots = spec.slots.slice().reverse();
    const readyToWrite: { chunk: number; slot: number }[] = [];
    const stats: MoveStats = { chunks, readCommands: 0, writeCommands: 0, maxInFlight: 0, startPs: this.scheduler.now(), endPs: 0 };
    let nextRead = 0;
    let written = 0;
    let inFlight = 0;
    let failed = false;

    const check = (what: string, status: NvmeStatus): boolean => {
      if (isSuccess(status)) return true;
      if (!failed) fail(new DconnectError('DEVICE_ERROR', `${what} failed: ${statusName(status)}`));
      failed = true;
      return false;
    };
    const span = (chunk: number) => (table ? table[chunk].bytes : Math.min(chunkBytes, lengthBytes - chunk * chunkBytes));

    const pump = (): void => {
      while (!failed && inFlight < spec.depth) {
        const ready = readyToWrite.shift();
        if (ready) {
          issue('write', ready.chunk, ready.slot);
          continue;
        }
        if (nextRead < chunks && freeSlots.length > 0 && src.driver.freeSlots() > 0) {
          issue('read', nextRead++, freeSlots.pop()!);
          continue;
        }
        break;
      }
      if (inFlight > stats.maxInFlight) stats.maxInFlight = inFlight;
    };

    /** Reads a chunk into its slot, or writes it out of its slot; the completion drives the pipeline. */
    const issue = (kind: 'read' | 'write', chunk: number, slot: number): void => {
      const dev = kind === 'read' ? src : dst;
      const base = kind === 'read' ? spec.srcOffset : spec.dstOffset;
      inFlight++;
      if (kind === 'read') stats.readCommands++;
      else stats.writeCommands++;
      const bytes = span(chunk);
      const slba = (table ? (kind === 'read' ? table[chunk].src : table[chunk].dst) : base + chunk * chunkBytes) / dev.blockBytes;
      const info: CommandInfo | null = spec.observer?.commandIssued ? { kind, chunk, device: dev.name, slba, bytes } : null;
      if (info) spec.observer!.commandIssued!(info);
      const completed = (st: NvmeStatus): void => {
        inFlight--;
        if (info) spec.observer!.commandCompleted?.(info, isSuccess(st));
        if (!check(`${kind} of ${dev.name} blocks ${slba}..${slba + bytes / dev.blockBytes - 1} (bytes ${slba * dev.blockBytes}..${(slba * dev.blockBytes + bytes - 1)}, chunk ${chunk} of the move)`, st)) return;
        if (kind === 'read') readyToWrite.push({ chunk, slot });
        else {
          freeSlots.push(slot);
          const skip = spec.observer?.chunkWritten ? spec.observer.chunkWritten(chunk, nextRead) : 0;
          if (++written === chunks) {
            stats.endPs = this.scheduler.now();
            done(stats);
            return;
          }
          if (skip > 0) skipAhead(skip);
        }
        pump();
      };
      dev.driver.submitIo(kind, slba, bytes / dev.blockBytes, [{ address: slot, lengthBytes: bytes }], labelCallback(completed, `op>${kind}:${bytes}`));
    };
    const skipAhead = (count: number): void => {
      if (!Number.isInteger(count) || count < 0 || nextRead + count >= chunks) throw new Error(`operator: cannot skip ${count} chunks from ${nextRead} of ${chunks}`);
      nextRead += count;
      written += count;
    };
    const handle: MoveHandle = {
      nextRead: () => nextRead,
      skipAhead,
      digest: (d) => {
        d.section('operator');
        d.num(inFlight);
        d.num(freeSlots.length);
        d.num(readyToWrite.length);
        d.flag(failed);
      },
    };

    if (chunks === 0) {
      stats.endPs = stats.startPs;
      done(stats);
      return handle;
    }
    pump();
    return handle;
  }
}
