import type { TopLevelSpec } from 'vega-lite';
import type { Fidelity, FidelityMode } from '../runtime/copy.js';
import type { Override } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';
import { CHART_CONFIG } from './charts.js';
import type { Limit } from './bottleneck.js';
import { fidelityLine, granularityLine, summarizeFidelity, type FidelitySummary } from './fidelity.js';
import { DEFAULT_BURST_BYTES, granularityInfo, type Granularity, type GranularityInfo } from '../runtime/moves.js';
import { runJobs, type PoolOptions } from './pool.js';
import { checkBounds, PAPER, paperTestbedDifferences, type BoundCheck } from './paper.js';
import { linkBytesPerSec, type PcieGeneration } from '../pcie/link-params.js';
import { withLanes, type Job, type JobResult } from './jobs.js';
import { assembleFig7, FIG7_JOBS, fig7Jobs, type Fig7Point } from './fig7.js';
import { assembleFig8, FIG8_JOBS, fig8Jobs, type Fig8Result } from './fig8.js';
import { assembleFiles, filesJobs, type FilesResult } from './files.js';
import { assembleRelays, relaysJobCount, relaysJobs, type RelaysResult } from './relays.js';

/** A chart's subtitle line naming burst granularity, when it produced the figure (per-TLP, the reference, goes unsaid). */
function burstLines(r: ReproResult): string[] {
  return r.granularity?.mode === 'burst' ? [granularityLine(r.granularity)] : []; // results saved before granularity existed have none
}

export interface Fig5Bar {
  hostLanes: number;
  mode: 'direct' | 'conventional';
  mbPerSec: number;
  stdevMbPerSec: number;
  runs: number;
  runsMbPerSec: number[];
  /** Null on a testbed that is not the paper's (`ReproResult.testbed`). */
  paperMbPerSec: number | null;
  limit: Limit;
  /** Over the bar's runs: the mean is within the largest error of any run. */
  fidelity: FidelitySummary;
  runsFidelity: Fidelity[];
}

export interface Fig6Point {
  commands: number;
  mbPerSec: number;
  /** Null on a testbed that is not the paper's (`ReproResult.testbed`). */
  paperMbPerSec: number | null;
  limit: Limit;
  fidelity: Fidelity;
}

export const FIGURES = ['fig5', 'fig6', 'fig7', 'fig8', 'relays', 'files'] as const;
export type Figure = (typeof FIGURES)[number];
/** What `repro` runs by default: the paper's evaluation (Fig. 7, Fig. 8 and files go beyond the paper and are asked for). */
export const PAPER_FIGURES: Figure[] = ['fig5', 'fig6'];
const wants = (o: { only?: Figure[] }, f: Figure) => (o.only ?? PAPER_FIGURES).includes(f);

export interface ReproResult {
  preset: string;
  sizeBytes: number;
  runs: number;
  /** The `--set`s applied to the topology before anything ran (every job's topology has them). */
  overrides: Override[];
  /** Over every move of the run. */
  fidelity: FidelitySummary;
  /** The run's granularity (Fig. 8's moves through a NIC run per TLP whatever it is). */
  granularity: GranularityInfo;
  fig5?: { bars: Fig5Bar[]; fidelity: FidelitySummary };
  fig6?: { hostLanes: number; points: Fig6Point[]; fidelity: FidelitySummary };
  fig7?: { points: Fig7Point[]; fidelity: FidelitySummary };
  /** On its own topology and size (fig8.ts: `fig8Topology`, `fig8SizeBytes`), which it records. */
  fig8?: Fig8Result;
  /** Beside Fig. 5: the relay in the DC buffer, the destination's CMB, host memory (relays.ts). */
  relays?: RelaysResult;
  /** File copies on generated trees (files.ts), on the run's topology, its file sizes up to `--max-file-size`. */
  files?: FilesResult;
  bounds: BoundCheck[];
  /**
   * Present only when the topology is not the paper's testbed (paper.ts `paperTestbedDifferences`,
   * e.g. the `modern` preset): the paper's values are not shown beside the model's and its bounds are
   * not checked, since they describe other hardware.
   */
  testbed?: { hostLinkGeneration: number; differsFromPaper: string[] };
}

export interface ReproOptions {
  topology: Topology;
  runs: number;
  sizeBytes: number;
  /** The figures to run; absent: the paper's, Fig. 5 and Fig. 6. Fig. 8 moves at most fig8.ts' FIG8_MAX_BYTES per bar. */
  only?: Figure[];
  /** Already applied to `topology`; recorded in the result and the report. */
  overrides?: Override[];
  threads?: number;
  /** runCopy's default ('fast') when absent. */
  fidelity?: FidelityMode;
  /** 'tlp' when absent; burst runs Fig. 5 to Fig. 7 and the file copies at burst granularity (DEFAULT_BURST_BYTES) and full fidelity. */
  granularity?: Granularity;
  /** The files figure's largest file (files.ts FILES_DEFAULT_MAX_BYTES when absent). */
  maxFileBytes?: number;
  onStart?: PoolOptions['onStart'];
  onDone?: PoolOptions['onDone'];
  /** Cancels the run: its jobs' worker threads stop at once, and the promise rejects with DconnectError 'ABORTED'. */
  signal?: AbortSignal;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n - 1); 0 for a single run. */
const stdev = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

/** What fixes a repro run's jobs and results: everything but how it is run (threads, progress). */
export type ReproPlan = Pick<ReproOptions, 'topology' | 'runs' | 'sizeBytes' | 'only' | 'fidelity' | 'granularity' | 'overrides' | 'maxFileBytes'>;

const FIG5_KEYS = [8, 1].flatMap((hostLanes) => (['direct', 'conventional'] as const).map((mode) => ({ hostLanes, mode })));

/**
 * The jobs of the paper's evaluation, in their one canonical order (results are assembled in it, and
 * `--shard` cuts it). Fig. 5: move `sizeBytes` from sda to sdb, direct and conventional, with the
 * server-side bridge at x8 and x1, at the preset's multiplicity (3), `runs` runs each; runs differ by
 * seed (flash latency jitter). Fig. 6: direct moves with 1..8 commands in flight (one run each, seed 1).
 */
export function reproJobs(o: ReproPlan): Job[] {
  const t = o.topology;
  const jobs: Job[] = [];
  if (wants(o, 'fig5')) {
    for (const { hostLanes, mode } of FIG5_KEYS) {
      for (let run = 1; run <= o.runs; run++) {
        jobs.push({ topology: withLanes(t, hostLanes), via: mode === 'direct' ? 'dc-buffer' : 'host', depth: t.copy.depth, sizeBytes: o.sizeBytes, seed: run, fidelity: o.fidelity, granularity: o.granularity, label: `fig5 ${mode} x${hostLanes} seed ${run}` });
      }
    }
  }
  if (wants(o, 'fig6')) {
    for (let commands = 1; commands <= 8; commands++) jobs.push({ topology: t, via: 'dc-buffer', depth: commands, sizeBytes: o.sizeBytes, seed: 1, fidelity: o.fidelity, granularity: o.granularity, label: `fig6 direct ${commands} command${commands === 1 ? '' : 's'} seed 1` });
  }
  if (wants(o, 'fig7')) jobs.push(...fig7Jobs(o));
  if (wants(o, 'fig8')) jobs.push(...fig8Jobs(o));
  if (wants(o, 'relays')) jobs.push(...relaysJobs(o));
  if (wants(o, 'files')) jobs.push(...filesJobs(o));
  return jobs;
}

/** The paper's evaluation: every job of `reproJobs`, run on worker threads, assembled. */
export async function reproduce(o: ReproOptions): Promise<ReproResult> {
  return assembleRepro(o, await runJobs(reproJobs(o), { threads: o.threads, onStart: o.onStart, onDone: o.onDone, signal: o.signal }));
}

/** The figures from the results of `reproJobs(o)`, in that order (one run's, or merged shards'). */
export function assembleRepro(o: ReproPlan, results: JobResult[]): ReproResult {
  const t = o.topology;
  const fig5Keys = wants(o, 'fig5') ? FIG5_KEYS : [];
  const fig6Start = fig5Keys.length * o.runs;
  const fig7Start = fig6Start + (wants(o, 'fig6') ? 8 : 0);
  const fig8Start = fig7Start + (wants(o, 'fig7') ? FIG7_JOBS : 0);
  const out: ReproResult = { preset: t.name, sizeBytes: o.sizeBytes, runs: o.runs, overrides: o.overrides ?? [], fidelity: summarizeFidelity(results.map((r) => r.fidelity)), granularity: granularityInfo(o.granularity === 'burst' ? DEFAULT_BURST_BYTES : 0), bounds: [] };
  const differsFromPaper = paperTestbedDifferences(t);
  const paperTestbed = differsFromPaper.length === 0;
  if (wants(o, 'fig5')) {
    out.fig5 = {
      bars: fig5Keys.map((k, i) => {
        const rs = results.slice(i * o.runs, (i + 1) * o.runs);
        const xs = rs.map((r) => r.mbPerSec);
        const paper = paperTestbed ? PAPER.fig5.find((p) => p.hostLanes === k.hostLanes && p.mode === k.mode)!.mbPerSec : null;
        return { ...k, mbPerSec: mean(xs), stdevMbPerSec: stdev(xs), runs: xs.length, runsMbPerSec: xs, paperMbPerSec: paper, limit: rs[0].limit, fidelity: summarizeFidelity(rs.map((r) => r.fidelity)), runsFidelity: rs.map((r) => r.fidelity) };
      }),
      fidelity: summarizeFidelity(results.slice(0, fig6Start).map((r) => r.fidelity)),
    };
  }
  if (wants(o, 'fig6')) {
    out.fig6 = {
      hostLanes: t.host.link.lanes,
      points: results.slice(fig6Start, fig7Start).map((r, i) => ({ commands: i + 1, mbPerSec: r.mbPerSec, paperMbPerSec: paperTestbed ? PAPER.fig6[i].mbPerSec : null, limit: r.limit, fidelity: r.fidelity })),
      fidelity: summarizeFidelity(results.slice(fig6Start, fig7Start).map((r) => r.fidelity)),
    };
  }
  if (wants(o, 'fig7')) out.fig7 = assembleFig7(o, results.slice(fig7Start, fig8Start));
  const relaysStart = fig8Start + (wants(o, 'fig8') ? FIG8_JOBS : 0);
  if (wants(o, 'fig8')) out.fig8 = assembleFig8(o, results.slice(fig8Start, relaysStart));
  const filesStart = relaysStart + (wants(o, 'relays') ? relaysJobCount(o.runs) : 0);
  if (wants(o, 'relays')) out.relays = assembleRelays(o, results.slice(relaysStart, filesStart));
  if (wants(o, 'files')) out.files = assembleFiles(o, results.slice(filesStart));
  if (paperTestbed) out.bounds = checkBounds(out.fig5?.bars ?? null, out.fig6?.points ?? null);
  else out.testbed = { hostLinkGeneration: t.host.link.generation, differsFromPaper };
  return out;
}

export function fig5Chart(r: ReproResult): TopLevelSpec {
  const bars = r.fig5!.bars;
  const gen = hostLinkGeneration(r);
  // Data rate after line coding: Gen1 2 Gb/s a lane (the paper's "x8 (16 Gb/s)"), Gen4 15.75.
  const setting = (lanes: number) => `x${lanes} (${Number(((linkBytesPerSec(gen, 1) * 8 * lanes) / 1e9).toPrecision(3))} Gb/s)`;
  const values = bars.map((b) => ({ setting: setting(b.hostLanes), mode: b.mode, mbPerSec: b.mbPerSec, lo: b.mbPerSec - b.stdevMbPerSec, hi: b.mbPerSec + b.stdevMbPerSec, paper: b.paperMbPerSec, label: b.mbPerSec.toFixed(0) }));
  const xEnc = { field: 'setting', type: 'nominal', title: `Server-side bridge PCIe link (Gen${gen})`, sort: [setting(8), setting(1)], axis: { labelAngle: 0 } } as const;
  const paperLayer = { mark: { type: 'point', shape: 'diamond', filled: true, size: 120, color: 'black' }, encoding: { y: { field: 'paper', type: 'quantitative', title: 'Bandwidth (MB/s)' }, shape: { datum: 'paper (Fig. 5)', type: 'nominal', title: null, scale: { range: ['diamond'] } } } };
  // The bars fill their offset bands exactly (the gap is the scale's padding), so every other layer,
  // placed at a band's centre, sits on its bar's centre: error bars, caps and the paper's diamonds.
  const xOffset = { field: 'mode', sort: ['direct', 'conventional'], scale: { paddingInner: 0.08 } } as const;
  const cap = (field: 'lo' | 'hi') => ({ mark: { type: 'tick', thickness: 1.5, size: 18, color: '#222' }, encoding: { y: { field, type: 'quantitative' } } });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `Fig. 5: moving ${fmtSize(r.sizeBytes)} between two SSDs`, subtitle: [`model: mean of ${r.runs} run${r.runs === 1 ? '' : 's'}, error bars ±1 sd`, r.testbed ? `testbed ${r.preset} (not the paper's); multiplicity 3` : `diamonds: the paper; multiplicity 3`, fidelityLine(r.fig5!.fidelity), ...burstLines(r)] },
    width: 420,
    height: 300,
    config: CHART_CONFIG,
    data: { values },
    encoding: { x: xEnc, xOffset },
    layer: [
      { mark: { type: 'bar' }, encoding: { y: { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)', scale: { domain: [0, yMax(values.flatMap((v) => [v.hi, v.paper ?? 0]))] } }, color: { field: 'mode', type: 'nominal', title: 'Model', sort: ['direct', 'conventional'], scale: { range: ['#2f6db5', '#e08a2c'] } } } },
      { mark: { type: 'rule', color: '#222', strokeWidth: 1.5 }, encoding: { y: { field: 'lo', type: 'quantitative', title: 'Bandwidth (MB/s)' }, y2: { field: 'hi' } } },
      cap('lo'),
      cap('hi'),
      { mark: { type: 'text', dy: 16, fontSize: 13, fontWeight: 'bold', color: 'white' }, encoding: { y: { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)' }, text: { field: 'label' } } },
      ...(r.testbed ? [] : [paperLayer]),
    ],
  } as TopLevelSpec;
}

export function fig6Chart(r: ReproResult): TopLevelSpec {
  // A label goes below its point where the line climbs (by 2% or more) to the next one, else above: never on the line.
  const pts = r.fig6!.points;
  const values = pts.flatMap((p, i) => [
    { commands: p.commands, mbPerSec: p.mbPerSec, source: 'model', label: p.mbPerSec.toFixed(0), below: i + 1 < pts.length && pts[i + 1].mbPerSec > 1.02 * p.mbPerSec },
    ...(p.paperMbPerSec === null ? [] : [{ commands: p.commands, mbPerSec: p.paperMbPerSec, source: 'paper (Fig. 6)', label: '' }]),
  ]);
  const domain = r.testbed ? ['model'] : ['model', 'paper (Fig. 6)'];
  const y = { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)', scale: { domain: [0, yMax(values.map((v) => v.mbPerSec))] } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Fig. 6: direct move against commands in flight', subtitle: [`I/O commands issued at once to source and destination`, `together; ${fmtSize(r.sizeBytes)} per point`, fidelityLine(r.fig6!.fidelity), ...burstLines(r)] },
    width: 420,
    height: 300,
    config: CHART_CONFIG,
    data: { values },
    encoding: {
      x: { field: 'commands', type: 'quantitative', title: 'I/O commands in flight (source + destination)', scale: { domain: [0.5, 8.5] }, axis: { values: [1, 2, 3, 4, 5, 6, 7, 8], format: 'd' } },
      y,
      color: { field: 'source', type: 'nominal', title: null, scale: { domain, range: ['#2f6db5', 'black'] } },
    },
    layer: [
      { transform: [{ filter: "datum.source === 'model'" }], mark: { type: 'line', strokeWidth: 2 } },
      { mark: { type: 'point', filled: true, size: 90, opacity: 1 }, encoding: { shape: { field: 'source', type: 'nominal', title: null, scale: { domain, range: ['circle', 'diamond'] } } } },
      { transform: [{ filter: "datum.source === 'model' && datum.below" }], mark: { type: 'text', dy: 16, fontSize: 11 }, encoding: { text: { field: 'label' } } },
      { transform: [{ filter: "datum.source === 'model' && !datum.below" }], mark: { type: 'text', dy: -14, fontSize: 11 }, encoding: { text: { field: 'label' } } },
    ],
  } as TopLevelSpec;
}

/** The host link's generation: the paper's Gen1 unless the testbed says otherwise. */
export const hostLinkGeneration = (r: ReproResult): PcieGeneration => (r.testbed?.hostLinkGeneration ?? 1) as PcieGeneration;

/** The bandwidth axis: 0..300 MB/s for the paper's scale, or up to the next half decade above the largest value. */
function yMax(values: number[]): number {
  const top = Math.max(...values);
  if (top <= 270) return 300;
  const step = 10 ** Math.floor(Math.log10(top)) / 2;
  return Math.ceil((top * 1.1) / step) * step;
}

export function fmtSize(bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`;
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`;
  return `${bytes} B`;
}
