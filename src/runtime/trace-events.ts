/**
 * Chrome/Perfetto trace-event JSON (issue "See a move happen"): open it at ui.perfetto.dev ("Open trace
 * file") or chrome://tracing. Built from a run's samples and commands (trace-sampler.ts), through the
 * series of trace-series.ts:
 * - counter tracks (`C`): each link direction's utilisation per window, each DC buffer's occupancy,
 *   each bridge's window in use, each PCIe link direction's credits;
 * - NVMe commands as async slices (`b`/`e`, category `nvme`, named `read`/`write` so Perfetto packs
 *   each drive's commands into a few rows), one process per drive; each chunk's read and write joined
 *   by a flow arrow: Perfetto's flow v2 on the slices themselves (`bind_id`, `flow_out` on the read's
 *   `b`, `flow_in` on the write's), since v1 flows (`s`/`f`) bind only to slices on thread tracks;
 * - retransmissions, drops and injected faults as instant events (`i`) at the end of their window.
 * `ts` is in µs from the run's start: simulated time in a simulation, wall time live (each counter
 * sample then carries the simulated time as `args.simulatedUs`). Output is a pure function of the
 * input: same seed, same file.
 */
import type { CommandSlice, TraceSample } from './trace-sampler.js';
import { incidents, linkDirections, occupancyAt, utilisation, type Cable } from './trace-series.js';
import type { ViewTopology } from './view-topology.js';

export interface TraceEvent {
  name: string;
  ph: string;
  ts?: number;
  pid: number;
  tid?: number;
  cat?: string;
  id?: string;
  s?: string;
  bp?: string;
  /** Flow v2: the flow this slice starts (`flow_out`) or ends (`flow_in`). */
  bind_id?: string;
  flow_out?: boolean;
  flow_in?: boolean;
  args?: Record<string, unknown>;
}

export interface TraceRun {
  /** Names the run's processes when a file holds several (`direct`, `conventional`). */
  label: string;
  samples: TraceSample[];
  commands: CommandSlice[];
  droppedCommands: number;
  cables: Cable[];
  /** Slot -> device name (`box0.slot2` -> `dcbuf0`). */
  devices: Record<string, string>;
  clock: 'simulated' | 'wall';
  /** The picture the web view replays the run on (otherData.runs[i].topology). */
  topology?: ViewTopology;
}

export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, unknown>;
}

/** Processes of one run (added to the run's base: 1000 per run in a file). */
export const PID = { links: 1, dcBuffers: 2, bridges: 3, credits: 4, incidents: 5, firstDrive: 10 } as const;
/** The driver's one I/O queue pair (host/nvme-driver.ts: qid 1). */
const IO_QUEUE = 1;

const us = (ps: number, zeroPs: number) => (ps - zeroPs) / 1e6;

/** Every event of one run, its processes numbered from `pidBase`. */
export function runEvents(run: TraceRun, pidBase: number): TraceEvent[] {
  const ev: TraceEvent[] = [];
  const s = run.samples;
  if (s.length === 0) return ev;
  const zero = s[0].ps;
  const pre = run.label ? `${run.label}: ` : '';
  const proc = (pid: number, name: string, sortIndex: number) => {
    ev.push({ name: 'process_name', ph: 'M', pid: pidBase + pid, args: { name: pre + name } });
    ev.push({ name: 'process_sort_index', ph: 'M', pid: pidBase + pid, args: { sort_index: pidBase + sortIndex } });
  };
  const sim = (i: number) => (run.clock === 'wall' ? { simulatedUs: us(s[i].simPs, s[0].simPs) } : {});
  // A counter track is a step function: a sample equal to the track's last is left out (the first and last are kept).
  const last = new Map<string, string>();
  const counter = (pid: number, name: string, i: number, args: Record<string, number>) => {
    const key = JSON.stringify(args);
    if (i > 0 && i < s.length - 1 && last.get(name) === key) return;
    last.set(name, key);
    ev.push({ name, ph: 'C', ts: us(s[i].ps, zero), pid: pidBase + pid, args: { ...args, ...sim(i) } });
  };

  proc(PID.links, 'link utilisation (busy / window)', PID.links);
  for (const d of linkDirections(s[0].counters, run.cables, run.devices)) {
    const u = utilisation(s, d.source);
    u.forEach((w, i) => counter(PID.links, d.label, i, { utilisation: w.value }));
    counter(PID.links, d.label, s.length - 1, { utilisation: 0 });
  }
  proc(PID.dcBuffers, 'DC buffer occupancy (bytes written - bytes read)', PID.dcBuffers);
  const bufs = Object.keys(s[0].counters).filter((n) => n.startsWith('dcbuffer.'));
  for (const b of bufs) {
    const name = `occupancy ${run.devices[b.slice('dcbuffer.'.length)] ?? b}`;
    s.forEach((x, i) => counter(PID.dcBuffers, name, i, { bytes: occupancyAt(x, b) }));
  }
  proc(PID.bridges, 'ExpEther bridges: window in use (unacknowledged frames)', PID.bridges);
  for (const g of Object.keys(s[0].gauges).filter((n) => n.startsWith('bridge.'))) {
    s.forEach((x, i) => counter(PID.bridges, `window ${g.slice('bridge.'.length)}`, i, { frames: x.gauges[g]?.windowFrames ?? 0 }));
  }
  proc(PID.credits, 'PCIe credits held by each sender', PID.credits);
  for (const g of Object.keys(s[0].gauges).filter((n) => /\.(upstream|downstream)$/.test(n))) {
    s.forEach((x, i) => counter(PID.credits, `credits ${g}`, i, { ...x.gauges[g] }));
  }
  proc(PID.incidents, 'retransmissions, drops and faults', PID.incidents);
  for (let i = 1; i < s.length; i++) {
    for (const [source, key, count] of incidents(s[i - 1], s[i])) {
      ev.push({ name: `${key} ${source}`, ph: 'i', s: 'p', ts: us(s[i].ps, zero), pid: pidBase + PID.incidents, tid: 1, cat: 'incident', args: { count, windowStartUs: us(s[i - 1].ps, zero), ...sim(i) } });
    }
  }
  if (run.clock === 'simulated') ev.push(...commandEvents(run, pidBase, zero, proc));
  return ev;
}

/** NVMe slices per drive and queue, and a flow from each chunk's read to its write. */
function commandEvents(run: TraceRun, pidBase: number, zero: number, proc: (pid: number, name: string, sort: number) => void): TraceEvent[] {
  const ev: TraceEvent[] = [];
  const drives = [...new Set(run.commands.map((c) => c.device))];
  const pidOf = new Map(drives.map((d, i) => [d, pidBase + PID.firstDrive + i]));
  drives.forEach((d, i) => {
    proc(PID.firstDrive + i, `drive ${d}`, PID.firstDrive + i);
    ev.push({ name: 'thread_name', ph: 'M', pid: pidOf.get(d)!, tid: IO_QUEUE, args: { name: `I/O queue ${IO_QUEUE}` } });
  });
  // A flow joins a chunk's read and its write when both are in the file.
  const key = (c: CommandSlice) => `${c.move}:${c.chunk}`;
  const written = new Set(run.commands.filter((c) => c.kind === 'write').map(key));
  const read = new Set(run.commands.filter((c) => c.kind === 'read' && c.endPs >= 0).map(key));
  run.commands.forEach((c, k) => {
    if (c.endPs < 0) return; // outstanding when the run ended (a failure): no end to draw
    const pid = pidOf.get(c.device)!;
    const id = `${pidBase}:${k}`;
    const name = `${c.kind} (I/O queue ${IO_QUEUE})`;
    const flow = read.has(key(c)) && written.has(key(c)) ? { bind_id: `${pidBase}:m${c.move}c${c.chunk}`, ...(c.kind === 'read' ? { flow_out: true } : { flow_in: true }) } : {};
    ev.push({ name, ph: 'b', cat: 'nvme', id, ts: us(c.startPs, zero), pid, tid: IO_QUEUE, ...flow, args: { move: c.move, chunk: c.chunk, slba: c.slba, bytes: c.bytes, ok: c.ok } });
    ev.push({ name, ph: 'e', cat: 'nvme', id, ts: us(c.endPs, zero), pid, tid: IO_QUEUE });
  });
  return ev;
}

/** A file of one or several runs (each run's processes 1000 apart), with what produced it in `otherData`. */
export function traceFile(runs: TraceRun[], otherData: Record<string, unknown>): TraceFile {
  return {
    traceEvents: runs.flatMap((r, i) => runEvents(r, i * 1000)),
    displayTimeUnit: 'ns',
    otherData: {
      ...otherData,
      clock: runs[0]?.clock ?? 'simulated',
      runs: runs.map((r) => ({
        label: r.label,
        windows: Math.max(0, r.samples.length - 1),
        windowPs: r.samples.length > 1 ? r.samples[1].ps - r.samples[0].ps : 0,
        commands: r.commands.length,
        droppedCommands: r.droppedCommands,
        // For a replay: which counter track (by name, in process pidBase + 1) counts which trace source.
        links: r.samples.length > 0 ? linkDirections(r.samples[0].counters, r.cables, r.devices).map((d) => ({ track: d.label, source: d.source })) : [],
        ...(r.topology ? { topology: r.topology } : {}),
        pidBase: runs.indexOf(r) * 1000,
      })),
    },
  };
}
