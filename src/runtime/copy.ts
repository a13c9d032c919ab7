import type { Fidelity } from './fast/fast-forward.js';
import type { ConnectFn } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';
import { runMoves, type FidelityMode, type LinkPayload, type Via } from './moves.js';

export { bytesEqual, runMoves, validateCopy, type FidelityMode, type LinkPayload, type MovePair, type MoveResult, type MovesRequest, type MovesResult, type Via } from './moves.js';
export type { Fidelity } from './fast/fast-forward.js';

export interface CopyRequest {
  topology: Topology;
  src: string;
  srcOffset: number;
  dst: string;
  dstOffset: number;
  lengthBytes: number;
  /** Commands in flight over source and destination together; default the topology's copy.depth. */
  depth?: number;
  chunkBytes?: number;
  via: Via;
  seed: number;
  /** fast (default): jump the steady state, exactly where it repeats, else with a stated interval; full: every TLP. */
  fidelity?: FidelityMode;
  /** Hash the destination range (default true); experiments that never show the digest skip it. Verification is unaffected. */
  sha256?: boolean;
  /** Keep every chunk's completion time in the result (equivalence tests). */
  recordChunkTimes?: boolean;
  /** Progress callback: bytes written to the destination so far (called from the simulation). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** The channel every cable uses (see MovesRequest.connect). */
  connect?: ConnectFn;
  /** Logical blocks whose reads fail (see MovesRequest.mediaErrors). */
  mediaErrors?: { device: string; lba: number }[];
}

export interface CopyResult {
  mode: 'direct' | 'conventional';
  src: string;
  dst: string;
  srcOffset: number;
  dstOffset: number;
  bytes: number;
  chunkBytes: number;
  depth: number;
  hostLanes: number;
  seed: number;
  simulatedSeconds: number;
  mbPerSec: number;
  verified: boolean;
  sha256: string;
  hostLink: LinkPayload;
  commands: { read: number; write: number };
  events: number;
  /** Every trace counter at the end of the move (deltas over the move for links). */
  trace: Record<string, Record<string, number>>;
  /** How the numbers were obtained: per-TLP, an exact jump, or a statistical one with its interval. */
  fidelity: Fidelity;
  /** Which device sits in each slot, by the slot's trace prefix (`box0.slot2` -> `dcbuf0`). */
  devices: Record<string, string>;
  /** What relayed the data: the DC buffer chosen (by distance, then load), or host memory. */
  relay: string;
  /** Completion time of every chunk from the start of the move, ps (only with recordChunkTimes). */
  chunkDonePs?: number[];
}


/**
 * The DC command as a library call for one move: builds the fabric, boots the host, fills the source
 * range with seeded data, moves it (directly through the DC buffer or through host memory), and
 * verifies the destination byte for byte against the source. (`runMoves` does several at once.)
 */
export function runCopy(req: CopyRequest): CopyResult {
  const { src, srcOffset, dst, dstOffset, ...rest } = req;
  const r = runMoves({ ...rest, pairs: [{ src, srcOffset, dst, dstOffset }] });
  const m = r.moves[0];
  return {
    mode: m.mode,
    src: m.src,
    dst: m.dst,
    srcOffset: m.srcOffset,
    dstOffset: m.dstOffset,
    bytes: m.bytes,
    chunkBytes: r.chunkBytes,
    depth: r.depth,
    hostLanes: r.hostLanes,
    seed: r.seed,
    simulatedSeconds: m.simulatedSeconds,
    mbPerSec: m.mbPerSec,
    verified: m.verified,
    sha256: m.sha256,
    hostLink: r.hostLink,
    commands: m.commands,
    events: r.events,
    trace: r.trace,
    fidelity: m.fidelity,
    devices: r.devices,
    relay: m.relay,
    ...(m.chunkDonePs ? { chunkDonePs: m.chunkDonePs } : {}),
  };
}
