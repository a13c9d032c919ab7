import type { Topology } from '../topology/schema.js';

/**
 * The paper's measurements, read from its figures (the paper gives bar charts, no table). Fig. 5 x1
 * conventional is implied by "direct is 86% higher": 250 / 1.86. Fig. 6: "+about 100 MB/s from 1 to 2
 * commands, flat after", with 2+ at the SSD's 250 MB/s.
 */
export const PAPER = {
  fig5: [
    { hostLanes: 8, mode: 'direct', mbPerSec: 250 },
    { hostLanes: 8, mode: 'conventional', mbPerSec: 250 },
    { hostLanes: 1, mode: 'direct', mbPerSec: 250 },
    { hostLanes: 1, mode: 'conventional', mbPerSec: 250 / 1.86 },
  ],
  fig6: [1, 2, 3, 4, 5, 6, 7, 8].map((commands) => ({ commands, mbPerSec: commands === 1 ? 150 : 250 })),
} as const;

/**
 * The paper's testbed, as far as its text fixes what its figures depend on: a Gen1 server-side link,
 * two hops of 10GbE switches, and SSDs that write at 250 MB/s (docs/calibration.md marks these "paper").
 * The paper's values, and the bounds below, describe that testbed only.
 */
export const PAPER_TESTBED = [
  { path: 'host.link.generation', value: 1, get: (t: Topology) => [t.host.link.generation] },
  { path: 'ethernet.rateGbps', value: 10, get: (t: Topology) => [t.ethernet.rateGbps] },
  { path: 'ethernet.switchHops', value: 2, get: (t: Topology) => [t.ethernet.switchHops] },
  { path: 'ssd.writeMBps', value: 250, get: (t: Topology) => [t.ssd.writeMBps, ...t.boxes.flatMap((b) => b.slots.map((s) => (s.kind === 'ssd' ? s.ssd?.writeMBps : undefined)))] },
] as const;

/**
 * How a topology differs from the paper's testbed, one line per parameter (`ethernet.rateGbps 100
 * (paper: 10)`); empty when it is the paper's, the only testbed the paper's values and bounds are for.
 */
export function paperTestbedDifferences(t: Topology): string[] {
  const out: string[] = [];
  for (const p of PAPER_TESTBED) {
    const differing = [...new Set(p.get(t).filter((v): v is number => v !== undefined && v !== p.value))];
    if (differing.length > 0) out.push(`${p.path} ${differing.join(', ')} (paper: ${p.value})`);
  }
  return out;
}

/** The fidelity bounds of the reproduction issue. */
export interface BoundCheck {
  name: string;
  value: number;
  range: [number, number];
  ok: boolean;
}

export function checkBounds(fig5: { hostLanes: number; mode: string; mbPerSec: number }[] | null, fig6: { commands: number; mbPerSec: number }[] | null): BoundCheck[] {
  const out: BoundCheck[] = [];
  const add = (name: string, value: number, lo: number, hi: number) => out.push({ name, value, range: [lo, hi], ok: value >= lo && value <= hi });
  if (fig5) {
    const bar = (lanes: number, mode: string) => fig5.find((b) => b.hostLanes === lanes && b.mode === mode)?.mbPerSec ?? NaN;
    add('Fig. 5 x1 direct (MB/s, within 5% of 250)', bar(1, 'direct'), 237.5, 262.5);
    add('Fig. 5 x1 direct / conventional', bar(1, 'direct') / bar(1, 'conventional'), 1.8, 1.92);
    add('Fig. 5 x8 direct (MB/s, within 5% of 250)', bar(8, 'direct'), 237.5, 262.5);
    add('Fig. 5 x8 conventional / direct (within 5%)', bar(8, 'conventional') / bar(8, 'direct'), 0.95, 1.05);
  }
  if (fig6) {
    const p = (n: number) => fig6.find((x) => x.commands === n)?.mbPerSec ?? NaN;
    if (fig6.some((x) => x.commands === 1) && fig6.some((x) => x.commands === 2)) add('Fig. 6 step from 1 to 2 commands (MB/s)', p(2) - p(1), 80, 120);
    const rest = fig6.filter((x) => x.commands >= 2).map((x) => x.mbPerSec);
    if (rest.length > 1) add('Fig. 6 spread from 2 to 8 commands (max/min - 1)', Math.max(...rest) / Math.min(...rest) - 1, 0, 0.03);
  }
  return out;
}
