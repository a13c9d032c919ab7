import { runCopy, type CopyResult, type Fidelity, type FidelityMode, type Via } from '../host/dc/command.js';
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

export function runJob(job: Job): JobResult {
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
