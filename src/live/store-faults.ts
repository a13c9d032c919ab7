/**
 * Injected failures of a drive's backing file (`up --fault store-error=sdb:LBA[:write]`, `disk-full=sdb`):
 * a store that throws what a failing file system would (EIO, ENOSPC) as the `StoreError` the SSD model
 * turns into that one command's error status. Tests and users get a full disk without filling one.
 *
 * Live code (the drives are files only here); the model sees a BlockStore like any other.
 */
import { piecesBytes, StoreError, type BlockStore } from '../devices/block-store.js';
import type { StoreFault } from '../runtime/faults.js';

/** What a drive's store must still offer besides the BlockStore methods (the box's TrackedStore). */
type Inner = BlockStore & { enter: ((fn: () => void) => void) | null };

export class FaultyStore<S extends Inner> implements BlockStore {
  /** Accesses refused, by kind (the box logs them; tests read them). */
  readonly refused = { io: 0, noSpace: 0 };

  constructor(
    readonly inner: S,
    private readonly faults: StoreFault[],
    private readonly blockBytes: number,
  ) {}

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }

  set enter(fn: ((fn: () => void) => void) | null) {
    this.inner.enter = fn;
  }

  read(addr: number, len: number): Uint8Array {
    this.check('read', addr, len);
    return this.inner.read(addr, len);
  }

  write(addr: number, data: Uint8Array): void {
    this.check('write', addr, data.length);
    this.inner.write(addr, data);
  }

  writev(addr: number, pieces: readonly Uint8Array[]): void {
    this.check('write', addr, piecesBytes(pieces));
    this.inner.writev(addr, pieces);
  }

  flush(done: (ok: boolean) => void): void {
    this.inner.flush(done);
  }

  private check(op: 'read' | 'write', addr: number, len: number): void {
    for (const f of this.faults) {
      if (f.op !== op) continue;
      if (f.kind === 'no-space') {
        this.refused.noSpace++;
        throw new StoreError('no-space', `writing at ${addr}: ENOSPC: no space left on device (--fault disk-full)`);
      }
      const at = f.lba! * this.blockBytes;
      if (at < addr + len && at + this.blockBytes > addr) {
        this.refused.io++;
        throw new StoreError('io', `${op} at ${addr}: EIO: i/o error (--fault store-error, block ${f.lba})`);
      }
    }
  }
}
