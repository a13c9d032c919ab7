import type { TopLevelSpec } from 'vega-lite';
import type { Fidelity, FidelityMode } from '../runtime/copy.js';
import { modeOf, type MoveVia } from '../runtime/engine/plan.js';
import { overridesOn, resolveParamPath, type Override } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';
import { CHART_CONFIG } from './charts.js';
import { fidelityLine, granularityLine, summarizeFidelity, tagOf, type FidelitySummary } from './fidelity.js';
import { DEFAULT_BURST_BYTES, granularityInfo, type Granularity, type GranularityInfo } from '../runtime/moves.js';
import type { JobResult, Job } from './jobs.js';
import { runJobs, type PoolOptions } from './pool.js';
import { withParam, type SweepParam } from './sweep-params.js';

import { METRIC_TITLES, type Metric } from './metrics.js';
import { formatBytes } from '../core/units.js';

export { METRICS, type Metric } from './metrics.js';

export interface SweepRow {
  params: Record<string, number>;
  value: number;
  limit: string;
  fidelity: Fidelity;
}

export interface SweepResult {
  preset: string;
  via: MoveVia;
  sizeBytes: number;
  seed: number;
  metric: Metric;
  /** The `--set`s applied to the topology before the sweep (a swept parameter supersedes one on its path). */
  overrides: Override[];
  /** Over every point. */
  fidelity: FidelitySummary;
  granularity: GranularityInfo;
  params: { name: string; values: number[] }[];
  rows: SweepRow[];
}

/** Runs the preset at every combination of the parameters' values (the cartesian product). */
export interface SweepOptions {
  topology: Topology;
  params: SweepParam[];
  via: MoveVia;
  sizeBytes: number;
  seed: number;
  metric: Metric;
  /** Already applied to `topology`; recorded in the result. */
  overrides?: Override[];
  threads?: number;
  /** runCopy's default ('fast') when absent. */
  fidelity?: FidelityMode;
  /** 'tlp' when absent; burst runs every point at burst granularity (DEFAULT_BURST_BYTES) and full fidelity. */
  granularity?: Granularity;
  onStart?: PoolOptions['onStart'];
  onDone?: PoolOptions['onDone'];
  /** Cancels the run: its jobs' worker threads stop at once, and the promise rejects with DconnectError 'ABORTED'. */
  signal?: AbortSignal;
}

/** What fixes a sweep's jobs and result: everything but how it is run (threads, progress). */
export type SweepPlan = Omit<SweepOptions, 'threads' | 'onStart' | 'onDone' | 'signal'>;

/** Every point of the cartesian product, in the one canonical order (results, `--shard` and merge use it). */
function sweepPoints(o: SweepPlan): { t: Topology; params: Record<string, number> }[] {
  let combos: { t: Topology; params: Record<string, number> }[] = [{ t: o.topology, params: {} }];
  for (const p of o.params) combos = combos.flatMap((c) => p.values.map((v) => ({ t: withParam(c.t, p.path, v), params: { ...c.params, [p.name]: v } })));
  return combos;
}

/** The sweep's jobs, one per point, in canonical order. */
export function sweepJobs(o: SweepPlan): Job[] {
  const label = (params: Record<string, number>) => Object.entries(params).map(([k, v]) => `${k}=${v}`).join(' ');
  return sweepPoints(o).map((c) => ({ topology: c.t, via: o.via, depth: c.t.copy.depth, sizeBytes: o.sizeBytes, seed: o.seed, fidelity: o.fidelity, granularity: o.granularity, label: label(c.params) }));
}

export async function sweep(o: SweepOptions): Promise<SweepResult> {
  return assembleSweep(o, await runJobs(sweepJobs(o), { threads: o.threads, onStart: o.onStart, onDone: o.onDone, signal: o.signal }));
}

/** The sweep's result from the results of `sweepJobs(o)`, in that order (one run's, or merged shards'). */
export function assembleSweep(o: SweepPlan, results: JobResult[]): SweepResult {
  return {
    preset: o.topology.name,
    via: o.via,
    sizeBytes: o.sizeBytes,
    seed: o.seed,
    metric: o.metric,
    overrides: o.overrides ?? [],
    fidelity: summarizeFidelity(results.map((x) => x.fidelity)),
    granularity: granularityInfo(o.granularity === 'burst' ? DEFAULT_BURST_BYTES : 0),
    params: o.params.map((p) => ({ name: p.name, values: p.values })),
    rows: sweepPoints(o).map((c, i) => ({ params: c.params, value: results[i][o.metric], limit: results[i].limit.explanation, fidelity: results[i].fidelity })),
  };
}

export function sweepTable(r: SweepResult): string {
  const names = r.params.map((p) => p.name);
  const head = [...names, r.metric, 'method', 'limited by'];
  const rows = r.rows.map((row) => [...names.map((n) => String(row.params[n])), r.metric === 'simulatedSeconds' ? row.value.toFixed(6) : Number.isInteger(row.value) ? String(row.value) : row.value.toFixed(1), tagOf(row.fidelity), row.limit]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
  const lines = [head, ...rows].map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]) : c)).join('  '));
  return [fidelityLine(r.fidelity), ...(r.granularity?.mode === 'burst' ? [granularityLine(r.granularity), ...uncheckedLines(r)] : []), ...overridesLines(r), ...lines].join('\n');
}

/** What the burst equivalence matrix varies (test/integration/burst-equivalence.test.ts): the presets as shipped, at host link x1 and x8. */
const BURST_CHECKED_PATHS = new Set(['host.link.lanes']);

/**
 * At burst granularity, the parameters this sweep moves off the checked matrix, said once: the bound
 * is not checked there (one such topology is 7-10% off: docs/architecture.md "Two granularities").
 */
function uncheckedLines(r: SweepResult): string[] {
  const paths = [...r.params.map((p) => resolveParamPath(p.name).join('.')), ...r.overrides.map((o) => o.path)];
  const off = [...new Set(paths.filter((p) => !BURST_CHECKED_PATHS.has(p)))];
  if (off.length === 0) return [];
  return [`note: the burst bound is checked on the presets as shipped (host link x1, x8); this sweep changes ${off.join(', ')}: check a point with --granularity tlp`];
}

/** "overrides: --set a=1, --set b=2" when there are any, noting those a swept parameter supersedes. */
function overridesLines(r: SweepResult): string[] {
  if (r.overrides.length === 0) return [];
  const swept = (o: Override) => r.params.some((p) => overridesOn([o], resolveParamPath(p.name).join('.')).length > 0);
  return [`overrides: ${r.overrides.map((o) => `--set ${o.set}${swept(o) ? ' (superseded by --param)' : ''}`).join(', ')}`];
}

/** First parameter on the x axis; a second one, if any, as one line per value. */
export function sweepChart(r: SweepResult): TopLevelSpec {
  const [x, series] = r.params;
  const values = r.rows.map((row) => ({ x: row.params[x.name], series: series ? `${series.name} = ${valueText(series.name, row.params[series.name])}` : modeOf(r.via), value: row.value }));
  const xs = [...new Set(values.map((v) => v.x))].sort((a, b) => a - b);
  // Ticks at the swept values only, labelled as they were given (8, not 8.0; 64 KiB, not 65536).
  const labelExpr = xs.map((v) => `datum.value == ${v} ? '${valueText(x.name, v)}' : `).join('') + "''";
  const title = METRIC_TITLES[r.metric];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `${title.noun} against ${x.name}`, subtitle: [`preset ${r.preset}, ${modeOf(r.via)}${r.via === 'host' || r.via === 'dc-buffer' ? '' : ` (${r.via})`} move of ${formatBytes(r.sizeBytes)}, seed ${r.seed}`, fidelityLine(r.fidelity)] },
    width: 420,
    height: 280,
    config: CHART_CONFIG,
    data: { values },
    mark: { type: 'line', point: { filled: true, size: 60 } },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: x.name, scale: { zero: false }, axis: { values: xs, labelExpr } },
      y: { field: 'value', type: 'quantitative', title: title.axis },
      color: { field: 'series', type: 'nominal', title: series ? null : 'move' },
    },
  } as TopLevelSpec;
}

/** A swept value as a reader reads it: sizes (paths naming bytes, or a chunk) in binary units, else the number. */
function valueText(path: string, v: number): string {
  return /bytes$/i.test(path) || path === 'chunk' ? formatBytes(v) : String(v);
}
