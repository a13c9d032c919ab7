/**
 * A live copy job, run by the host node on its booted fabric. Live code (it reads the wall clock for
 * its report and hashes with node:crypto), but it drives the model only from its events: every step
 * starts in a completion callback of the model.
 *
 * The range is moved in moves of MOVE_BYTES with the DC operator (directly through the box's DC
 * buffer, or through host memory). Whenever the bytes written without a gap from the start pass
 * another SEGMENT_BYTES, the destination drive is flushed (NVMe Flush: durable on its file before the
 * completion), and only then is that prefix recorded as done. So the job record's doneBytes is a
 * restart marker that never claims an unflushed byte: a resumed job starts there, and copying a range
 * twice is harmless. Segment k's flush runs while segment k+1 moves (the operator's pipeline never
 * drains for a flush; a flush covers every write completed before it, so it marks only the prefix
 * written when it was asked); the job ends, is cancelled or fails only once no flush is in flight. Then the source and destination ranges are read back
 * through the devices (NVMe reads into host memory, as any program would verify a copy) and compared
 * byte for byte, with a SHA-256 of each.
 */
import { createHash } from 'node:crypto';
import { DconnectError } from '../core/errors.js';
import { PS_PER_S } from '../core/scheduler.js';
import { isSuccess, statusName, type NvmeStatus } from '../devices/nvme/nvme-defs.js';
import type { BlockDevice } from '../host/dc/manager.js';
import { DcOperator, type MoveStats } from '../host/dc/operator.js';
import type { BootedHost } from '../runtime/boot.js';
import { TransferParts } from '../runtime/engine/runner.js';
import { modeOf, pipelineOf, RelayPlan, validateCopy, type HostSlots, type QueueReserve, type RelaySlots } from '../runtime/engine/plan.js';
import type { JobRecord, RangeResult } from './control-api.js';
import { NBD_COMMANDS_PER_DEVICE } from './nbd-backend.js';
import type { RealtimeScheduler } from './realtime-scheduler.js';

/** Bytes per segment: the granularity of the restart marker (a flush and a job-record write each; they overlap the move, so they cost no idle time). */
export const SEGMENT_BYTES = 8 << 20;
/**
 * Bytes per operator move: the granularity of cancelling. The operator's pipeline drains at the end
 * of each move (its last chunk is written alone), so a move is many chunks long.
 */
export const MOVE_BYTES = 128 << 20;
/** Flushes a job keeps in flight: segment k's, while k+1 moves (the NVMe queue holds it beside the move's commands; checkJob leaves it room). */
export const FLUSHES_IN_FLIGHT = 1;

/** What a client asks for, completed by the host: the job record's request fields (control-api.ts jobRecordSchema says what each means). */
export type JobRequest = Pick<JobRecord, 'src' | 'dst' | 'srcOffset' | 'dstOffset' | 'lengthBytes' | 'via' | 'chunkBytes' | 'depth' | 'verify' | 'capture' | 'files'>;

/** A range copy's result (control-api.ts rangeResultSchema: the job record and the API carry it as is). */
export type JobResult = RangeResult;

export interface JobHooks {
  /** Bytes written to the destination so far (not yet flushed). */
  progress(doneBytes: number): void;
  /** During verification: bytes of the range read back and compared so far (each call is progress, for the watchdog too). */
  verified(bytes: number): void;
  /** A segment is copied and flushed: record the restart marker durably. */
  segmentDone(doneBytes: number): void;
  verifying(): void;
  /** Asked at each segment boundary and each verification chunk: a cancelled job stops there. */
  cancelled(): boolean;
}

/** The NVMe queue entries a live job leaves to others: NBD's commands on the same drives and its own flush. */
export const JOB_QUEUE_RESERVE: QueueReserve = { entries: NBD_COMMANDS_PER_DEVICE + FLUSHES_IN_FLIGHT, what: `NBD's ${NBD_COMMANDS_PER_DEVICE} commands and the job's flush` };

/**
 * A job's admission, the transfer engine's (runtime/engine/plan.ts): its devices, its pipeline within
 * the NVMe queues beside NBD's commands and the flush, its ranges, and its relay slots (`depth` of
 * them, in the relay the planner ranks first, or from `hostSlots`).
 */
function planJob(host: BootedHost<RealtimeScheduler>, r: JobRequest, hostSlots: HostSlots): { src: BlockDevice; dst: BlockDevice; relay: RelaySlots } {
  const mgr = host.manager;
  const src = mgr.lookup(r.src);
  const dst = mgr.lookup(r.dst);
  pipelineOf({ topology: host.fabric.topology, depth: r.depth, chunkBytes: r.chunkBytes }, JOB_QUEUE_RESERVE);
  validateCopy(src, r.srcOffset, dst, r.dstOffset, r.lengthBytes, r.chunkBytes);
  return { src, dst, relay: new RelayPlan(mgr, hostSlots).place(r.via, src, dst, r.depth, r.chunkBytes) };
}

/** Checks a request against the booted host's devices (names, alignment, ranges, overlap, relay room); throws a DconnectError. */
export function checkJob(host: BootedHost<RealtimeScheduler>, r: JobRequest): { src: BlockDevice; dst: BlockDevice } {
  const { src, dst } = planJob(host, r, () => []);
  return { src, dst };
}

/** Host-memory slots, allocated once per session and size (the allocator never frees). */
export class SlotPool {
  private readonly pools = new Map<number, number[]>();
  constructor(private readonly host: BootedHost<RealtimeScheduler>) {}
  take(chunkBytes: number, count: number): number[] {
    let p = this.pools.get(chunkBytes);
    if (!p) this.pools.set(chunkBytes, (p = []));
    while (p.length < count) p.push(this.host.allocator.alloc(chunkBytes));
    return p.slice(0, count);
  }
}

/**
 * Runs (or resumes, from rec.doneBytes) a job; `done` or `fail` is called from a model event. Returns
 * the boxes the job waits on (its drives' and its relay's), for the host's watchdog.
 */
export function runJob(host: BootedHost<RealtimeScheduler>, pool: SlotPool, rec: JobRecord, hooks: JobHooks, done: (r: JobResult | 'cancelled') => void, fail: (e: Error) => void): { boxes: string[] } {
  const sched = host.fabric.scheduler;
  const { src, dst, relay } = planJob(host, rec, (count, bytes) => pool.take(bytes, count));
  const chunk = rec.chunkBytes;
  const op = new DcOperator(sched);
  const startMs = performance.now();
  const startPs = sched.now();
  const firstByte = rec.doneBytes;
  const before = host.fabric.trace.snapshot();
  const moveBytes = Math.max(chunk, Math.floor(MOVE_BYTES / chunk) * chunk);
  /** Where the next move starts (everything before it is written); `flushed`: the restart marker; `asked`: the end of the last flush asked for. */
  let pos = rec.doneBytes;
  let flushed = rec.doneBytes;
  let asked = rec.doneBytes;
  /** Bytes written so far (not yet flushed), as progress reports them. */
  let written = rec.doneBytes;
  let flushing = 0;
  /** A segment end whose flush waits for the one in flight (moves run ahead; only the latest end is kept). */
  let flushNext: number | null = null;
  /** What ends the move once no flush is in flight: null while segments still move. */
  let ending: (() => void) | null = null;
  let over = false;
  let moveEndMs = startMs;
  let moveEndPs = startPs;
  let afterMove = before;

  /** Ends the move with `then` now, or when the flush in flight completes (its marker recorded first). */
  const end = (then: () => void): void => {
    ending = then;
    if (flushing === 0 && flushNext === null && !over) {
      over = true;
      then();
    }
  };

  /** Flushes the destination after segment [.., segEnd) and records the marker when it is durable; one flush in flight, a later one waits. */
  const flushSegment = (segEnd: number): void => {
    asked = Math.max(asked, segEnd);
    if (flushing >= FLUSHES_IN_FLIGHT) return void (flushNext = segEnd);
    flushing++;
    dst.driver.submitFlush((st) => {
      flushing--;
      if (over) return;
      if (!ok(st, `flush of ${dst.name} after bytes [${rec.dstOffset + flushed}, ${rec.dstOffset + segEnd})`)) return;
      flushed = Math.max(flushed, segEnd);
      hooks.segmentDone(flushed);
      if (flushNext !== null) {
        const next = flushNext;
        flushNext = null;
        flushSegment(next);
      }
      if (ending) end(ending);
      else hooks.progress(written); // the marker trails what is written: progress goes on from there
    });
  };

  const segment = (): void => {
    if (pos >= rec.lengthBytes) return end(finishMove);
    if (hooks.cancelled()) return end(() => done('cancelled'));
    const len = Math.min(moveBytes, rec.lengthBytes - pos);
    // Chunks complete out of order (depth > 1): the prefix written without a gap is what a flush may mark.
    const chunkDone = new Uint8Array(Math.ceil(len / chunk));
    let prefix = 0;
    let chunksWritten = 0;
    // A segment is a transfer of one move (runtime/engine/runner.ts), run by the event loop: when it
    // ends, the next segment starts, or the job fails saying what is copied and flushed.
    const parts = new TransferParts<MoveStats>(sched, (p) => {
      const e = p.failure;
      if (e) return end(() => fail(new DconnectError((e as DconnectError).code ?? 'DEVICE_ERROR', `${e.message}; bytes [0, ${flushed}) of the range are copied and flushed`, `dconnect copy --resume ${rec.id} --live continues from byte ${flushed}`)));
      pos += len;
      if (pos > asked) flushSegment(pos);
      segment();
    });
    parts.add((moved, failed) =>
      op.move(
        {
          src,
          srcOffset: rec.srcOffset + pos,
          dst,
          dstOffset: rec.dstOffset + pos,
          lengthBytes: len,
          chunkBytes: chunk,
          depth: rec.depth,
          slots: relay.slots,
          observer: {
            chunkWritten: (c) => {
              chunksWritten++;
              written = pos + Math.min(len, chunksWritten * chunk);
              hooks.progress(written);
              chunkDone[c] = 1;
              while (prefix < chunkDone.length && chunkDone[prefix]) prefix++;
              const prefixEnd = pos + Math.min(len, prefix * chunk);
              if (prefixEnd - asked >= SEGMENT_BYTES) flushSegment(prefixEnd);
              return 0;
            },
          },
        },
        moved,
        failed,
      ),
    );
  };

  const ok = (st: NvmeStatus, what: string): boolean => {
    if (isSuccess(st)) return true;
    over = true;
    fail(new DconnectError('DEVICE_ERROR', `${what} failed: ${statusName(st)}`, `bytes [0, ${flushed}) of the range are copied and flushed`));
    return false;
  };

  const finishMove = (): void => {
    moveEndMs = performance.now();
    moveEndPs = sched.now();
    afterMove = host.fabric.trace.snapshot();
    hooks.verifying();
    verify();
  };

  /** Reads both ranges back through the devices, a chunk at a time each, into two host buffers. */
  const verify = (): void => {
    const [bufA, bufB] = pool.take(chunk, rec.depth + 2).slice(rec.depth, rec.depth + 2);
    const hs = createHash('sha256');
    const hd = createHash('sha256');
    const mem = host.fabric.rootComplex.memory;
    let off = 0;
    let same = true;
    const verifyStartMs = performance.now();
    const step = (): void => {
      // Cancelling a verification loses nothing: the copy is flushed, a resume verifies again.
      if (off < rec.lengthBytes && rec.verify !== false && hooks.cancelled()) return done('cancelled');
      if (off >= rec.lengthBytes || rec.verify === false) {
        const wall = (moveEndMs - startMs) / 1000;
        const sim = (moveEndPs - startPs) / PS_PER_S;
        const moved = rec.lengthBytes - firstByte;
        const delta = (n: string, k: string) => (afterMove[n]?.[k] ?? 0) - (before[n]?.[k] ?? 0);
        const srcSha256 = hs.digest('hex');
        const dstSha256 = hd.digest('hex');
        done({
          mode: modeOf(rec.via),
          relay: relay.name,
          bytes: rec.lengthBytes,
          movedBytes: moved,
          wallSeconds: wall,
          mbPerSecWall: wall > 0 ? moved / wall / 1e6 : 0,
          simulatedSeconds: sim,
          mbPerSecSimulated: sim > 0 ? moved / sim / 1e6 : 0,
          verified: rec.verify === false ? null : same && srcSha256 === dstSha256,
          verifySeconds: (performance.now() - verifyStartMs) / 1000,
          srcSha256: rec.verify === false ? '' : srcSha256,
          dstSha256: rec.verify === false ? '' : dstSha256,
          hostLink: { upstreamPayloadBytes: delta('hostLink.upstream', 'payloadBytes'), downstreamPayloadBytes: delta('hostLink.downstream', 'payloadBytes') },
        });
        return;
      }
      const n = Math.min(chunk, rec.lengthBytes - off);
      let waiting = 2;
      const read = (d: BlockDevice, at: number, into: number) =>
        d.driver.submitIo('read', at / d.blockBytes, n / d.blockBytes, [{ address: into, lengthBytes: n }], (st) => {
          if (!isSuccess(st)) return fail(new DconnectError('DEVICE_ERROR', `verification read of ${d.name} bytes [${at}, ${at + n}) failed: ${statusName(st)}`, `the copy itself finished; dconnect copy --resume ${rec.id} --live verifies again`));
          if (--waiting > 0) return;
          const a = mem.read(bufA, n);
          const b = mem.read(bufB, n);
          hs.update(a);
          hd.update(b);
          if (same && Buffer.compare(a, b) !== 0) same = false;
          off += n;
          hooks.verified(off);
          step();
        });
      read(src, rec.srcOffset + off, bufA);
      read(dst, rec.dstOffset + off, bufB);
    };
    step();
  };

  segment();
  return { boxes: [...new Set([src.box, dst.box, ...(relay.box ? [relay.box] : [])])] };
}
