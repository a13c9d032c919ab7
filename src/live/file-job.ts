/**
 * A live file copy job (issue 23 items 3 and 4): `copy --live sda:/data sdb:/backup`, run by the host
 * node on its booted fabric in the crash-safe order of host/fs/file-copy.ts, each step made durable
 * before the next and recorded in the job, so `copy --resume` redoes only what may be lost:
 *
 * 1. Reserve: mount both file systems over the fabric (NVMe commands through the host's driver and a
 *    bounce buffer in host memory), resolve the source, reserve every destination file as unwritten
 *    extents with size 0, sync. The plan (run list and reservations) goes into the job record.
 * 2. Move: the run list as one pipelined move (directly through the DC buffer, or through host
 *    memory), then an NVMe Flush of the destination; then the record's doneBytes says so. A resume
 *    before this point moves the whole list again: the reserved blocks belong to the job alone.
 * 3. Commit: mark the extents written and set the sizes, sync (`commitCopy`, which finds each file
 *    reserved or already committed, and refuses one changed by anyone else).
 * 4. Verify (unless --no-verify): every file read back through both file systems and compared.
 *
 * A crash (a box or the host killed) at any point leaves both file systems clean to e2fsck -fn: before
 * the commit, the destination files exist, preallocated and empty (reading zeros), never showing
 * another file's old data. Live code (the wall clock for its report), driving the model only from its
 * events. Cancelling takes effect between the steps.
 */
import { DconnectError } from '../core/errors.js';
import { PS_PER_S } from '../core/scheduler.js';
import { call, spawn, type Seq } from '../host/coroutine.js';
import { DcOperator } from '../host/dc/operator.js';
import type { BlockDevice } from '../host/dc/manager.js';
import { flushIo } from '../host/fs/block-io.js';
import { Ext4 } from '../host/fs/ext4.js';
import { commitCopy, moveRuns, reserveCopy, verifyFiles, type FileCheck } from '../host/fs/file-copy.js';
import { NvmeBlockIo } from '../host/fs/nvme-block-io.js';
import type { BootedHost } from '../runtime/boot.js';
import { BOUNCE_BYTES, mountOn } from '../runtime/files.js';
import type { FilePlan, FileResult, JobRecord } from './control-api.js';
import type { JobHooks, SlotPool } from './live-job.js';
import { JOB_QUEUE_RESERVE } from './live-job.js';
import { checkChunkFor, modeOf, pipelineOf, RelayPlan, type HostSlots, type RelaySlots } from '../runtime/engine/plan.js';
import type { RealtimeScheduler } from './realtime-scheduler.js';

/** A file copy's result (control-api.ts fileResultSchema: the job record and the API carry it as is). */
export type FileJobResult = FileResult;

export interface FileJobHooks extends JobHooks {
  /** The destination is reserved and synced: record the plan durably before any data moves. */
  planned(plan: FilePlan): void;
}

/** A file job's admission, the transfer engine's: devices, pipeline (beside NBD's commands and the flush), chunk, relay slots; the paths are checked when the job runs (they need the file systems). */
function planFileJob(host: BootedHost<RealtimeScheduler>, r: Pick<JobRecord, 'src' | 'dst' | 'depth' | 'chunkBytes' | 'via'>, hostSlots: HostSlots): { src: BlockDevice; dst: BlockDevice; relay: RelaySlots } {
  const src = host.manager.lookup(r.src);
  const dst = host.manager.lookup(r.dst);
  pipelineOf({ topology: host.fabric.topology, depth: r.depth, chunkBytes: r.chunkBytes }, JOB_QUEUE_RESERVE);
  checkChunkFor(r.chunkBytes, [src, dst]);
  return { src, dst, relay: new RelayPlan(host.manager, hostSlots).place(r.via, src, dst, r.depth, r.chunkBytes) };
}

/** Checks a file job's devices, depth, chunk and relay room; throws a DconnectError. */
export function checkFileJob(host: BootedHost<RealtimeScheduler>, r: Pick<JobRecord, 'src' | 'dst' | 'depth' | 'chunkBytes' | 'via'>): { src: BlockDevice; dst: BlockDevice } {
  const { src, dst } = planFileJob(host, r, () => []);
  return { src, dst };
}

/** Runs (or resumes) a file job; `done` or `fail` is called from a model event. Returns the boxes it waits on. */
export function runFileJob(host: BootedHost<RealtimeScheduler>, pool: SlotPool, rec: JobRecord, hooks: FileJobHooks, done: (r: FileJobResult | 'cancelled') => void, fail: (e: Error) => void): { boxes: string[] } {
  const spec = rec.files!;
  const sched = host.fabric.scheduler;
  const { src, dst, relay } = planFileJob(host, rec, (count, bytes) => pool.take(bytes, count));
  const chunk = rec.chunkBytes;
  // Bounce buffers past any slot a move of the same size takes (0..depth-1).
  const [bSrc, bDst] = pool.take(BOUNCE_BYTES, rec.depth + 2).slice(rec.depth);
  const mem = host.fabric.rootComplex.memory;
  const srcIo = new NvmeBlockIo(src, mem, bSrc, BOUNCE_BYTES);
  const dstIo = src === dst ? srcIo : new NvmeBlockIo(dst, mem, bDst, BOUNCE_BYTES);
  const ios = srcIo === dstIo ? [srcIo] : [srcIo, dstIo];
  const mountBoth = function* (): Seq<{ s: Ext4; d: Ext4 }> {
    const s = yield* mountOn(srcIo, src);
    return { s, d: src === dst ? s : yield* mountOn(dstIo, dst) };
  };
  const startMs = performance.now();
  const startPs = sched.now();
  const before = host.fabric.trace.snapshot();
  let movedBytes = 0;

  const sequence = function* (): Seq<FileJobResult | 'cancelled'> {
    let plan = spec.plan;
    if (!plan) {
      const { s, d } = yield* mountBoth();
      const { result, reservations } = yield* reserveCopy(s, d, spec.srcPath, spec.dstPath, { recursive: spec.recursive, force: spec.force, nowSec: spec.nowSec });
      plan = { runs: result.runs, reservations, files: result.files, directories: result.directories, skipped: result.skipped, bytes: result.bytes, dataBytes: result.dataBytes };
      hooks.planned(plan);
    }
    if (hooks.cancelled()) return 'cancelled';
    if (rec.doneBytes < plan.dataBytes || plan.dataBytes === 0) {
      if (plan.runs.length > 0) {
        const moved = yield* call<void | Error>(moveRuns(new DcOperator(sched), { src, dst, chunkBytes: chunk, depth: rec.depth, slots: relay.slots }, plan.runs, (n) => hooks.progress(n)));
        if (moved instanceof Error) throw new DconnectError((moved as DconnectError).code ?? 'DEVICE_ERROR', `${moved.message}; the destination files are reserved and empty`, `dconnect copy --resume ${rec.id} --live moves the data again and commits`);
        movedBytes = plan.dataBytes;
      }
      yield* flushIo(dstIo);
      hooks.segmentDone(plan.dataBytes);
    }
    if (hooks.cancelled()) return 'cancelled';
    const committed = yield* mountOn(dstIo, dst);
    yield* commitCopy(committed, plan.reservations);
    // The copy's time and host-link bytes: reserve (or not, on a resume), move and commit; not the verification.
    const moveEndMs = performance.now();
    const moveEndPs = sched.now();
    const afterMove = host.fabric.trace.snapshot();
    const metadata = { readBytes: ios.reduce((n, io) => n + io.counts.readBytes, 0), writtenBytes: ios.reduce((n, io) => n + io.counts.writtenBytes, 0), commands: ios.reduce((n, io) => n + io.counts.reads + io.counts.writes, 0) };
    let checks: FileCheck[] = [];
    if (rec.verify !== false) {
      hooks.verifying();
      const { s, d } = yield* mountBoth();
      checks = yield* verifyFiles(s, d, plan.files);
    }
    const wall = (moveEndMs - startMs) / 1000;
    const sim = (moveEndPs - startPs) / PS_PER_S;
    const delta = (n: string, k: string) => (afterMove[n]?.[k] ?? 0) - (before[n]?.[k] ?? 0);
    return {
      mode: modeOf(rec.via),
      relay: relay.name,
      files: plan.files.length,
      directories: plan.directories,
      bytes: plan.bytes,
      dataBytes: plan.dataBytes,
      runs: plan.runs.length,
      movedBytes,
      wallSeconds: wall,
      simulatedSeconds: sim,
      mbPerSecWall: wall > 0 ? plan.bytes / wall / 1e6 : 0,
      mbPerSecSimulated: sim > 0 ? plan.bytes / sim / 1e6 : 0,
      metadata,
      verified: rec.verify === false ? null : checks.every((c) => c.verified),
      checks: checks.filter((c) => !c.verified),
      hostLink: { upstreamPayloadBytes: delta('hostLink.upstream', 'payloadBytes'), downstreamPayloadBytes: delta('hostLink.downstream', 'payloadBytes') },
    };
  };
  spawn(sequence(), done, (e) => fail(e as Error));
  return { boxes: [...new Set([src.box, dst.box, ...(relay.box ? [relay.box] : [])])] };
}
