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

  move(spec: MoveSpec, done: (stats: MoveStats) => void, fail: (err: Error) => void): void {
    const { src, dst, chunkBytes, lengthBytes } = spec;
    const chunks = Math.ceil(lengthBytes / chunkBytes);
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
    const span = (chunk: number) => Math.min(chunkBytes, lengthBytes - chunk * chunkBytes);

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
      const slba = (base + chunk * chunkBytes) / dev.blockBytes;
      dev.driver.submitIo(kind, slba, bytes / dev.blockBytes, [{ address: slot, lengthBytes: bytes }], (st) => {
        inFlight--;
        if (!check(`${kind} of ${dev.name} at block ${slba}`, st)) return;
        if (kind === 'read') readyToWrite.push({ chunk, slot });
        else {
          freeSlots.push(slot);
          if (++written === chunks) {
            stats.endPs = this.scheduler.now();
            done(stats);
            return;
          }
        }
        pump();
      });
    };

    if (chunks === 0) {
      stats.endPs = stats.startPs;
      done(stats);
      return;
    }
    pump();
  }
}
