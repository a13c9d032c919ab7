import { granularityLine } from '../experiments/fidelity.js';
import type { GranularityInfo } from '../runtime/moves.js';
import { formatBytes, formatTimePs } from '../core/units.js';
import type { CopyResult, Fidelity, LinkPayload, MovesResult } from '../runtime/copy.js';
import { tagOf } from '../experiments/fidelity.js';
import type { NicMoveResult } from '../runtime/nic-moves.js';

/** The host link's payload each way: what the paper's PCIe analyzer showed. */
export function hostLinkLines(h: LinkPayload, movedBytes: number): string[] {
  const pct = (x: number) => `${((100 * x) / movedBytes).toFixed(3)}% of moved bytes`;
  return [
    `  host link   upstream ${formatBytes(h.upstreamPayloadBytes)} payload (${pct(h.upstreamPayloadBytes)}, ${(100 * h.upstreamUtilization).toFixed(1)}% busy)`,
    `              downstream ${formatBytes(h.downstreamPayloadBytes)} payload (${pct(h.downstreamPayloadBytes)}, ${(100 * h.downstreamUtilization).toFixed(1)}% busy)`,
  ];
}

/** How the numbers were obtained: a fast result is exact or carries its 99.7% interval. */
export function fidelityLines(f: Fidelity): string[] {
  return [`  fidelity    ${tagOf(f)}; ${f.detailedChunks} of ${f.totalChunks} chunks simulated TLP by TLP`, `              ${f.method}`];
}

export function formatCopy(r: CopyResult): string {
  const lines = [
    `${r.mode} move ${r.src}:${r.srcOffset} -> ${r.dst}:${r.dstOffset}, ${formatBytes(r.bytes)} in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s (relayed by ${r.relay})`,
    `  verified    ${r.verified ? 'yes' : 'NO: destination differs from source'} (sha256 ${r.sha256.slice(0, 16)}...)`,
    ...hostLinkLines(r.hostLink, r.bytes),
    `  commands    ${r.commands.read} reads, ${r.commands.write} writes; ${r.events} events; seed ${r.seed}`,
    ...fidelityLines(r.fidelity),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** Several concurrent moves: one line per move, then the aggregate, the host link and the fidelity. */
export function formatMoves(r: MovesResult): string {
  const bytes = r.aggregate.bytes;
  const lines = [
    `${r.moves.length} ${r.moves[0].mode} moves at once, ${formatBytes(r.moves[0].bytes)} each in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight per move, host link x${r.hostLanes}`,
    ...r.moves.map(
      (m) =>
        `  ${`${m.src}:${m.srcOffset} -> ${m.dst}:${m.dstOffset}`.padEnd(24)} ${m.mbPerSec.toFixed(1).padStart(8)} MB/s  via ${m.relay}  ${m.verified ? 'verified' : 'NOT VERIFIED'} (sha256 ${m.sha256.slice(0, 16)}...)`,
    ),
    `  aggregate   ${r.aggregate.mbPerSec.toFixed(1)} MB/s (${formatBytes(bytes)} in ${formatTimePs(r.aggregate.simulatedSeconds * 1e12)} simulated, until the last move ended)`,
    ...hostLinkLines(r.hostLink, bytes),
    `  events      ${r.events}; seed ${r.seed}`,
    ...fidelityLines(r.fidelity),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** A move with a NIC (serve, ingest, pipeline): as a copy's, with the frames and the NIC. */
export function formatNicMove(r: NicMoveResult): string {
  const lines = [
    `${r.mode} ${r.kind} ${r.src}${r.src.startsWith('net:') ? '' : `:${r.srcOffset}`} -> ${r.dst}${r.dst.startsWith('net:') ? '' : `:${r.dstOffset}`} through ${r.nic}, ${formatBytes(r.bytes)}${r.kind === 'pipeline' ? '' : ` in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight`}, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s (relayed by ${r.relay})`,
    `  verified    ${r.verified ? 'yes' : 'NO: the far end differs from the source'} (at the far end, byte for byte)`,
    ...hostLinkLines(r.hostLink, r.bytes),
    `  frames      ${r.frames} data frames; ${r.commands} drive commands; ${r.events} events; seed ${r.seed}`,
    ...fidelityLines(r.fidelity),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** Which granularity produced a result: nothing at per-TLP (the reference), else the burst size and stated bound. */
function granularityLines(g: GranularityInfo | undefined): string[] {
  if (!g || g.mode === 'tlp') return [];
  return [granularityLine(g)];
}
