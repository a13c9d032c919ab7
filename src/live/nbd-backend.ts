/**
 * The host's block devices as NBD exports (issue "NBD"): every request runs through the modelled host
 * like any other I/O. A read is NVMe Read commands from the drive into host-memory bounce buffers (over
 * the fabric, so the host link and the bridges count it), then a copy out of host memory; a write is
 * the reverse; FLUSH is an NVMe Flush (fsync of the drive's file); FUA is a write then a flush. TRIM
 * is advisory in NBD and the drive model has no deallocate, so it succeeds and changes nothing;
 * WRITE_ZEROES writes zeros.
 *
 * BLOCK_STATUS (`base:allocation`) is not the model's business: the drive model has no allocation
 * state, but its backing file does. The box that owns the file answers (extent-map.ts, over the box's
 * control socket); a box without one here (on another machine) leaves every range reported as data.
 *
 * Requests enter the model as events (`inject`), are cut into commands of at most BOUNCE_BYTES, and
 * wait for a bounce buffer and a command slot of their own budget (NBD_COMMANDS_PER_DEVICE per drive;
 * copy jobs keep their `depth` within the rest of the queue).
 */
import { DconnectError } from '../core/errors.js';
import { isSuccess, STATUS, statusEquals, statusName, type NvmeStatus } from '../devices/nvme/nvme-defs.js';
import type { BlockDevice } from '../host/dc/manager.js';
import type { BootedHost } from '../runtime/boot.js';
import { boxClient } from './control-client.js';
import type { Extent } from './extent-map.js';
import type { RealtimeScheduler } from './realtime-scheduler.js';

/** Bytes per bounce buffer, and so per NVMe command an NBD request is cut into. */
export const BOUNCE_BYTES = 1 << 20;
/** Bounce buffers per session (host memory allocated once): requests beyond wait their turn. */
export const BOUNCE_BUFFERS = 16;
/** NVMe commands NBD keeps in flight per drive at most; the rest of its queue is for copy jobs. */
export const NBD_COMMANDS_PER_DEVICE = 8;

const ZEROS = new Uint8Array(BOUNCE_BYTES);

export interface NbdExportInfo {
  name: string;
  sizeBytes: number;
  blockBytes: number;
  description: string;
}

/** A command's bytes: the pieces, in order, its bounce buffer is filled from (write) or into (read). */
type Op = { kind: 'read' | 'write'; dev: BlockDevice; offset: number; data: Uint8Array[]; done: (e: Error | null) => void } | { kind: 'flush'; dev: BlockDevice; done: (e: Error | null) => void };

/** One session's NBD I/O path: bounded bounce buffers and per-drive command budgets; all methods run inside model events. */
export class NbdIo {
  private readonly free: number[] = [];
  private readonly waiting: Op[] = [];
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly host: BootedHost<RealtimeScheduler>) {
    for (let i = 0; i < BOUNCE_BUFFERS; i++) this.free.push(host.allocator.alloc(BOUNCE_BYTES));
  }

  exports(): NbdExportInfo[] {
    return this.host.manager.blockDevices().map((d) => ({ name: d.name, sizeBytes: d.capacityBytes, blockBytes: d.blockBytes, description: `${d.model} ${d.serial} in ${d.box} slot ${d.slot}` }));
  }

  device(name: string): BlockDevice {
    const d = this.host.manager.blockDevices().find((b) => b.name === name);
    if (!d) throw new DconnectError('NO_SUCH_DEVICE', `no export '${name}'`);
    return d;
  }

  /** Reads [offset, offset + length) of a drive; `done` gets the bytes or an error. Each command's bytes go from its bounce buffer straight into the reply (one copy). */
  read(dev: BlockDevice, offset: number, length: number, done: (e: Error | null, data?: Uint8Array) => void): void {
    const out = Buffer.allocUnsafe(length); // every byte is written before it is handed on
    const bytes = new Uint8Array(out.buffer, out.byteOffset, length);
    this.split(dev, offset, length, 'read', (pos, n) => [bytes.subarray(pos, pos + n)], (e) => (e ? done(e) : done(null, bytes)));
  }

  /** Writes a payload given in pieces (views of the socket's chunks): each command's bytes are copied from them straight into its bounce buffer. */
  write(dev: BlockDevice, offset: number, data: readonly Uint8Array[], fua: boolean, done: (e: Error | null) => void): void {
    const length = data.reduce((n, d) => n + d.length, 0);
    this.split(dev, offset, length, 'write', (pos, n) => slices(data, pos, n), this.thenFlush(dev, fua, done));
  }

  /** Writes zeros (from one shared bounce-sized zero buffer: memory stays bounded however long the range). */
  zero(dev: BlockDevice, offset: number, length: number, fua: boolean, done: (e: Error | null) => void): void {
    this.split(dev, offset, length, 'write', (_pos, n) => [ZEROS.subarray(0, n)], this.thenFlush(dev, fua, done));
  }

  flush(dev: BlockDevice, done: (e: Error | null) => void): void {
    this.enqueue({ kind: 'flush', dev, done });
  }

  /** FUA: a write is acknowledged once a flush after it is done. */
  private thenFlush(dev: BlockDevice, fua: boolean, done: (e: Error | null) => void): (e: Error | null) => void {
    return (e) => (e || !fua ? done(e) : this.flush(dev, done));
  }

  /** Cuts a transfer into bounce-sized commands (`part` gives each one's bytes), all issued as buffers and slots allow, and awaited. */
  private split(dev: BlockDevice, offset: number, length: number, kind: 'read' | 'write', part: (pos: number, n: number) => Uint8Array[], done: (e: Error | null) => void): void {
    let pending = Math.ceil(length / BOUNCE_BYTES);
    if (pending === 0) return done(null);
    let failed = false;
    for (let pos = 0; pos < length; pos += BOUNCE_BYTES) {
      this.enqueue({
        kind,
        dev,
        offset: offset + pos,
        data: part(pos, Math.min(BOUNCE_BYTES, length - pos)),
        done: (e) => {
          if (failed) return;
          if (e) {
            failed = true;
            return done(e);
          }
          if (--pending === 0) done(null);
        },
      });
    }
  }

  private enqueue(op: Op): void {
    this.waiting.push(op);
    this.pump();
  }

  /** Starts every waiting op that has a buffer (reads and writes) and a command slot, in order per drive. */
  private pump(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const op = this.waiting[i];
      const busy = this.inFlight.get(op.dev.name) ?? 0;
      const needsBuffer = op.kind !== 'flush';
      if (busy >= NBD_COMMANDS_PER_DEVICE || op.dev.driver.freeSlots() === 0 || (needsBuffer && this.free.length === 0)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.inFlight.set(op.dev.name, busy + 1);
      this.start(op);
    }
  }

  private start(op: Op): void {
    const d = op.dev;
    const release = (buf: number | null) => {
      this.inFlight.set(d.name, (this.inFlight.get(d.name) ?? 1) - 1);
      if (buf !== null) this.free.push(buf);
    };
    // A drive whose file's disk is full says Capacity Exceeded: the client gets ENOSPC (nbd-server's errnoOf), anything else EIO.
    const fail = (what: string, st: NvmeStatus) => Object.assign(new DconnectError('DEVICE_ERROR', `${what} of ${d.name} failed: ${statusName(st)}`), statusEquals(st, STATUS.CAPACITY_EXCEEDED) ? { code: 'NOSPC' } : {});
    if (op.kind === 'flush') {
      d.driver.submitFlush((st) => {
        release(null);
        op.done(isSuccess(st) ? null : fail('flush', st));
        this.pump();
      });
      return;
    }
    const buf = this.free.pop()!;
    const mem = this.host.fabric.rootComplex.memory;
    const n = op.data.reduce((k, d) => k + d.length, 0);
    if (op.kind === 'write') for (let at = buf, i = 0; i < op.data.length; at += op.data[i]!.length, i++) mem.write(at, op.data[i]!);
    const slba = op.offset / d.blockBytes;
    d.driver.submitIo(op.kind, slba, n / d.blockBytes, [{ address: buf, lengthBytes: n }], (st) => {
      if (isSuccess(st) && op.kind === 'read') for (let at = buf, i = 0; i < op.data.length; at += op.data[i]!.length, i++) mem.readInto(at, op.data[i]!);
      release(buf);
      op.done(isSuccess(st) ? null : fail(`${op.kind} of blocks ${slba}..${slba + n / d.blockBytes - 1}`, st));
      this.pump();
    });
  }
}

/** How long the host waits for a box's extents before reporting the range as data, ms. */
const EXTENTS_TIMEOUT_MS = 10_000;

/**
 * The extents of [offset, offset + length) of drive `drive` (`box0.slot1`) as its box knows them
 * (`POST /extents` on `socketPath`); all data when the box cannot be asked (data is always a true answer).
 */
export function boxExtents(socketPath: string, drive: string, offset: number, length: number): Promise<Extent[]> {
  return boxClient(socketPath).extents({ drive, offset, length }, { timeoutMs: EXTENTS_TIMEOUT_MS }).then(
    (r) => r.extents,
    () => [{ lengthBytes: length, state: 0 }],
  );
}

/** The views of [pos, pos + n) of the concatenation of `parts`, without copying. */
function slices(parts: readonly Uint8Array[], pos: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let base = 0;
  for (const p of parts) {
    const from = Math.max(pos, base);
    const to = Math.min(pos + n, base + p.length);
    if (from < to) out.push(p.subarray(from - base, to - base));
    base += p.length;
    if (base >= pos + n) break;
  }
  return out;
}
