import type { TopLevelSpec } from 'vega-lite';
import { DconnectError } from '../core/errors.js';
import type { Granularity } from '../runtime/moves.js';
import type { Topology } from '../topology/schema.js';
import type { Limit, Utilization } from './bottleneck.js';
import { CHART_CONFIG } from './charts.js';
import { fidelityLine, summarizeFidelity, type FidelitySummary } from './fidelity.js';
import { withLanes, type Job, type JobResult } from './jobs.js';

/**
 * Files, beyond the paper (its section 4's other next step, issue 23): where a direct copy pays off
 * for files. Trees of equal files from 4 KiB up, copied `sda:/tree` -> `sdb:/tree` with -r, direct
 * (through the DC buffer) and conventional (through host memory), host link x8 and x1, on the run's
 * topology. Each point: the bandwidth of file bytes over the whole copy (metadata included), the
 * metadata's share of the host link's payload, and its limit (jobs.ts: the metadata's round trips when
 * they take most of the time, else the data move's own limit from bottleneck.ts). Images are generated
 * (runtime/file-trees.ts); every copy is verified file by file.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** File sizes, each 16x (then 4x) the last: the small ones metadata-bound, the large ones data-bound. */
export const FILE_SIZES = [4 * KiB, 64 * KiB, MiB, 16 * MiB, 64 * MiB, 256 * MiB, GiB];
/**
 * The largest file by default. File copies run at the full fidelity (the fast fidelity's jump does not
 * cover run lists; burst granularity saves events but little wall time here, the drives' stores being
 * the cost), about 7 s of one core per 128 MiB copied: up to 64 MiB the whole figure takes about
 * 50 s on two cores; `--max-file-size 1GiB` adds 256 MiB and 1 GiB files (about 8 minutes).
 */
export const FILES_DEFAULT_MAX_BYTES = 64 * MiB;
export const FILES_MAX_BYTES = GiB;
/** Files per tree: 8, fewer where 8 would pass 64 MiB (one file from 64 MiB). */
export const FILES_PER_TREE = 8;
const TREE_BYTES = 64 * MiB;
/** Each drive's file system: 16 groups, room for a 1 GiB file, the same layout (and metadata work) at every point. */
export const FILES_FS_BYTES = 2 * GiB;

const MODES = ['direct', 'conventional'] as const;
const LANES = [8, 1];

export interface FilesPlan {
  topology: Topology;
  /** The largest file size (FILES_DEFAULT_MAX_BYTES when absent). */
  maxFileBytes?: number;
  granularity?: Granularity;
}

export interface FilesPoint {
  fileBytes: number;
  files: number;
  hostLanes: number;
  mode: 'direct' | 'conventional';
  /** File bytes over the whole copy's simulated time, metadata work included (10^6 B/s). */
  mbPerSec: number;
  simulatedSeconds: number;
  /** Of it, the data move alone. */
  dataMoveSeconds: number;
  /** Payload crossing the host link, both directions. */
  hostLinkBytes: number;
  metadataBytes: number;
  metadataCommands: number;
  /** Metadata bytes over host-link payload bytes. */
  metadataShare: number;
  runs: number;
  limit: Limit;
  utilizations: Utilization[];
}

export interface FilesResult {
  preset: string;
  sizes: number[];
  fsBytes: number;
  points: FilesPoint[];
  /**
   * Per host link: the crossover, the smallest file size at which the direct copy has at least half the
   * advantage over the conventional one it has at the largest size (`ratio` there, `largeRatio` at the
   * largest); null where direct is not FILES_AHEAD ahead even at the largest size.
   */
  crossover: { hostLanes: number; fileBytes: number | null; ratio: number | null; largeRatio: number }[];
  /** The smallest file size whose direct copy (host link x1) spends at least half its time moving data rather than on metadata; null if none. */
  dataBoundFrom: number | null;
  fidelity: FidelitySummary;
}

/** "Ahead" means at least this much faster (smaller differences are the DC buffer's extra hop and noise). */
export const FILES_AHEAD = 0.05;

/** The sizes a run covers: FILE_SIZES up to `max`, which must lie in 4 KiB..1 GiB. */
export function filesSizes(max = FILES_DEFAULT_MAX_BYTES): number[] {
  if (!Number.isSafeInteger(max) || max < FILE_SIZES[0] || max > FILES_MAX_BYTES) throw new DconnectError('BAD_OPTION', `--max-file-size ${max} is outside 4KiB..1GiB`, 'use e.g. --max-file-size 64MiB (the default) or 1GiB');
  return FILE_SIZES.filter((s) => s <= max);
}

export const filesPerTree = (fileBytes: number) => Math.max(1, Math.min(FILES_PER_TREE, Math.floor(TREE_BYTES / fileBytes)));

const keysOf = (o: FilesPlan) => LANES.flatMap((hostLanes) => MODES.flatMap((mode) => filesSizes(o.maxFileBytes).map((fileBytes) => ({ hostLanes, mode, fileBytes }))));

/** The number of jobs `filesJobs` makes (results are assembled in its order). */
export const filesJobCount = (o: FilesPlan) => keysOf(o).length;

/** Host link x8, then x1; direct, then conventional; sizes ascending. Seed 1 each. */
export function filesJobs(o: FilesPlan): Job[] {
  const t = o.topology;
  return keysOf(o).map(({ hostLanes, mode, fileBytes }) => ({
    topology: withLanes(t, hostLanes),
    via: mode === 'direct' ? 'dc-buffer' : 'host',
    depth: t.copy.depth,
    sizeBytes: fileBytes * filesPerTree(fileBytes),
    seed: 1,
    fidelity: 'full',
    granularity: o.granularity,
    files: { fileBytes, files: filesPerTree(fileBytes), fsBytes: FILES_FS_BYTES },
    label: `files ${mode} x${hostLanes} ${filesPerTree(fileBytes)} x ${sizeText(fileBytes)}`,
  }));
}

export function assembleFiles(o: FilesPlan, results: JobResult[]): FilesResult {
  const points: FilesPoint[] = keysOf(o).map((k, i) => {
    const r = results[i];
    const f = r.files!;
    const link = r.hostUpstreamPayloadBytes + r.hostDownstreamPayloadBytes;
    return { ...k, files: filesPerTree(k.fileBytes), mbPerSec: r.mbPerSec, simulatedSeconds: r.simulatedSeconds, dataMoveSeconds: f.dataMoveSeconds, hostLinkBytes: link, metadataBytes: f.metadataBytes, metadataCommands: f.metadataCommands, metadataShare: link > 0 ? f.metadataBytes / link : 0, runs: f.runs, limit: r.limit, utilizations: r.utilizations };
  });
  const sizes = filesSizes(o.maxFileBytes);
  const crossover = LANES.map((hostLanes) => {
    const ratioAt = (size: number) => {
      const at = (mode: string) => points.find((p) => p.hostLanes === hostLanes && p.mode === mode && p.fileBytes === size)!.mbPerSec;
      return at('direct') / at('conventional');
    };
    const largeRatio = ratioAt(sizes[sizes.length - 1]);
    const s = largeRatio >= 1 + FILES_AHEAD ? sizes.find((size) => ratioAt(size) - 1 >= (largeRatio - 1) / 2) : undefined;
    return { hostLanes, fileBytes: s ?? null, ratio: s === undefined ? null : ratioAt(s), largeRatio };
  });
  const direct = points.filter((p) => p.mode === 'direct' && p.hostLanes === LANES[LANES.length - 1]);
  const dataBoundFrom = direct.find((p) => p.dataMoveSeconds >= p.simulatedSeconds / 2)?.fileBytes ?? null;
  return { preset: o.topology.name, sizes, fsBytes: FILES_FS_BYTES, points, crossover, dataBoundFrom, fidelity: summarizeFidelity(results.map((r) => r.fidelity)) };
}

/** 4 KiB, 64 KiB, 1 MiB, 1 GiB. */
export function sizeText(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

/** The short name of a point's limit (the data move's `namedLimitOf`, or `metadata round trips`). */
export const filesLimitName = (p: FilesPoint) => p.limit.name ?? p.limit.resource;

/**
 * Bandwidth against file size (log scale), one line per mode and host link; under it, the metadata's
 * share of the host link's payload for the same points, so the two effects read off one x axis.
 */
export function filesChart(f: FilesResult): TopLevelSpec {
  const series = (p: FilesPoint) => `${p.mode} x${p.hostLanes}`;
  const order = LANES.flatMap((l) => MODES.map((m) => `${m} x${l}`));
  const colors = ['#2f6db5', '#e08a2c', '#2f6db5', '#e08a2c'];
  const dashes = [[1, 0], [1, 0], [6, 4], [6, 4]];
  const values = f.points.map((p) => ({ series: series(p), size: sizeText(p.fileBytes), fileBytes: p.fileBytes, mbPerSec: p.mbPerSec, share: 100 * p.metadataShare, limit: filesLimitName(p) }));
  const x = { field: 'fileBytes', type: 'quantitative', title: 'File size (log scale)', scale: { type: 'log', base: 2, domain: [f.sizes[0] / 1.4, f.sizes[f.sizes.length - 1] * 1.4] }, axis: { values: f.sizes, labelExpr: SIZE_LABEL, labelOverlap: false, labelFontSize: 11, grid: true } } as const;
  const color = { field: 'series', type: 'nominal', title: 'copy, host link', sort: order, scale: { domain: order, range: colors } } as const;
  const strokeDash = { field: 'series', type: 'nominal', title: 'copy, host link', sort: order, scale: { domain: order, range: dashes } } as const;
  const top = Math.max(...f.points.map((p) => p.mbPerSec));
  const cross = f.crossover.map((c) => crossoverText(c, f));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: 'Files (beyond the paper): copying trees of files, direct against conventional',
      subtitle: [`testbed ${f.preset}; ${FILES_PER_TREE} files per tree (fewer past ${sizeText(TREE_BYTES / FILES_PER_TREE)}: at most ${sizeText(TREE_BYTES)}, or one file);`, 'MB/s of file bytes over the whole copy, metadata work included;', cross.join('; '), fidelityLine(f.fidelity)],
    },
    config: { ...CHART_CONFIG, legend: { ...CHART_CONFIG.legend, symbolType: 'stroke', symbolStrokeWidth: 3, symbolSize: 500, columns: 4, columnPadding: 18 } },
    data: { values },
    vconcat: [
      {
        width: 540,
        height: 260,
        encoding: { x: { ...x, title: null }, y: { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)', scale: { domain: [0, Math.max(300, Math.ceil((top * 1.1) / 50) * 50)] } } },
        layer: [{ mark: { type: 'line', strokeWidth: 2.5, point: { filled: true, size: 60 } }, encoding: { color, strokeDash } }, ...plateauLabels(f)],
      },
      {
        width: 540,
        height: 130,
        encoding: { x, y: { field: 'share', type: 'quantitative', title: ['metadata share of', 'host-link bytes (%)', '(x8 and x1 alike)'], scale: { domain: [0, 100] } }, color, strokeDash },
        layer: [{ mark: { type: 'line', strokeWidth: 2.5, point: { filled: true, size: 60 } } }],
      },
    ],
    spacing: 14,
  } as TopLevelSpec;
}

/**
 * Names for the top panel's right end, where lines coincide: the series within 2% of the fastest
 * share one label above them; each other series gets its own below its end point.
 */
function plateauLabels(f: FilesResult): object[] {
  const last = f.sizes[f.sizes.length - 1];
  const ends = f.points.filter((p) => p.fileBytes === last);
  const top = Math.max(...ends.map((p) => p.mbPerSec));
  const name = (p: FilesPoint) => `${p.mode} x${p.hostLanes}`;
  const together = ends.filter((p) => p.mbPerSec >= 0.98 * top);
  const apart = ends.filter((p) => p.mbPerSec < 0.98 * top);
  const values = [{ fileBytes: last, mbPerSec: top, dy: -12, text: together.map(name).join(', ') }, ...apart.map((p) => ({ fileBytes: last, mbPerSec: p.mbPerSec, dy: 16, text: name(p) }))];
  return values.map((v) => ({ data: { values: [v] }, mark: { type: 'text', align: 'right', fontSize: 11, dy: v.dy, color: '#333' }, encoding: { x: { field: 'fileBytes', type: 'quantitative' }, y: { field: 'mbPerSec', type: 'quantitative' }, text: { field: 'text' } } }));
}

/** `x1: crossover at 64 KiB (1.53x; 1.86x at 64 MiB)`, or `x8: direct no faster (1.00x at 64 MiB)`. */
export function crossoverText(c: FilesResult['crossover'][number], f: Pick<FilesResult, 'sizes'>): string {
  const large = sizeText(f.sizes[f.sizes.length - 1]);
  return c.fileBytes === null ? `x${c.hostLanes}: direct no faster (${c.largeRatio.toFixed(2)}x at ${large})` : `x${c.hostLanes}: crossover at ${sizeText(c.fileBytes)} (direct ${c.ratio!.toFixed(2)}x conventional; ${c.largeRatio.toFixed(2)}x at ${large})`;
}

/** Axis labels for byte sizes on a log axis. */
const SIZE_LABEL = "datum.value >= 1073741824 ? datum.value / 1073741824 + ' GiB' : datum.value >= 1048576 ? datum.value / 1048576 + ' MiB' : datum.value / 1024 + ' KiB'";
