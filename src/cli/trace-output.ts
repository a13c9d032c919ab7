import { writeFileSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import { parseTime } from '../core/units.js';
import { renderChart } from '../experiments/charts.js';
import { timelineChart } from '../experiments/timeline.js';
import { cableEnds } from '../runtime/capture.js';
import { traceFile, type TraceRun } from '../runtime/trace-events.js';
import { viewTopology } from '../runtime/view-topology.js';
import type { TraceRecording, TraceRecordingRequest } from '../runtime/trace-sampler.js';
import type { Topology } from '../topology/schema.js';
import { checkOutputFile } from './output-paths.js';

/** The views a command was asked for (`--trace-events`, `--timeline`, `--trace-window`), checked before any work. */
export interface ViewOutputs {
  traceEvents?: string;
  timeline?: string;
  /** The first window, ps (absent: sized to the run). */
  firstWindowPs?: number;
}

/** Smallest `--trace-window`: below it a window holds less than one TLP on any link here. */
const MIN_WINDOW_PS = 10_000;

export function viewOutputsOf(o: { traceEvents?: string; timeline?: string; traceWindow?: string }): ViewOutputs | null {
  if (o.traceEvents === undefined && o.timeline === undefined) {
    if (o.traceWindow !== undefined) throw new DconnectError('BAD_OPTION', '--trace-window sets the window of --trace-events or --timeline, and neither is given', 'add --trace-events FILE.json (or --timeline FILE.png)');
    return null;
  }
  if (o.traceEvents !== undefined) checkOutputFile(o.traceEvents, '--trace-events');
  if (o.timeline !== undefined) {
    if (!/\.(png|svg)$/i.test(o.timeline)) throw new DconnectError('BAD_OPTION', `--timeline '${o.timeline}': the chart is written as PNG or SVG, by the file's extension`, 'name it e.g. timeline.png or timeline.svg');
    checkOutputFile(o.timeline, '--timeline');
  }
  let firstWindowPs: number | undefined;
  if (o.traceWindow !== undefined) {
    firstWindowPs = parseTime(o.traceWindow, '--trace-window');
    if (firstWindowPs < MIN_WINDOW_PS) throw new DconnectError('BAD_OPTION', `--trace-window ${o.traceWindow} is below 10ns`, 'use e.g. --trace-window 10us (the default sizes the window to the run: 2048 to 4096 windows)');
  }
  return { ...(o.traceEvents !== undefined ? { traceEvents: o.traceEvents } : {}), ...(o.timeline !== undefined ? { timeline: o.timeline } : {}), ...(firstWindowPs !== undefined ? { firstWindowPs } : {}) };
}

/** A recording request for one run; `runs` receives it labelled. */
export function recordInto(runs: TraceRun[], label: string, topology: Topology, v: ViewOutputs, extra?: TraceRecordingRequest['extra']): TraceRecordingRequest {
  return {
    ...(v.firstWindowPs !== undefined ? { firstWindowPs: v.firstWindowPs } : {}),
    ...(extra ? { extra } : {}),
    done: (r: TraceRecording) => runs.push(runOf(label, topology, r)),
  };
}

export function runOf(label: string, topology: Topology, r: TraceRecording): TraceRun {
  return { label, samples: r.samples, commands: r.commands, droppedCommands: r.droppedCommands, cables: cableEnds(topology), devices: r.devices, clock: 'simulated', topology: viewTopology(topology, r.devices) };
}

/** Writes the files asked for; returns a line per file for stderr. */
export async function writeViewOutputs(v: ViewOutputs, runs: TraceRun[], meta: Record<string, unknown>, subtitle: string): Promise<string[]> {
  const said: string[] = [];
  if (v.traceEvents !== undefined) {
    const file = traceFile(runs, { producer: 'dconnect', ...meta });
    writeFileSync(v.traceEvents, JSON.stringify(file) + '\n');
    const windows = runs.map((r) => `${r.label ? `${r.label}: ` : ''}${Math.max(0, r.samples.length - 1)} windows of ${windowText(r)}`).join('; ');
    const dropped = runs.reduce((n, r) => n + r.droppedCommands, 0);
    said.push(`trace events: ${file.traceEvents.length} events (${windows}${dropped > 0 ? `; ${dropped} commands past the limit left out` : ''}) in ${v.traceEvents}: open it at https://ui.perfetto.dev ("Open trace file")`);
  }
  if (v.timeline !== undefined) {
    const { svg, png } = await renderChart(timelineChart(runs, subtitle));
    writeFileSync(v.timeline, /\.svg$/i.test(v.timeline) ? svg : png);
    said.push(`timeline: ${v.timeline}`);
  }
  return said;
}

function windowText(r: TraceRun): string {
  const ps = r.samples.length > 1 ? r.samples[1].ps - r.samples[0].ps : 0;
  const n = (x: number) => String(Number(x.toPrecision(4)));
  return ps >= 1e9 ? `${n(ps / 1e9)} ms` : ps >= 1e6 ? `${n(ps / 1e6)} us` : `${n(ps / 1e3)} ns`;
}
