/**
 * `copy --timeline FILE.png|svg`: per-link utilisation against simulated time, for papers and slides.
 * One row per link the paper's argument is about (the host link, the DC buffer's cable, each SSD's
 * link), one column per run (direct and conventional side by side when both are asked), the two
 * directions of each link as two lines. Drawn from the same samples as the trace-event file
 * (runtime/trace-series.ts) with the figures' chart pipeline (charts.ts).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { TraceRun } from '../runtime/trace-events.js';
import { linkDirections, utilisation, type LinkDirection } from '../runtime/trace-series.js';
import { CHART_CONFIG } from './charts.js';

/** Whether a link direction carries bytes toward the host (`upstream`) or toward the devices. */
function way(d: LinkDirection): 'upstream' | 'downstream' {
  if (d.kind === 'pcie') return d.direction as 'upstream' | 'downstream';
  const from = d.direction.split('->')[0];
  // Ethernet: a slot's bridge sends toward the switches (upstream), the host's bridge toward the devices;
  // a switch port sends the other way from the end it faces.
  if (/\.slot\d+$/.test(from)) return 'upstream';
  if (/Bridge$/.test(from)) return 'downstream';
  const to = d.direction.split('->')[1];
  return /\.slot\d+$/.test(to) ? 'downstream' : 'upstream';
}

/** The rows: the host's PCIe link, the DC buffer's cable, each SSD's PCIe link (in slot order). */
function rowsOf(run: TraceRun): { row: string; dirs: LinkDirection[] }[] {
  const all = linkDirections(run.samples[0]?.counters ?? {}, run.cables, run.devices);
  const rows: { row: string; dirs: LinkDirection[] }[] = [];
  const add = (row: string, pick: (d: LinkDirection) => boolean) => {
    const dirs = all.filter(pick);
    if (dirs.length > 0) rows.push({ row, dirs });
  };
  add('host link (PCIe)', (d) => d.kind === 'pcie' && d.link === 'hostLink');
  for (const [slot, name] of Object.entries(run.devices)) if (name.startsWith('dcbuf')) add(`${name}'s cable (Ethernet ${slot})`, (d) => d.kind === 'ethernet' && d.link === slot);
  for (const [slot, name] of Object.entries(run.devices)) if (/^sd[a-z]+$/.test(name)) add(`${name}'s link (PCIe ${slot})`, (d) => d.kind === 'pcie' && d.link === `${slot}.link`);
  return rows;
}

/** Windows drawn per run at most: neighbouring windows are merged (their counters are cumulative, so a merged window is exact). */
export const TIMELINE_WINDOWS = 240;
/**
 * Chunks per drawn window at least: a link's traffic comes in chunk-sized bursts, and a window shorter
 * than a few of them draws the beat between the two periods rather than the link's load.
 */
export const CHUNKS_PER_WINDOW = 4;
/** Windows drawn per run at least (a short move still gets a line). */
const MIN_WINDOWS = 20;

/** How many windows to draw of a run: TIMELINE_WINDOWS, fewer when the run has few chunks. */
export function windowsFor(run: TraceRun): number {
  const writes = run.commands.filter((c) => c.kind === 'write').length + run.droppedCommands / 2;
  return writes > 0 ? Math.max(MIN_WINDOWS, Math.min(TIMELINE_WINDOWS, Math.floor(writes / CHUNKS_PER_WINDOW))) : TIMELINE_WINDOWS;
}

/** Every k-th sample (and the last), so at most `max` windows remain. */
export function coarserSamples<T>(samples: T[], max: number): T[] {
  const k = Math.ceil((samples.length - 1) / max);
  if (k <= 1) return samples;
  const out = samples.filter((_, i) => i % k === 0);
  if ((samples.length - 1) % k !== 0) out.push(samples[samples.length - 1]);
  return out;
}

export function timelineChart(runs: TraceRun[], subtitle: string): TopLevelSpec {
  const values: { run: string; row: string; way: string; ms: number; utilisation: number }[] = [];
  const rowOrder: string[] = [];
  for (const run of runs) {
    const zero = run.samples[0]?.ps ?? 0;
    for (const { row, dirs } of rowsOf(run)) {
      if (!rowOrder.includes(row)) rowOrder.push(row);
      for (const d of dirs) {
        // A step line: each window's value from its start to its end.
        for (const w of utilisation(coarserSamples(run.samples, windowsFor(run)), d.source)) {
          for (const t of [w.startPs, w.endPs]) values.push({ run: run.label, row, way: way(d), ms: (t - zero) / 1e9, utilisation: w.value });
        }
      }
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'Link utilisation during the move (busy time per window)', subtitle: [subtitle, `windows: ${runs.map((r) => `${r.label} ${Math.min(r.samples.length - 1, windowsFor(r))}`).join(', ')} (${CHUNKS_PER_WINDOW}+ chunks each, at most ${TIMELINE_WINDOWS});`, 'the same samples as --trace-events'] },
    config: { ...CHART_CONFIG, header: { labelFontSize: 12, labelFontWeight: 'bold', labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top', labelLimit: 0 } },
    data: { values },
    facet: {
      row: { field: 'row', type: 'nominal', sort: rowOrder, title: null },
      column: { field: 'run', type: 'nominal', sort: runs.map((r) => r.label), title: null, header: { labelFontSize: 14 } },
    },
    spacing: { row: 14, column: 24 },
    spec: {
      width: 380,
      height: 80,
      mark: { type: 'line', strokeWidth: 1.2, interpolate: 'linear' },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: 'simulated time (ms)' },
        y: { field: 'utilisation', type: 'quantitative', title: 'busy', scale: { domain: [0, 1], clamp: true }, axis: { format: '%', tickCount: 3 } },
        color: { field: 'way', type: 'nominal', title: 'direction', sort: ['downstream', 'upstream'], scale: { domain: ['downstream', 'upstream'], range: ['#2f6db5', '#e08a2c'] }, legend: { labelLimit: 0, labelExpr: "datum.label === 'upstream' ? 'upstream (toward the host)' : 'downstream (toward the devices)'" } },
      },
    },
  } as TopLevelSpec;
}
