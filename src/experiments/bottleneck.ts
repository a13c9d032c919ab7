import type { CopyResult } from '../host/dc/command.js';

/** A resource's share of the move's elapsed time during which it was busy. */
export interface Utilization {
  resource: string;
  utilization: number;
}

export interface Limit {
  /** The busiest resource. */
  resource: string;
  utilization: number;
  /** True when the busiest resource is busy at least SATURATED of the time. */
  saturated: boolean;
  /** One sentence a reader can check against the trace counters. */
  explanation: string;
}

/** A resource busy at least this share of the time is the bottleneck. */
export const SATURATED = 0.95;

function slotName(r: CopyResult, key: string): string {
  const m = /box0\.slot(\d)/.exec(key);
  if (!m) return key;
  const slot = Number(m[1]);
  if (slot === 2) return 'DC buffer';
  return slot === 0 ? (r.src === 'sda' ? 'sda' : `slot0`) : r.dst === 'sdb' ? 'sdb' : 'slot1';
}

/**
 * Utilization of every timed resource during the move, from the trace counters: PCIe link directions,
 * Ethernet ports, flash read/write servers, the DC buffer's DDR. Sorted busiest first.
 */
export function utilizations(r: CopyResult): Utilization[] {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const out: Utilization[] = [];
  for (const [name, c] of Object.entries(r.trace)) {
    if (name.startsWith('hostLink.')) out.push({ resource: `host link x${r.hostLanes} ${name.split('.')[1]}`, utilization: c.busyPs / elapsedPs });
    else if (/^box\d+\.slot\d+\.link\./.test(name)) out.push({ resource: `${slotName(r, name)} slot link ${name.split('.').pop()}`, utilization: c.busyPs / elapsedPs });
    else if (name.startsWith('eth.')) out.push({ resource: `Ethernet port ${name.slice(4)}`, utilization: c.busyPs / elapsedPs });
    else if (name.startsWith('ssd.')) {
      const dev = slotName(r, name);
      if (c.readBusyPs > 0) out.push({ resource: `${dev} flash read`, utilization: c.readBusyPs / elapsedPs });
      if (c.writeBusyPs > 0) out.push({ resource: `${dev} flash write`, utilization: c.writeBusyPs / elapsedPs });
    } else if (name.startsWith('dcbuffer.')) out.push({ resource: 'DC buffer DDR2', utilization: c.ddrBusyPs / elapsedPs });
  }
  return out.sort((a, b) => b.utilization - a.utilization);
}

/** Names the resource that limits a move and says why, in the terms of docs/calibration.md. */
export function limitOf(r: CopyResult): Limit {
  const u = utilizations(r);
  const top = u[0];
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  if (top.utilization >= SATURATED) {
    return { resource: top.resource, utilization: top.utilization, saturated: true, explanation: `${top.resource} is saturated (${pct(top.utilization)} busy)` };
  }
  let why: string;
  if (r.depth === 1) why = 'one command at a time: each chunk is read, then written, with no overlap';
  else if (r.mode === 'conventional') {
    const up = u.find((x) => x.resource.endsWith('upstream') && x.resource.startsWith('host link'))!;
    const down = u.find((x) => x.resource.endsWith('downstream') && x.resource.startsWith('host link'))!;
    why = `the host link carries the data both ways (upstream ${pct(up.utilization)}, downstream ${pct(down.utilization)} busy); the destination's reads of host memory queue behind the source's posted writes (PCIe ordering), so the two phases overlap only in part`;
  } else why = 'latency-bound: commands in flight do not cover the round trips';
  return { resource: top.resource, utilization: top.utilization, saturated: false, explanation: `no resource saturated (busiest: ${top.resource}, ${pct(top.utilization)}); ${why}` };
}
