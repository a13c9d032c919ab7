import { DconnectError } from '../core/errors.js';
import { PS_PER_S } from '../core/scheduler.js';
import { spawn, type Op, type Seq } from '../host/coroutine.js';
import { DcOperator } from '../host/dc/operator.js';
import type { BlockDevice } from '../host/dc/manager.js';
import { runSync } from '../host/fs/block-io.js';
import { Ext4, type DirEntry } from '../host/fs/ext4.js';
import { copyFiles, moveRuns, verifyFiles, type CopyRun, type FileCheck, type FileCopyPlanEntry } from '../host/fs/file-copy.js';
import { isDir } from '../host/fs/inode.js';
import { NvmeBlockIo } from '../host/fs/nvme-block-io.js';
import { buildFabric } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';
import { boot, type BootedHost } from './boot.js';
import { linkPayload, traceDelta, type LinkPayload } from './counters.js';
import { loadImages, saveDrives, ssdOf, StoreBlockIo, storeOf, type DriveImage, type DriveSave } from './drive-images.js';
import { burstBytesOf, fullFidelity, granularityInfo, type Granularity, type GranularityInfo } from './moves.js';
import { checkChunkFor, modeOf, pipelineOf, RelayPlan, slotPerAllocation, type MoveVia } from './engine/plan.js';
import { deviceTable, runTransfer, TransferParts } from './engine/runner.js';
import type { Fidelity } from './fast/fast-forward.js';

/**
 * File copies in simulation (issue 23): the DC command's front end for `copy sda:/path sdb:/path`. The
 * host boots, the drives get their images, and one host sequence runs the file system work over the
 * fabric (every metadata block through the NVMe driver and host memory) while the DC operator moves
 * the run list as one pipelined move, directly through the DC buffer (or through host memory with --via host).
 * Then every copied file is read back through both file systems and compared, and drives are saved.
 */

/** Bounce buffer for the file system's metadata I/O, per drive (host memory). */
export const BOUNCE_BYTES = 128 << 10;

export interface FileCopyRequest {
  topology: Topology;
  src: string;
  srcPath: string;
  dst: string;
  dstPath: string;
  via: MoveVia;
  seed: number;
  depth?: number;
  chunkBytes?: number;
  recursive: boolean;
  force: boolean;
  /** The new inodes' ctime (the CLI's wall clock; the model reads none). */
  nowSec: number;
  images?: DriveImage[];
  saves?: DriveSave[];
  /** Logical blocks whose reads or writes fail (fault injection: a move that fails mid-copy). */
  mediaErrors?: { device: string; lba: number; op?: 'read' | 'write' }[];
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /**
   * 'tlp' (default) or 'burst' (docs/architecture.md "Two granularities"): the whole copy, metadata
   * and data, at that granularity. The fast fidelity's jump does not cover run lists: file copies
   * always run at the full fidelity.
   */
  granularity?: Granularity;
  /** Largest burst at burst granularity, bytes (runMoves' default; 4 KiB..1 MiB). */
  burstBytes?: number;
}

export interface FileCopyReport {
  mode: 'direct' | 'conventional';
  src: string;
  srcPath: string;
  dst: string;
  dstPath: string;
  files: number;
  directories: number;
  skipped: string[];
  /** Bytes of the files (their sizes). */
  bytes: number;
  /** Bytes the runs moved (whole blocks of written extents; holes move nothing). */
  dataBytes: number;
  runs: number;
  /** File system metadata through the host (bounce buffer): both drives, read and written. */
  metadata: { readBytes: number; writtenBytes: number; commands: number };
  /** Everything that crossed the host link during the copy, each direction (metadata, NVMe commands and completions, and the data on a conventional copy). */
  hostLink: LinkPayload;
  /** Host-link payload beyond the metadata: commands, completions, PRP lists, and the data when it goes through host memory. */
  hostLinkOtherBytes: number;
  relay: string;
  chunkBytes: number;
  depth: number;
  seed: number;
  simulatedSeconds: number;
  /** File bytes over simulated time, metadata work included. */
  mbPerSec: number;
  verified: boolean;
  checks: FileCheck[];
  list: FileCopyPlanEntry[];
  /** Every trace counter's change over the copy, the table of devices by slot and what was simulated: what the limit analysis reads (experiments/bottleneck.ts). */
  trace: Record<string, Record<string, number>>;
  devices: Record<string, string>;
  hostLanes: number;
  events: number;
  fidelity: Fidelity;
  granularity: GranularityInfo;
  /** The data move alone (the DC operator's run list, without the metadata before and after it): its simulated time and trace counters; null when nothing moved. */
  dataMove: { simulatedSeconds: number; trace: Record<string, Record<string, number>> } | null;
}

function bootWithImages(topology: Topology, seed: number, chunk: number, images: readonly DriveImage[], burstBytes = 0): BootedHost {
  const fabric = buildFabric(topology, { seed, burstBytes });
  const host = boot(fabric, { maxTransferBytes: Math.max(chunk, BOUNCE_BYTES) });
  loadImages(host, images);
  return host;
}

/** Runs a host sequence on the fabric's scheduler to its end (the transfer engine's runner). */
function runOnFabric<R>(host: BootedHost, seq: Seq<R>): R {
  const parts = new TransferParts<R>(host.fabric.scheduler);
  parts.add((done, fail) => spawn(seq, done, (e) => fail(e as Error)));
  runTransfer(host.fabric, parts);
  return parts.settled('the file system sequence')[0];
}

/** Mounts a drive's file system, its errors naming the drive (a drive given no --image has none). */
export function* mountOn(io: NvmeBlockIo, d: BlockDevice): Seq<Ext4> {
  try {
    return yield* Ext4.mount(io);
  } catch (e) {
    if (e instanceof DconnectError) throw new DconnectError(e.code, `${d.name}: ${e.message}`, e.hint);
    throw e;
  }
}

function fsIo(host: BootedHost, d: BlockDevice): NvmeBlockIo {
  return new NvmeBlockIo(d, host.host.rootComplex.memory, host.allocator.alloc(BOUNCE_BYTES), BOUNCE_BYTES);
}

/** A view of a drive's file system read straight from its store (verification, off the fabric). */
function storeFs(host: BootedHost, d: BlockDevice): Ext4 {
  return runSync(Ext4.mount(new StoreBlockIo(storeOf(host, d), d.capacityBytes, d.blockBytes)));
}

export function runFileCopy(req: FileCopyRequest): FileCopyReport {
  const t = req.topology;
  const { depth, chunk } = pipelineOf(req);
  const burstBytes = burstBytesOf({ granularity: req.granularity, fidelity: 'full', burstBytes: req.burstBytes });
  const host = bootWithImages(t, req.seed, chunk, req.images ?? [], burstBytes);
  const src = host.manager.lookup(req.src);
  const dst = host.manager.lookup(req.dst);
  checkChunkFor(chunk, [src, dst]);
  for (const m of req.mediaErrors ?? []) {
    const d = host.manager.lookup(m.device);
    const ssd = ssdOf(host, d);
    (m.op === 'write' ? ssd.badWriteBlocks : ssd.badBlocks).add(m.lba);
  }
  // Relay slots: `depth` chunks of the relay the planner ranks first for both drives, or of host memory.
  const { name: relay, slots } = new RelayPlan(host.manager, slotPerAllocation(host.allocator)).place(req.via, src, dst, depth, chunk);

  const srcIo = fsIo(host, src);
  const dstIo = src === dst ? srcIo : fsIo(host, dst);
  const operator = new DcOperator(host.fabric.scheduler);
  /**
   * The data move (`moveRuns`: the run list as one pipelined move), timed with its own counters so
   * the metadata work around it can be told apart (`dataMove`).
   */
  let movePhase: { startPs: number; endPs: number; before: ReturnType<typeof host.fabric.trace.snapshot>; trace?: Record<string, Record<string, number>> } | null = null;
  const move = (runs: CopyRun[]): Op<void | Error> => (resume) => {
    movePhase = { startPs: host.fabric.scheduler.now(), endPs: 0, before: host.fabric.trace.snapshot() };
    moveRuns(operator, { src, dst, chunkBytes: chunk, depth, slots }, runs, req.onProgress)((v) => {
      movePhase!.endPs = host.fabric.scheduler.now();
      movePhase!.trace = traceDelta(movePhase!.before, host.fabric.trace.snapshot());
      resume(v);
    });
  };

  const before = host.fabric.trace.snapshot();
  const eventsBefore = host.fabric.scheduler.eventsExecuted;
  const startPs = host.fabric.scheduler.now();
  const sequence = function* () {
    const srcFs = yield* mountOn(srcIo, src);
    const dstFs = src === dst ? srcFs : yield* mountOn(dstIo, dst);
    return yield* copyFiles(srcFs, dstFs, req.srcPath, req.dstPath, { recursive: req.recursive, force: req.force, nowSec: req.nowSec }, move);
  };
  let result;
  try {
    result = runOnFabric(host, sequence());
  } catch (e) {
    // A copy that failed after writing is saved too (what a crash leaves is what the tools should
    // judge); one refused before writing anything saves nothing, as any refused command.
    if (srcIo.counts.writtenBytes + dstIo.counts.writtenBytes > 0) saveDrives(host, req.saves ?? []);
    throw e;
  }
  saveDrives(host, req.saves ?? []);
  const endPs = host.fabric.scheduler.now();
  const trace = traceDelta(before, host.fabric.trace.snapshot());
  const hostLink = linkPayload(trace, host.host.link.name, endPs - startPs);
  const ios = srcIo === dstIo ? [srcIo] : [srcIo, dstIo];
  const metadata = { readBytes: ios.reduce((n, io) => n + io.counts.readBytes, 0), writtenBytes: ios.reduce((n, io) => n + io.counts.writtenBytes, 0), commands: ios.reduce((n, io) => n + io.counts.reads + io.counts.writes, 0) };
  const checks = runSync(verifyFiles(storeFs(host, src), src === dst ? storeFs(host, src) : storeFs(host, dst), result.files));
  const seconds = (endPs - startPs) / PS_PER_S;
  const devices = deviceTable([host]);
  const chunks = result.runs.reduce((n, r) => n + Math.ceil(r.lengthBytes / chunk), 0);
  return {
    mode: modeOf(req.via),
    src: src.name,
    srcPath: req.srcPath,
    dst: dst.name,
    dstPath: req.dstPath,
    files: result.files.length,
    directories: result.directories,
    skipped: result.skipped,
    bytes: result.bytes,
    dataBytes: result.dataBytes,
    runs: result.runs.length,
    metadata,
    hostLink,
    hostLinkOtherBytes: Math.max(0, hostLink.upstreamPayloadBytes + hostLink.downstreamPayloadBytes - metadata.readBytes - metadata.writtenBytes),
    relay,
    chunkBytes: chunk,
    depth,
    seed: req.seed,
    simulatedSeconds: seconds,
    mbPerSec: seconds > 0 ? result.bytes / seconds / 1e6 : 0,
    verified: checks.every((c) => c.verified),
    checks,
    list: result.files,
    trace,
    devices,
    hostLanes: host.host.config.link.lanes,
    events: host.fabric.scheduler.eventsExecuted - eventsBefore,
    fidelity: fullFidelity(burstBytes, chunks),
    granularity: granularityInfo(burstBytes),
    dataMove: dataMoveOf(movePhase),
  };
}

function dataMoveOf(p: { startPs: number; endPs: number; trace?: Record<string, Record<string, number>> } | null): FileCopyReport['dataMove'] {
  return p && p.trace ? { simulatedSeconds: (p.endPs - p.startPs) / PS_PER_S, trace: p.trace } : null;
}

export interface ListingEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  sizeBytes: number;
  /** Extents (file block, fs block, blocks, unwritten) of a regular file. */
  extents: { logical: number; physical: number; length: number; unwritten: boolean }[];
}

/** `dconnect ls sda:/dir`: the directory read through the host's file system code over the fabric. */
export function runListing(req: { topology: Topology; device: string; path: string; seed: number; images?: DriveImage[] }): { device: string; path: string; entries: ListingEntry[]; metadataBytes: number } {
  const host = bootWithImages(req.topology, req.seed, req.topology.copy.chunkBytes, req.images ?? []);
  const d = host.manager.lookup(req.device);
  const io = fsIo(host, d);
  const entries = runOnFabric(
    host,
    (function* () {
      const fs = yield* mountOn(io, d);
      const at = yield* fs.lookup(req.path);
      const list: DirEntry[] = isDir(at) ? yield* fs.readDir(at) : [{ name: req.path.split('/').pop() ?? req.path, ino: at.ino, fileType: 1 }];
      const out: ListingEntry[] = [];
      for (const e of list) {
        if (e.name === '.' || e.name === '..') continue;
        const i = yield* fs.inode(e.ino);
        const kind = (i.mode & 0xf000) === 0x8000 ? 'file' : (i.mode & 0xf000) === 0x4000 ? 'dir' : (i.mode & 0xf000) === 0xa000 ? 'symlink' : 'other';
        const extents = kind === 'file' ? (yield* fs.fileMap(i)).extents : [];
        out.push({ name: e.name, type: kind, sizeBytes: i.sizeBytes, extents });
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    })(),
  );
  return { device: d.name, path: req.path, entries, metadataBytes: io.counts.readBytes };
}
