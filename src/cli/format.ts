import { formatBytes, formatTimePs } from '../core/units.js';
import type { CopyResult } from '../host/dc/command.js';
import { tagOf } from '../experiments/fidelity.js';

export function formatCopy(r: CopyResult): string {
  const pct = (x: number) => `${((100 * x) / r.bytes).toFixed(3)}% of moved bytes`;
  const f = r.fidelity;
  const lines = [
    `${r.mode} move ${r.src}:${r.srcOffset} -> ${r.dst}:${r.dstOffset}, ${formatBytes(r.bytes)} in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s`,
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
