import type { Granularity } from '../runtime/moves.js';
import type { TopLevelSpec } from 'vega-lite';
import type { Topology } from '../topology/schema.js';
import type { Limit } from './bottleneck.js';
import { CHART_CONFIG } from './charts.js';
import { fidelityLine, summarizeFidelity, type FidelitySummary } from './fidelity.js';
import { predictFig7, type Fig7Prediction } from './fig7-predict.js';
import { withLanes, type Job, type JobResult } from './jobs.js';
import type { Fidelity, FidelityMode } from '../runtime/copy.js';

/**
 * Fig. 7, beyond the paper: aggregate bandwidth against concurrent pairs (1, 2, 4, 8), direct and
 * conventional, host link x1 and x8, `sizeBytes` per pair, on the preset's box grown to 16 SSDs (the
 * paper's claim in section 3: with many SSDs, pairs move in parallel and Direct Connect's aggregate
 * grows while the conventional system's every byte crosses the host link twice). Each point carries
 * the hand prediction (fig7-predict.ts, derived in docs/calibration.md) and the measured limit.
 */

export const FIG7_PAIRS = [1, 2, 4, 8] as const;
const FIG7_KEYS = [1, 8].flatMap((hostLanes) => (['direct', 'conventional'] as const).flatMap((mode) => FIG7_PAIRS.map((pairs) => ({ hostLanes, mode, pairs }))));
/** Jobs in Fig. 7 (results are assembled in FIG7_KEYS' order). */
export const FIG7_JOBS = FIG7_KEYS.length;

export interface Fig7Point {
  hostLanes: number;
  mode: 'direct' | 'conventional';
  pairs: number;
  /** All pairs' bytes over the time until the last move ended, MB/s. */
  mbPerSec: number;
  perPairMbPerSec: number;
  predicted: Fig7Prediction;
  limit: Limit;
  fidelity: Fidelity;
}

/** The preset's first box with 16 SSDs (like its own first SSD slot) and its DC buffers, alone; a topology with 16 SSDs already is used as it is. */
export function fig7Topology(t: Topology): Topology {
  const ssds = t.boxes.flatMap((b) => b.slots.filter((s) => s.kind === 'ssd'));
  if (ssds.length >= 2 * FIG7_PAIRS[FIG7_PAIRS.length - 1]) return t;
  const box = t.boxes[0];
  const template = ssds[0];
  const buffers = t.boxes.flatMap((b) => b.slots.filter((s) => s.kind === 'dc-buffer'));
  const slots = [...Array.from({ length: 16 }, (_, i) => ({ ...template, serial: `FIG7-SSD-${String(i).padStart(2, '0')}` })), ...buffers];
  return { ...t, boxes: [{ name: box.name, slots }] };
}

export function fig7Jobs(o: { topology: Topology; sizeBytes: number; fidelity?: FidelityMode; granularity?: Granularity }): Job[] {
  const t = fig7Topology(o.topology);
  return FIG7_KEYS.map(({ hostLanes, mode, pairs }) => ({
    topology: withLanes(t, hostLanes),
    via: mode === 'direct' ? 'dc-buffer' : 'host',
    depth: t.copy.depth,
    sizeBytes: o.sizeBytes,
    seed: 1,
    fidelity: o.fidelity,
    granularity: o.granularity,
    pairs,
    label: `fig7 ${mode} x${hostLanes} ${pairs} pair${pairs === 1 ? '' : 's'}`,
  }));
}

export function assembleFig7(o: { topology: Topology }, results: JobResult[]): { points: Fig7Point[]; fidelity: FidelitySummary } {
  const t = fig7Topology(o.topology);
  return {
    points: FIG7_KEYS.map((k, i) => ({
      ...k,
      mbPerSec: results[i].mbPerSec,
      perPairMbPerSec: results[i].mbPerSec / k.pairs,
      predicted: predictFig7(t, k.mode, k.hostLanes, k.pairs),
      limit: results[i].limit,
      fidelity: results[i].fidelity,
    })),
    fidelity: summarizeFidelity(results.map((r) => r.fidelity)),
  };
}

/**
 * Each model point's value label, or none where it would overprint another's: BELOW's labels go
 * below their points and the others' above, and on one side a value within 4% of the axis of one
 * already labelled at the same pairs is left to that one (249 for three series at 1 pair is one 249).
 */
/** Series labelled below their points: direct x1 meets direct x8 near the DC buffer's port limit, conventional x8 passes under direct x1 at 2 pairs. */
const BELOW = ['direct x1', 'conventional x8'];

function valueLabels(points: Fig7Point[], series: (p: Fig7Point) => string, order: string[]): Map<Fig7Point, string> {
  const top = Math.max(...points.flatMap((p) => [p.mbPerSec, p.predicted.mbPerSec]));
  const shown = new Map<string, number[]>();
  const labels = new Map<Fig7Point, string>();
  for (const p of [...points].sort((a, b) => order.indexOf(series(a)) - order.indexOf(series(b)))) {
    const key = `${p.pairs} ${BELOW.includes(series(p)) ? 'below' : 'above'}`;
    const near = shown.get(key) ?? [];
    if (near.some((v) => Math.abs(v - p.mbPerSec) < 0.04 * top)) continue;
    shown.set(key, [...near, p.mbPerSec]);
    labels.set(p, p.mbPerSec.toFixed(0));
  }
  return labels;
}

/** The dashed series: the smallest resource ceiling, computed by hand, which the model may not reach (a window binds): an upper bound. */
const CEILING = 'ceiling (upper bound)';

export function fig7Chart(r: { preset: string; sizeBytes: number; fig7?: { points: Fig7Point[]; fidelity: FidelitySummary } }, size: string): TopLevelSpec {
  const points = r.fig7!.points;
  const series = (p: Fig7Point) => `${p.mode} x${p.hostLanes}`;
  const order = ['direct x1', 'direct x8', 'conventional x1', 'conventional x8'];
  const labels = valueLabels(points, series, order);
  const values = points.flatMap((p) => [
    { pairs: p.pairs, series: series(p), source: 'model', mbPerSec: p.mbPerSec, label: labels.get(p) ?? '' },
    { pairs: p.pairs, series: series(p), source: CEILING, mbPerSec: p.predicted.mbPerSec, label: '' },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Fig. 7 (beyond the paper): aggregate bandwidth against concurrent pairs', subtitle: [`testbed ${r.preset}, box of 16 SSDs; ${size} per pair; dashed: the ceiling computed by hand from`, `the preset's parameters (an upper bound, not a prediction)`, fidelityLine(r.fig7!.fidelity)] },
    width: 460,
    height: 320,
    config: CHART_CONFIG,
    data: { values },
    encoding: {
      x: { field: 'pairs', type: 'quantitative', title: 'Concurrent source/destination pairs', scale: { type: 'log', base: 2, domain: [0.8, 10] }, axis: { values: [...FIG7_PAIRS], format: 'd' } },
      y: { field: 'mbPerSec', type: 'quantitative', title: 'Aggregate bandwidth (MB/s)' },
      color: { field: 'series', type: 'nominal', title: 'Mode, host link', sort: order, scale: { domain: order, range: ['#2f6db5', '#7fa7d9', '#e08a2c', '#f0bd85'] } },
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { strokeDash: { field: 'source', type: 'nominal', title: null, scale: { domain: ['model', CEILING], range: [[1, 0], [5, 4]] }, legend: { labelLimit: 240 } } } },
      { transform: [{ filter: "datum.source === 'model'" }], mark: { type: 'point', filled: true, size: 60 } },
      // Labels above or below their points (BELOW), so series that meet never overprint (valueLabels).
      { transform: [{ filter: { not: { field: 'series', oneOf: BELOW } } }, { filter: "datum.source === 'model'" }], mark: { type: 'text', dy: -10, fontSize: 10 }, encoding: { text: { field: 'label' } } },
      { transform: [{ filter: { field: 'series', oneOf: BELOW } }, { filter: "datum.source === 'model'" }], mark: { type: 'text', dy: 14, fontSize: 10 }, encoding: { text: { field: 'label' } } },
    ],
  } as TopLevelSpec;
}
