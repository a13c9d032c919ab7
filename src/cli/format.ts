import { granularityLine } from '../experiments/fidelity.js';
import type { GranularityInfo } from '../runtime/moves.js';
import { formatBytes, formatSizeExact, formatTimePs } from '../core/units.js';
import type { CopyResult, Fidelity, LinkPayload, MovesResult } from '../runtime/copy.js';
import { tagOf } from '../experiments/fidelity.js';
import type { NicMoveResult } from '../runtime/nic-moves.js';
import type { FaultReport } from '../runtime/faults.js';

/** Columns padded to their widest cell (the header's included), two spaces apart, one row a line. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** Drives are sold in decimal units (the paper's "256 GB"); memory in binary ones (formatBytes). */
export { driveCapacity } from '../core/units.js';

/** A move's end as the command line takes it: `sda:1GiB`, not `sda:1073741824`. */
export const end = (device: string, offsetBytes: number): string => `${device}:${formatSizeExact(offsetBytes)}`;

/** The host link's payload each way: what the paper's PCIe analyzer showed. */
export function hostLinkLines(h: LinkPayload, movedBytes: number): string[] {
  const pct = (x: number) => `${((100 * x) / movedBytes).toFixed(3)}% of moved bytes`;
  return [
    `  host link   upstream ${formatBytes(h.upstreamPayloadBytes)} payload (${pct(h.upstreamPayloadBytes)}, ${(100 * h.upstreamUtilization).toFixed(1)}% busy)`,
    `              downstream ${formatBytes(h.downstreamPayloadBytes)} payload (${pct(h.downstreamPayloadBytes)}, ${(100 * h.downstreamUtilization).toFixed(1)}% busy)`,
  ];
}

/** How the numbers were obtained: a fast result is exact or carries its 99.7% interval. */
export function fidelityLines(f: Fidelity, granularity?: GranularityInfo): string[] {
  const unit = granularity && granularity.mode !== 'tlp' ? 'burst by burst' : 'TLP by TLP';
  return [`  fidelity    ${tagOf(f)}; ${f.detailedChunks} of ${f.totalChunks} chunks simulated ${unit}`, `              ${f.method}`];
}

export function formatCopy(r: CopyResult): string {
  const lines = [
    `${r.mode} move ${end(r.src, r.srcOffset)} -> ${end(r.dst, r.dstOffset)}, ${formatBytes(r.bytes)} in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight, run by ${r.host ?? 'host'}, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s (relayed by ${r.relay})`,
    `  verified    ${r.verified ? 'yes' : 'NO: destination differs from source'} (sha256 ${r.sha256.slice(0, 16)}...)`,
    ...hostLinkLines(r.hostLink, r.bytes),
    `  commands    ${r.commands.read} reads, ${r.commands.write} writes; ${r.events} events; seed ${r.seed}`,
    ...fidelityLines(r.fidelity, 'granularity' in r ? (r.granularity as GranularityInfo) : undefined),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** Several concurrent moves: one line per move, then the aggregate, the host link and the fidelity. */
export function formatMoves(r: MovesResult): string {
  const bytes = r.aggregate.bytes;
  const lines = [
    `${r.moves.length} ${r.moves[0].mode} moves at once, ${formatBytes(r.moves[0].bytes)} each in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight per move, run by ${[...new Set(r.moves.map((m) => m.host ?? 'host'))].join(' and ')}, host link x${r.hostLanes}`,
    ...r.moves.map(
      (m) =>
        `  ${`${end(m.src, m.srcOffset)} -> ${end(m.dst, m.dstOffset)}`.padEnd(24)} ${m.mbPerSec.toFixed(1).padStart(8)} MB/s  via ${m.relay}  ${m.verified ? 'verified' : 'NOT VERIFIED'} (sha256 ${m.sha256.slice(0, 16)}...)`,
    ),
    `  aggregate   ${r.aggregate.mbPerSec.toFixed(1)} MB/s (${formatBytes(bytes)} in ${formatTimePs(r.aggregate.simulatedSeconds * 1e12)} simulated, until the last move ended)`,
    ...hostLinkLines(r.hostLink, bytes),
    `  events      ${r.events}; seed ${r.seed}`,
    ...fidelityLines(r.fidelity, 'granularity' in r ? (r.granularity as GranularityInfo) : undefined),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** A move with a NIC (serve, ingest, pipeline): as a copy's, with the frames and the NIC. */
export function formatNicMove(r: NicMoveResult): string {
  const lines = [
    `${r.mode} ${r.kind} ${r.src.startsWith('net:') ? r.src : end(r.src, r.srcOffset)} -> ${r.dst.startsWith('net:') ? r.dst : end(r.dst, r.dstOffset)} through ${r.nic}, ${formatBytes(r.bytes)}${r.kind === 'pipeline' ? '' : ` in ${formatBytes(r.chunkBytes)} chunks, ${r.depth} commands in flight`}, host link x${r.hostLanes}`,
    `  time        ${formatTimePs(r.simulatedSeconds * 1e12)} simulated`,
    `  bandwidth   ${r.mbPerSec.toFixed(1)} MB/s (relayed by ${r.relay})`,
    `  verified    ${r.verified ? 'yes' : 'NO: the far end differs from the source'} (at the far end, byte for byte)`,
    ...hostLinkLines(r.hostLink, r.bytes),
    `  frames      ${r.frames} data frames; ${r.commands} drive commands; ${r.events} events; seed ${r.seed}`,
    ...fidelityLines(r.fidelity, 'granularity' in r ? (r.granularity as GranularityInfo) : undefined),
    ...granularityLines('granularity' in r ? (r.granularity as GranularityInfo) : undefined),
  ];
  return lines.join('\n');
}

/** The cables a capture holds, each with its frames when there are several: `host (80) and box0.slot2 (40)`. */
export function capturedOn(perLink: [string, number][]): string {
  if (perLink.length === 1) return perLink[0][0];
  const parts = perLink.map(([l, n]) => `${l} (${n})`);
  return `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

/** Which granularity produced a result: nothing at per-TLP (the reference), else the burst size and stated bound. */
export function granularityLines(g: GranularityInfo | undefined): string[] {
  if (!g || g.mode === 'tlp') return [];
  return [`  granularity ${granularityLine(g).replace(/^granularity: /, '')}`];
}

/** What the faulty cables did, as `copy --fault` prints it on stderr after a move. */
export function faultsLine(f: FaultReport): string {
  return `faults: ${f.lost} lost, ${f.down} lost while a link was down, ${f.corrupted} corrupted (dropped by the FCS), ${f.duplicated} duplicated, ${f.reordered} reordered, of ${f.frames} frames on faulty cables; ${f.overflowDrops} dropped by shrunk buffers`;
}
