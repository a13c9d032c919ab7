import { copyResultOf, runCopy, runMoves, type CopyResult, type Fidelity, type FidelityMode, type MovesResult, type Via } from '../runtime/copy.js';
import { blockName } from '../runtime/boot.js';
import type { Topology } from '../topology/schema.js';
import { limitOf, utilizations, type Limit, type Utilization } from './bottleneck.js';

/** One simulated move: everything a worker needs, as plain data. */
export interface Job {
  topology: Topology;
  via: Via;
  depth: number;
  sizeBytes: number;
  seed: number;
  /** How the move is simulated; runCopy's default ('fast') when absent. */
  fidelity?: FidelityMode;
  /** What the job is, for progress lines: "fig5 direct x1 seed 3". */
  label?: string;
  /** Concurrent pairs (sda->sdb, sdc->sdd, ...), each moving sizeBytes; absent: the one move sda->sdb. */
  pairs?: number;
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
}

/** The topology with the server-side bridge's link at `lanes` (Fig. 5 and Fig. 7 vary it). */
export function withLanes(t: Topology, lanes: number): Topology {
  return { ...t, host: { ...t.host, link: { ...t.host.link, lanes } } };
}

export function runJob(job: Job): JobResult {
  if (job.pairs !== undefined) return runPairsJob(job, job.pairs);
  const r: CopyResult = runCopy({ topology: job.topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: job.sizeBytes, depth: job.depth, via: job.via, seed: job.seed, fidelity: job.fidelity, sha256: false });
  if (!r.verified) throw new Error(`copy did not verify (seed ${job.seed}): the model corrupted data`);
  return {
    mbPerSec: r.mbPerSec,
    simulatedSeconds: r.simulatedSeconds,
    verified: r.verified,
    hostUpstreamPayloadBytes: r.hostLink.upstreamPayloadBytes,
    hostDownstreamPayloadBytes: r.hostLink.downstreamPayloadBytes,
    events: r.events,
    limit: limitOf(r),
    utilizations: utilizations(r).slice(0, 6),
    fidelity: r.fidelity,
  };
}


function runPairsJob(job: Job, pairs: number): JobResult {
  const r = runMoves({
    topology: job.topology,
    pairs: Array.from({ length: pairs }, (_, i) => ({ src: blockName(2 * i), srcOffset: 0, dst: blockName(2 * i + 1), dstOffset: 0 })),
    lengthBytes: job.sizeBytes,
    depth: job.depth,
    via: job.via,
    seed: job.seed,
    fidelity: job.fidelity,
    sha256: false,
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
