import type { CounterSet } from '../core/trace.js';

/** What crossed a PCIe link during a move, each direction (upstream = toward the root complex): the paper's PCIe analyzer. */
export interface LinkPayload {
  upstreamPayloadBytes: number;
  downstreamPayloadBytes: number;
  upstreamTlps: number;
  downstreamTlps: number;
  upstreamUtilization: number;
  downstreamUtilization: number;
}

/** Every trace counter's change from `before` to `after` (two snapshots of one fabric's trace). */
export function traceDelta(before: Record<string, CounterSet>, after: Record<string, CounterSet>): Record<string, Record<string, number>> {
  const trace: Record<string, Record<string, number>> = {};
  for (const [name, counters] of Object.entries(after)) {
    trace[name] = {};
    for (const [k, v] of Object.entries(counters)) trace[name][k] = v - (before[name]?.[k] ?? 0);
  }
  return trace;
}

/** A link's payload, TLPs and busy fraction over `elapsedPs`, from a trace delta (`link` is its trace name, `hostLink`). */
export function linkPayload(trace: Record<string, Record<string, number>>, link: string, elapsedPs: number): LinkPayload {
  const d = (dir: string, key: string) => trace[`${link}.${dir}`]?.[key] ?? 0;
  return {
    upstreamPayloadBytes: d('upstream', 'payloadBytes'),
    downstreamPayloadBytes: d('downstream', 'payloadBytes'),
    upstreamTlps: d('upstream', 'tlps'),
    downstreamTlps: d('downstream', 'tlps'),
    upstreamUtilization: d('upstream', 'busyPs') / elapsedPs,
    downstreamUtilization: d('downstream', 'busyPs') / elapsedPs,
  };
}
