/**
 * The one place that turns sampled counters (TraceSample, trace-sampler.ts) into per-window series:
 * each link direction's utilisation (its busy time's change over the window, divided by the window's
 * simulated length), each DC buffer's occupancy, each bridge's window in use, each PCIe link's credits,
 * and the counters that mean something went wrong (retransmissions, drops, faults). The trace-event
 * file (trace-events.ts), the timeline chart (experiments/timeline.ts) and the web view's replay all
 * read these.
 *
 * Busy time is credited when a transmission starts, so a window a frame straddles can show a little
 * over 1 and the next a little less; the sum over windows is the link's busy time exactly.
 */
import type { CounterSet } from '../core/trace.js';
import type { TraceSample } from './trace-sampler.js';

/** One direction of one link: `source` is its trace name (`hostLink.upstream`, `eth.sw1.p2`). */
export interface LinkDirection {
  source: string;
  kind: 'pcie' | 'ethernet';
  /** The link it belongs to: a PCIe link's name (`hostLink`, `box0.slot0.link`) or a cable's (`host`, `box0.slot2`, `sw0-sw1`). */
  link: string;
  /** Which way: `upstream`/`downstream` (PCIe), `a->b` by port names (Ethernet). */
  direction: string;
  /** For people: `PCIe hostLink upstream`, `Ethernet box0.slot2 (dcbuf0) sw1.p3->box0.slot2`. */
  label: string;
}

export interface Cable {
  cable: string;
  a: string;
  b: string;
}

/** Counters whose increase is an event worth a mark: retransmissions, drops, errors, injected faults. */
export const INCIDENT_KEYS: Record<string, string[]> = {
  'bridge.': ['retransmittedFrames', 'timeoutResentFrames', 'naksSent', 'receiveBufferDrops', 'duplicateFrames', 'outOfOrderFrames'],
  'eth.': ['drops'],
  'switch.': ['drops'],
  'ssd.': ['errors', 'storeErrors'],
  'faults': ['lost', 'down', 'corrupted', 'duplicated', 'reordered'],
};

/** The device in a slot, for labels: `box0.slot2` -> ` (dcbuf0)`. */
function deviceNote(name: string, devices: Record<string, string>): string {
  const slot = /^([A-Za-z][\w-]*\.slot\d+)/.exec(name)?.[1];
  return slot && devices[slot] ? ` (${devices[slot]})` : '';
}

/** Every link direction the counters hold, PCIe links first, then each cable's two directions, in registry order. */
export function linkDirections(counters: Record<string, CounterSet>, cables: Cable[], devices: Record<string, string>): LinkDirection[] {
  const out: LinkDirection[] = [];
  for (const [name, set] of Object.entries(counters)) {
    const m = /^(.*)\.(upstream|downstream)$/.exec(name);
    if (m && 'busyPs' in set) out.push({ source: name, kind: 'pcie', link: m[1], direction: m[2], label: `PCIe ${m[1]}${deviceNote(m[1], devices)} ${m[2]}` });
  }
  for (const c of cables) {
    for (const [from, to] of [[c.a, c.b], [c.b, c.a]]) {
      if (counters[`eth.${from}`]) out.push({ source: `eth.${from}`, kind: 'ethernet', link: c.cable, direction: `${from}->${to}`, label: `Ethernet ${c.cable}${deviceNote(c.cable, devices)} ${from}->${to}` });
    }
  }
  return out;
}

/** A series' value over window i, [samples[i].ps, samples[i+1].ps). */
export interface WindowValue {
  startPs: number;
  endPs: number;
  value: number;
}

const windows = (samples: TraceSample[], f: (a: TraceSample, b: TraceSample) => number): WindowValue[] =>
  samples.slice(1).map((b, i) => ({ startPs: samples[i].ps, endPs: b.ps, value: f(samples[i], b) }));

/** Utilisation of one link direction per window (busy ps over simulated ps; 0 for a window of no simulated time). */
export function utilisation(samples: TraceSample[], source: string): WindowValue[] {
  return windows(samples, (a, b) => {
    const dt = (b.simPsOf?.[source] ?? b.simPs) - (a.simPsOf?.[source] ?? a.simPs);
    return dt > 0 ? ((b.counters[source]?.busyPs ?? 0) - (a.counters[source]?.busyPs ?? 0)) / dt : 0;
  });
}

/** Bytes a DC buffer holds at each boundary: written into it minus read out of it (`dcbuffer.<slot>`). */
export function occupancyAt(s: TraceSample, source: string): number {
  const c = s.counters[source];
  return c ? c.bytesWritten - c.bytesRead : 0;
}

/** Increases of incident counters over window i: `[source, key, count]`. */
export function incidents(a: TraceSample, b: TraceSample): [string, string, number][] {
  const out: [string, string, number][] = [];
  for (const [name, set] of Object.entries(b.counters)) {
    const keys = Object.entries(INCIDENT_KEYS).find(([p]) => name === p || name.startsWith(p))?.[1];
    if (!keys) continue;
    for (const k of keys) {
      const d = (set[k] ?? 0) - (a.counters[name]?.[k] ?? 0);
      if (d > 0) out.push([name, k, d]);
    }
  }
  return out;
}
