import { formatBytes, formatTimePs } from '../core/units.js';
import type { CopyResult, MovesResult } from '../runtime/copy.js';
import { tagOf } from '../experiments/fidelity.js';

export function formatCopy(r: CopyResult): string {
  const pct = (x: number) => `${((100 * x) / r.bytes).toFixed(3)}% of moved bytes`;
  const f = r.fidelity;
  const lines = [
    `${r.mode} move ${r.src}:${r.srcOffset} -> ${r.dst}:${r.dstOffset}, ${formatBytes(r.bytes)} in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s (relayed by ${r.relay})`,
    `  verified    ${r.verified ? 'yes' : 'NO: destination differs from source'} (sha256 ${r.sha256.slice(0, 16)}...)`,
    `  host link   upstream ${formatBytes(r.hostLink.upstreamPayloadBytes)} payload (${pct(r.hostLink.upstreamPayloadBytes)}, ${(100 * r.hostLink.upstreamUtilization).toFixed(1)}% busy)`,
    `              downstream ${formatBytes(r.hostLink.downstreamPayloadBytes)} payload (${pct(r.hostLink.downstreamPayloadBytes)}, ${(100 * r.hostLink.downstreamUtilization).toFixed(1)}% busy)`,
    `  commands    ${r.commands.read} reads, ${r.commands.write} writes; ${r.events} events; seed ${r.seed}`,
    // How the numbers were obtained: a fast result is exact or carries its 99.7% interval.
    `  fidelity    ${tagOf(f)}; ${f.detailedChunks} of ${f.totalChunks} chunks simulated TLP by TLP`,
    `              ${f.method}`,
  ];
  return lines.join('\n');
}

/** Several concurrent moves: one line per move, then the aggregate, the host link and the fidelity. */
export function formatMoves(r: MovesResult): string {
  const f = r.fidelity;
  const bytes = r.aggregate.bytes;
  const pct = (x: number) => `${((100 * x) / bytes).toFixed(3)}% of moved bytes`;
  const lines = [
    `${r.moves.length} ${r.moves[0].mode} moves at once, ${formatBytes(r.moves[0].bytes)} each in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight per move, host link x${r.hostLanes}`,
    ...r.moves.map(
      (m) =>
        `  ${`${m.src}:${m.srcOffset} -> ${m.dst}:${m.dstOffset}`.padEnd(24)} ${m.mbPerSec.toFixed(1).padStart(8)} MB/s  via ${m.relay}  ${m.verified ? 'verified' : 'NOT VERIFIED'} (sha256 ${m.sha256.slice(0, 16)}...)`,
    ),
    `  aggregate   ${r.aggregate.mbPerSec.toFixed(1)} MB/s (${formatBytes(bytes)} in ${formatTimePs(r.aggregate.simulatedSeconds * 1e12)} simulated, until the last move ended)`,
    `  host link   upstream ${formatBytes(r.hostLink.upstreamPayloadBytes)} payload (${pct(r.hostLink.upstreamPayloadBytes)}, ${(100 * r.hostLink.upstreamUtilization).toFixed(1)}% busy)`,
    `              downstream ${formatBytes(r.hostLink.downstreamPayloadBytes)} payload (${pct(r.hostLink.downstreamPayloadBytes)}, ${(100 * r.hostLink.downstreamUtilization).toFixed(1)}% busy)`,
    `  events      ${r.events}; seed ${r.seed}`,
    `  fidelity    ${tagOf(f)}; ${f.detailedChunks} of ${f.totalChunks} chunks simulated TLP by TLP`,
    `              ${f.method}`,
  ];
  return lines.join('\n');
}
