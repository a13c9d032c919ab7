import { DconnectError } from '../core/errors.js';
import { cableEnds } from '../runtime/capture.js';
import type { TraceRun } from '../runtime/trace-events.js';
import { thinSamples, type TraceSample } from '../runtime/trace-sampler.js';
import { viewTopology } from '../runtime/view-topology.js';
import type { Topology } from '../topology/schema.js';
import type { ControlTarget } from '../live/control-http.js';
import { hostClient } from '../live/control-client.js';
import { ownerOfSource } from '../live/fabric-counters.js';

/** `copy --live --trace-events`: the sampling period when none is asked, ms. */
export const LIVE_WINDOW_MS = 250;
/** The shortest period `--trace-window` may set live (each sample asks every node for its counters). */
export const MIN_LIVE_WINDOW_MS = 50;

/**
 * Samples a live fabric's counters (GET /counters' `fabric`) every period while a job moves, for a
 * trace-event file in wall time: each sample's `ps` is wall time since the first, its simulated times
 * are the nodes' own (each source's from the node that runs it). One request at a time; a period whose
 * request is still out is skipped. Bounded as in simulation (thinSamples). NVMe commands run inside
 * the host node, so a live trace has counter tracks and instants, not command slices.
 */
export class LiveTraceRecorder {
  private readonly samples: TraceSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private startNs = 0n;
  private devices: Record<string, string> = {};

  constructor(
    private readonly target: ControlTarget,
    private readonly topology: Topology,
    private readonly periodMs: number,
  ) {
    if (periodMs < MIN_LIVE_WINDOW_MS) throw new DconnectError('BAD_OPTION', `--trace-window ${periodMs}ms is below ${MIN_LIVE_WINDOW_MS}ms for a live copy (each sample asks every node)`, `use e.g. --trace-window ${LIVE_WINDOW_MS}ms`);
  }

  async start(): Promise<void> {
    const d = await hostClient(this.target).devices({ timeoutMs: 120_000 });
    this.devices = Object.fromEntries(d.devices.map((x) => [`${x.box}.slot${x.slot}`, x.name]));
    this.startNs = process.hrtime.bigint();
    await this.sample();
    this.timer = setInterval(() => void this.sample(), this.periodMs);
  }

  private sample(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const wallPs = Number(process.hrtime.bigint() - this.startNs) * 1000;
    this.inFlight = hostClient(this.target).counters({ timeoutMs: 5_000 })
      .then(({ fabric }) => {
        const simPsOf: Record<string, number> = {};
        for (const name of Object.keys(fabric.trace)) simPsOf[name] = Math.round((fabric.nodeSeconds[ownerOfSource(this.topology, name)] ?? fabric.simulatedSeconds) * 1e12);
        this.samples.push({ ps: wallPs, simPs: Math.round(fabric.simulatedSeconds * 1e12), simPsOf, counters: fabric.trace, gauges: fabric.gauges });
        thinSamples(this.samples);
      })
      .catch(() => {}) // a missed sample is a longer window, not an error
      .finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  /** The last sample, then the run. */
  async stop(label: string): Promise<TraceRun> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    await this.sample();
    return { label, samples: this.samples, commands: [], droppedCommands: 0, cables: cableEnds(this.topology), devices: this.devices, clock: 'wall', topology: viewTopology(this.topology, this.devices) };
  }
}
