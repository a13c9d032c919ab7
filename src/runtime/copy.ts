import type { Fidelity } from './fast/fast-forward.js';
import { runMoves, type GranularityInfo, type LinkPayload, type MovePair, type MoveResult, type MovesRequest, type MovesResult } from './moves.js';

export { bytesEqual, runMoves, validateCopy, type FidelityMode, type LinkPayload, type MovePair, type MoveResult, type MovesRequest, type MovesResult, type Via } from './moves.js';
export type { Fidelity } from './fast/fast-forward.js';

/** One move: a MovesRequest with one pair, its fields at the top level. */
export type CopyRequest = Omit<MovesRequest, 'pairs'> & MovePair;

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
  /** Which granularity produced it (at burst: burst size and stated error bound). */
  granularity: GranularityInfo;
  /** What relayed the data: the DC buffer chosen (by distance, then load), or host memory. */
  relay: string;
  /** The host that ran the move, when it is not the first (`host`, the field's absence): src, dst and relay are its names. */
  host?: string;
  /** Completion time of every chunk from the start of the move, ps (only with recordChunkTimes). */
  chunkDonePs?: number[];
  /** With `faults`: what the faulty cables did (MovesResult.faults). */
  faults?: MovesResult['faults'];
}


/**
 * The DC command as a library call for one move: builds the fabric, boots the host (`host`, default
 * the first; a move between ExpEther groups is refused with UNKNOWN_DEVICE naming both), fills the source
 * range with seeded data, moves it (directly through the DC buffer or through host memory), and
 * verifies the destination byte for byte against the source. (`runMoves` does several at once.)
 */
export function runCopy(req: CopyRequest): CopyResult {
  const { src, srcOffset, dst, dstOffset, ...rest } = req;
  const r = runMoves({ ...rest, pairs: [{ src, srcOffset, dst, dstOffset }] });
  return copyResultOf(r, r.moves[0]);
}

/**
 * The one-move result shape (fields in this order: the JSON `copy --json` prints) from a set's
 * result and one move of it, or a move standing for the whole set (experiments/jobs.ts).
 */
export function copyResultOf(r: MovesResult, m: MoveResult): CopyResult {
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
    granularity: r.granularity,
    relay: m.relay,
    ...(m.host !== undefined ? { host: m.host } : {}),
    ...(m.chunkDonePs ? { chunkDonePs: m.chunkDonePs } : {}),
    ...(r.faults ? { faults: r.faults } : {}),
  };
}
