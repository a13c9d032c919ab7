import { DconnectError } from '../../core/errors.js';
import { isSuccess, statusName, type NvmeStatus } from '../../devices/nvme/nvme-defs.js';
import type { SparseMemory } from '../../devices/sparse-memory.js';
import type { Op } from '../coroutine.js';
import type { BlockDevice } from '../dc/manager.js';
import type { BlockIo, IoCounts } from './block-io.js';

/**
 * A block device as the file system sees it in simulation: NVMe Read/Write commands through the host's
 * driver into one bounce buffer in host memory, one command at a time. So every metadata byte the file
 * system reads or writes crosses the host link, as the paper's data does on a conventional copy.
 */
export class NvmeBlockIo implements BlockIo {
  readonly counts: IoCounts = { readBytes: 0, writtenBytes: 0, reads: 0, writes: 0 };

  constructor(
    private readonly dev: BlockDevice,
    private readonly memory: SparseMemory,
    /** Host-memory address of the bounce buffer, and its size (at most the driver's largest transfer). */
    private readonly bounce: number,
    private readonly bounceBytes: number,
  ) {}

  get sizeBytes(): number {
    return this.dev.capacityBytes;
  }

  get blockBytes(): number {
    return this.dev.blockBytes;
  }

  read(offsetBytes: number, lengthBytes: number): Op<Uint8Array | Error> {
    return (k) => {
      const out = new Uint8Array(lengthBytes);
      this.pieces('read', offsetBytes, lengthBytes, (at, n) => out.set(this.memory.read(this.bounce, n), at), null, (err) => k(err ?? out));
    };
  }

  write(offsetBytes: number, data: Uint8Array): Op<void | Error> {
    return (k) => this.pieces('write', offsetBytes, data.length, null, (at, n) => this.memory.write(this.bounce, data.subarray(at, at + n)), (err) => k(err ?? undefined));
  }

  flush(): Op<void | Error> {
    return (k) => this.dev.driver.submitFlush((st) => k(this.failure('flush', 0, 0, st) ?? undefined));
  }

  /** One command per bounce-buffer load, each issued from the previous one's completion. */
  private pieces(kind: 'read' | 'write', offset: number, length: number, after: ((at: number, n: number) => void) | null, before: ((at: number, n: number) => void) | null, done: (err: Error | null) => void): void {
    const bs = this.dev.blockBytes;
    if (offset % bs !== 0 || length % bs !== 0 || offset < 0 || offset + length > this.dev.capacityBytes) {
      done(new DconnectError('OUT_OF_RANGE', `file system ${kind} [${offset}, ${offset + length}) is unaligned or beyond ${this.dev.name}'s ${this.dev.capacityBytes} bytes`));
      return;
    }
    const step = (at: number): void => {
      if (at >= length) {
        done(null);
        return;
      }
      const n = Math.min(this.bounceBytes, length - at);
      before?.(at, n);
      const counts = this.counts;
      if (kind === 'read') {
        counts.reads++;
        counts.readBytes += n;
      } else {
        counts.writes++;
        counts.writtenBytes += n;
      }
      this.dev.driver.submitIo(kind, (offset + at) / bs, n / bs, [{ address: this.bounce, lengthBytes: n }], (st) => {
        const err = this.failure(kind, offset + at, n, st);
        if (err) return done(err);
        after?.(at, n);
        step(at + n);
      });
    };
    step(0);
  }

  private failure(kind: string, offset: number, n: number, st: NvmeStatus): Error | null {
    if (isSuccess(st)) return null;
    return new DconnectError('DEVICE_ERROR', `file system ${kind} of ${this.dev.name}${n > 0 ? ` bytes ${offset}..${offset + n - 1}` : ''} failed: ${statusName(st)}`);
  }
}
