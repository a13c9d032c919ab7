import { copyResultOf, runCopy, runMoves, type CopyResult, type Fidelity, type FidelityMode, type MovesResult } from '../runtime/copy.js';
import { granularityInfo, type Granularity, type GranularityInfo, type MoveVia } from '../runtime/moves.js';
import { blockName } from '../runtime/boot.js';
import { runNicMove, type NicMoveResult } from '../runtime/nic-moves.js';
import type { Topology } from '../topology/schema.js';
import type { TraceRecordingRequest } from '../runtime/trace-sampler.js';
import { limitOf, namedLimitOf, utilizations, type Limit, type LimitInput, type Utilization } from './bottleneck.js';
import { runFileCopy, type FileCopyReport } from '../runtime/files.js';
import { fileTreeImages, TREE_PATH, TREE_TIME_SEC } from '../runtime/file-trees.js';

/** One simulated move: everything a worker needs, as plain data. */
export interface Job {
  topology: Topology;
  /** Where the relay is (runtime/moves.ts `MoveVia`); a NIC move takes dc-buffer or host. */
  via: MoveVia;
  depth: number;
  sizeBytes: number;
  seed: number;
  /** How the move is simulated; runCopy's default ('fast') when absent. */
  fidelity?: FidelityMode;
  /** runMoves' granularity ('tlp' when absent); burst implies the full fidelity. A NIC move runs per TLP. */
  granularity?: Granularity;
  /** What the job is, for progress lines: "fig5 direct x1 seed 3". */
  label?: string;
  /** Concurrent pairs (sda->sdb, sdc->sdd, ...), each moving sizeBytes; absent: the one move sda->sdb. */
  pairs?: number;
  /**
   * A move through a NIC (runtime/nic-moves.ts) between these ends, a drive or `net:CLIENT`:
   * `sda` -> `net:client0` (serve), `net:client0` -> `sdb` (ingest), `net:client0` -> `net:client1`
   * (pipeline). Fig. 8 runs them at full fidelity: `fidelity` must be absent or 'full'.
   */
  nic?: { src: string; dst: string };
  /**
   * A file copy (runtime/files.ts): a tree of `files` files of `fileBytes` each, on generated ext4
   * images of `fsBytes` (runtime/file-trees.ts), copied sda:/tree -> sdb:/tree with -r. Full fidelity
   * only (the fast fidelity's jump does not cover run lists); `granularity` applies.
   */
  files?: { fileBytes: number; files: number; fsBytes: number };
}

export interface JobResult {
  mbPerSec: number;
  simulatedSeconds: number;
  verified: boolean;
  hostUpstreamPayloadBytes: number;
  hostDownstreamPayloadBytes: number;
  events: number;
  limit: Limit;
  utilizations: Utilization[];
  /** How the numbers were obtained (mode, exact or their 99.7% error, chunks simulated in detail). */
  fidelity: Fidelity;
  /** Which granularity produced them (at burst: the burst size and the stated bound on simulated time). */
  granularity: GranularityInfo;
  /** A file copy's own numbers (Job.files). */
  files?: FilesJobResult;
}

export interface FilesJobResult {
  /** Bytes of the files copied. */
  bytes: number;
  /** File-system metadata read and written through the host (both drives). */
  metadataBytes: number;
  metadataCommands: number;
  runs: number;
  /** Simulated seconds of the data move alone; the rest of the copy is metadata work. */
  dataMoveSeconds: number;
}

/** The topology with the server-side bridge's link at `lanes` (Fig. 5 and Fig. 7 vary it). */
export function withLanes(t: Topology, lanes: number): Topology {
  return { ...t, host: { ...t.host, link: { ...t.host.link, lanes } } };
}

/** Runs a job; `traceRecording` records it for a trace-event file (drive moves only; full fidelity). */
export function runJob(job: Job, traceRecording?: TraceRecordingRequest): JobResult {
  if (job.nic !== undefined) return runNicJob(job, job.nic);
  if (job.files !== undefined) return runFilesJob(job, job.files);
  if (job.pairs !== undefined) return runPairsJob(job, job.pairs, traceRecording);
  const r: CopyResult = runCopy({ topology: job.topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: job.sizeBytes, depth: job.depth, via: job.via, seed: job.seed, fidelity: job.fidelity, granularity: job.granularity, sha256: false, ...(traceRecording ? { traceRecording } : {}) });
  if (!r.verified) throw new Error(`copy did not verify (seed ${job.seed}): the model corrupted data`);
  return resultOf(r, limitOf(r), r);
}

/** A single move's job result (a copy's, a NIC move's or a file copy's), with its limit; the utilizations from `counters` (a file copy: the whole copy, metadata included). */
function resultOf(r: CopyResult | NicMoveResult | FileCopyReport, limit: Limit, counters: LimitInput): JobResult {
  return {
    mbPerSec: r.mbPerSec,
    simulatedSeconds: r.simulatedSeconds,
    verified: r.verified,
    hostUpstreamPayloadBytes: r.hostLink.upstreamPayloadBytes,
    hostDownstreamPayloadBytes: r.hostLink.downstreamPayloadBytes,
    events: r.events,
    limit,
    utilizations: utilizations(counters).slice(0, 6),
    fidelity: r.fidelity,
    granularity: 'granularity' in r ? r.granularity : granularityInfo(0),
  };
}

/**
 * A file copy of a generated tree. Its limit: the metadata's round trips when they take most of the
 * copy's time (the data move is the smaller part), else what limits the data move, from its own
 * counters (bottleneck.ts).
 */
function runFilesJob(job: Job, tree: NonNullable<Job['files']>): JobResult {
  if (job.fidelity !== undefined && job.fidelity !== 'full') throw new Error(`a file copy runs at full fidelity only, not ${job.fidelity}`);
  if (job.via !== 'dc-buffer' && job.via !== 'host') throw new Error(`a file copy relays through a DC buffer or host memory, not ${job.via}`);
  const r = runFileCopy({ topology: job.topology, src: 'sda', srcPath: TREE_PATH, dst: 'sdb', dstPath: TREE_PATH, via: job.via, depth: job.depth, seed: job.seed, recursive: true, force: false, nowSec: TREE_TIME_SEC, granularity: job.granularity, images: fileTreeImages({ ...tree, seed: job.seed }, 'sda', 'sdb') });
  if (!r.verified) throw new Error(`a file copy did not verify (seed ${job.seed}, ${tree.files} x ${tree.fileBytes} B): the model corrupted data`);
  const whole = { trace: r.trace, devices: r.devices, simulatedSeconds: r.simulatedSeconds, depth: r.depth, hostLanes: r.hostLanes, relay: r.relay };
  const metadataBytes = r.metadata.readBytes + r.metadata.writtenBytes;
  const dataMoveSeconds = r.dataMove?.simulatedSeconds ?? 0;
  return {
    ...resultOf(r, filesLimitOf(r, whole, dataMoveSeconds), whole),
    files: { bytes: r.bytes, metadataBytes, metadataCommands: r.metadata.commands, runs: r.runs, dataMoveSeconds },
  };
}

function filesLimitOf(r: FileCopyReport, whole: LimitInput, dataMoveSeconds: number): Limit {
  const ms = (s: number) => `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms`;
  const metadataSeconds = r.simulatedSeconds - dataMoveSeconds;
  if (r.dataMove === null || metadataSeconds >= dataMoveSeconds) {
    const busiest = utilizations(whole)[0] ?? { resource: 'host link', utilization: 0 };
    return {
      resource: busiest.resource,
      utilization: busiest.utilization,
      saturated: false,
      binds: 'latency',
      name: 'metadata round trips',
      explanation: `metadata round trips: ${r.metadata.commands} metadata commands, one at a time through the host's bounce buffer (mount, bitmaps, inodes, directories, reserve, commit, flushes), took ${ms(metadataSeconds)} of the copy's ${ms(r.simulatedSeconds)}; the data move ${ms(dataMoveSeconds)}`,
    };
  }
  const move = namedLimitOf({ ...whole, trace: r.dataMove.trace, simulatedSeconds: dataMoveSeconds });
  return { ...move, explanation: `data move (${ms(dataMoveSeconds)} of ${ms(r.simulatedSeconds)}): ${move.explanation}` };
}

/**
 * A move through a NIC. Unlike the drive moves, a far end that does not verify is reported
 * (`verified` false) rather than thrown, so the figure shows which bar failed; the limit carries its
 * short `name`.
 */
function runNicJob(job: Job, ends: { src: string; dst: string }): JobResult {
  if (job.fidelity !== undefined && job.fidelity !== 'full') throw new Error(`a NIC move runs at full fidelity only, not ${job.fidelity}`);
  if (job.via !== 'dc-buffer' && job.via !== 'host') throw new Error(`a NIC move relays through a DC buffer or host memory, not ${job.via}`);
  const r = runNicMove({ topology: job.topology, src: ends.src, dst: ends.dst, lengthBytes: job.sizeBytes, depth: job.depth, via: job.via, seed: job.seed });
  return resultOf(r, namedLimitOf(r), r);
}

function runPairsJob(job: Job, pairs: number, traceRecording?: TraceRecordingRequest): JobResult {
  const r = runMoves({
    topology: job.topology,
    pairs: Array.from({ length: pairs }, (_, i) => ({ src: blockName(2 * i), srcOffset: 0, dst: blockName(2 * i + 1), dstOffset: 0 })),
    lengthBytes: job.sizeBytes,
    depth: job.depth,
    via: job.via,
    seed: job.seed,
    fidelity: job.fidelity,
    granularity: job.granularity,
    sha256: false,
    ...(traceRecording ? { traceRecording } : {}),
  });
  if (!r.aggregate.verified) throw new Error(`a move did not verify (seed ${job.seed}, ${pairs} pairs): the model corrupted data`);
  const whole = asOneMove(r);
  return {
    mbPerSec: r.aggregate.mbPerSec,
    simulatedSeconds: r.aggregate.simulatedSeconds,
    verified: true,
    hostUpstreamPayloadBytes: r.hostLink.upstreamPayloadBytes,
    hostDownstreamPayloadBytes: r.hostLink.downstreamPayloadBytes,
    events: r.events,
    limit: limitOf(whole),
    utilizations: utilizations(whole).slice(0, 6),
    fidelity: r.fidelity,
    granularity: r.granularity,
  };
}

/** Several moves seen as one, for the limit analysis: all their bytes over the time until the last ended. */
function asOneMove(r: MovesResult): CopyResult {
  const sum = (k: 'read' | 'write') => r.moves.reduce((n, x) => n + x.commands[k], 0);
  return copyResultOf(r, {
    mode: r.moves[0].mode,
    src: r.moves.map((x) => x.src).join('+'),
    dst: r.moves.map((x) => x.dst).join('+'),
    srcOffset: 0,
    dstOffset: 0,
    bytes: r.aggregate.bytes,
    relay: r.moves[0].relay,
    simulatedSeconds: r.aggregate.simulatedSeconds,
    mbPerSec: r.aggregate.mbPerSec,
    verified: r.aggregate.verified,
    sha256: '',
    commands: { read: sum('read'), write: sum('write') },
    fidelity: r.fidelity,
  });
}
