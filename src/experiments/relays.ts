import type { TopLevelSpec } from 'vega-lite';
import type { FidelityMode } from '../runtime/copy.js';
import type { Granularity } from '../runtime/moves.js';
import type { Topology } from '../topology/schema.js';
import { linkBytesPerSec, type PcieGeneration } from '../pcie/link-params.js';
import { CMB_DEFAULTS } from '../topology/kinds/ssd.js';
import type { Limit } from './bottleneck.js';
import { CHART_CONFIG } from './charts.js';
import { fidelityLine, summarizeFidelity, type FidelitySummary } from './fidelity.js';
import { withLanes, type Job, type JobResult } from './jobs.js';

/**
 * Beside Fig. 5 (`repro --only relays`): Fig. 5's move, sda to sdb, with the relay in three places:
 * the box's DC buffer (the paper's), the destination SSD's Controller Memory Buffer (NVMe 1.2+; what
 * Linux P2PDMA and SPDK's cmb_copy relay through), and host memory (the conventional path); host
 * link x8 and x1, `runs` seeds each, as Fig. 5.
 */

/** Where the relay is, as the chart and tables say it. */
export type RelayPlace = 'DC buffer' | "destination's CMB" | 'host memory';
/** The `--via` that puts it there. */
export type RelayPlaceVia = 'dc-buffer' | 'cmb' | 'host';

/** The three places, in the chart's order, with the `--via` that puts the relay there. */
export const RELAY_PLACES: readonly { via: RelayPlaceVia; place: RelayPlace }[] = [
  { via: 'dc-buffer', place: 'DC buffer' },
  { via: 'cmb', place: "destination's CMB" },
  { via: 'host', place: 'host memory' },
];

const KEYS = [8, 1].flatMap((hostLanes) => RELAY_PLACES.map((p) => ({ hostLanes, ...p })));

/** The CMB each SSD gets when the run's topology gives them none: 32 MiB, room for 85 moves' 3 slots of 128 KiB (docs/calibration.md, "The NVMe CMB"). */
export const RELAYS_CMB_BYTES = 32 * 2 ** 20;

export interface RelaysBar {
  hostLanes: number;
  place: RelayPlace;
  via: RelayPlaceVia;
  mbPerSec: number;
  stdevMbPerSec: number;
  runsMbPerSec: number[];
  /** Payload bytes on the host link, both directions, per byte moved (the mean over the runs). */
  hostLinkBytesPerByte: number;
  limit: Limit;
  fidelity: FidelitySummary;
}

export interface RelaysResult {
  /** Each SSD's CMB, and whether this figure gave it one (the run's topology had none). */
  cmbSizeBytes: number;
  cmbAdded: boolean;
  cmbMBps: number;
  /** The DC buffer's DDR rate, MB/s (the other relay's memory, for the reading). */
  ddrMBps: number;
  bars: RelaysBar[];
  fidelity: FidelitySummary;
}

interface RelaysPlan {
  topology: Topology;
  runs: number;
  sizeBytes: number;
  fidelity?: FidelityMode;
  granularity?: Granularity;
}

export const relaysJobCount = (runs: number): number => KEYS.length * runs;

/** The run's topology with a CMB on every SSD: its own if the topology's `ssd` block gives one, else RELAYS_CMB_BYTES. */
export function relaysTopology(t: Topology): { topology: Topology; cmbAdded: boolean } {
  if ((t.ssd.cmbSizeBytes ?? 0) > 0) return { topology: t, cmbAdded: false };
  return { topology: { ...t, ssd: { ...t.ssd, cmbSizeBytes: RELAYS_CMB_BYTES } }, cmbAdded: true };
}

/** The jobs, host link x8 then x1, each place in RELAY_PLACES' order, `runs` seeds each (as Fig. 5's). */
export function relaysJobs(o: RelaysPlan): Job[] {
  const { topology } = relaysTopology(o.topology);
  return KEYS.flatMap(({ hostLanes, via }) =>
    Array.from({ length: o.runs }, (_, i): Job => ({ topology: withLanes(topology, hostLanes), via, depth: topology.copy.depth, sizeBytes: o.sizeBytes, seed: i + 1, fidelity: o.fidelity, granularity: o.granularity, label: `relays ${via} x${hostLanes} seed ${i + 1}` })),
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stdev = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

export function assembleRelays(o: RelaysPlan, results: JobResult[]): RelaysResult {
  const { topology, cmbAdded } = relaysTopology(o.topology);
  return {
    cmbSizeBytes: topology.ssd.cmbSizeBytes ?? 0,
    cmbAdded,
    cmbMBps: topology.ssd.cmbMBps ?? CMB_DEFAULTS.cmbMBps,
    ddrMBps: topology.dcBuffer.ddrMBps,
    bars: KEYS.map((k, i) => {
      const rs = results.slice(i * o.runs, (i + 1) * o.runs);
      const xs = rs.map((r) => r.mbPerSec);
      return {
        hostLanes: k.hostLanes,
        place: k.place,
        via: k.via,
        mbPerSec: mean(xs),
        stdevMbPerSec: stdev(xs),
        runsMbPerSec: xs,
        hostLinkBytesPerByte: mean(rs.map((r) => (r.hostUpstreamPayloadBytes + r.hostDownstreamPayloadBytes) / o.sizeBytes)),
        limit: rs[0].limit,
        fidelity: summarizeFidelity(rs.map((r) => r.fidelity)),
      };
    }),
    fidelity: summarizeFidelity(results.map((r) => r.fidelity)),
  };
}

const COLOURS = ['#2f6db5', '#3a9a5b', '#e08a2c'];

/** Grouped bars like Fig. 5's: a group per host link, a bar per relay place, ±1 sd, each labelled with its MB/s and the host link's bytes per byte moved. */
export function relaysChart(r: RelaysResult, o: { sizeBytes: number; runs: number; preset: string; generation: PcieGeneration }): TopLevelSpec {
  const setting = (lanes: number) => `x${lanes} (${Number(((linkBytesPerSec(o.generation, 1) * 8 * lanes) / 1e9).toPrecision(3))} Gb/s)`;
  const places = RELAY_PLACES.map((p) => p.place);
  const values = r.bars.map((b) => ({ setting: setting(b.hostLanes), place: b.place, mbPerSec: b.mbPerSec, lo: b.mbPerSec - b.stdevMbPerSec, hi: b.mbPerSec + b.stdevMbPerSec, label: b.mbPerSec.toFixed(0), host: [b.hostLinkBytesPerByte.toFixed(3), 'B/B'] }));
  const top = Math.max(...values.map((v) => v.hi));
  const yTop = top <= 270 ? 300 : Math.ceil((top * 1.15) / 50) * 50;
  const y = { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)', scale: { domain: [0, yTop] } } as const;
  const cap = (field: 'lo' | 'hi') => ({ mark: { type: 'tick', thickness: 1.5, size: 14, color: '#222' }, encoding: { y: { field, type: 'quantitative' } } });
  const size = o.sizeBytes % 2 ** 30 === 0 ? `${o.sizeBytes / 2 ** 30} GiB` : `${o.sizeBytes / 2 ** 20} MiB`;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: `Beside Fig. 5: where the relay lives (${size}, sda → sdb)`,
      subtitle: [
        `model, ${o.preset}: mean of ${o.runs} run${o.runs === 1 ? '' : 's'}, error bars ±1 sd; multiplicity 3`,
        `CMB: ${r.cmbSizeBytes / 2 ** 20} MiB in each SSD's BAR2 at ${r.cmbMBps} MB/s${r.cmbAdded ? ' (added for this figure)' : ''}`,
        'at the foot of each bar: payload bytes on the host link per byte moved',
        fidelityLine(r.fidelity),
      ],
    },
    width: 520,
    height: 300,
    config: CHART_CONFIG,
    data: { values },
    encoding: { x: { field: 'setting', type: 'nominal', title: 'Server-side bridge PCIe link', sort: [setting(8), setting(1)], axis: { labelAngle: 0 } }, xOffset: { field: 'place', sort: places, scale: { paddingInner: 0.08 } } },
    layer: [
      { mark: { type: 'bar' }, encoding: { y, color: { field: 'place', type: 'nominal', title: 'Relay in', sort: places, scale: { domain: places, range: COLOURS }, legend: { labelLimit: 0 } } } },
      { mark: { type: 'rule', color: '#222', strokeWidth: 1.5 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      cap('lo'),
      cap('hi'),
      { mark: { type: 'text', dy: 16, fontSize: 12, fontWeight: 'bold', color: 'white' }, encoding: { y: { field: 'mbPerSec', type: 'quantitative' }, text: { field: 'label' } } },
      { mark: { type: 'text', fontSize: 11, color: 'white', baseline: 'bottom', dy: -20, lineHeight: 13 }, encoding: { y: { datum: 0 }, text: { field: 'host' } } },
    ],
  } as TopLevelSpec;
}

const f1 = (x: number) => x.toFixed(1);

/** The paragraph of report.md: what the figure shows, with its numbers, read from the bars (any topology). */
export function relaysParagraph(r: RelaysResult): string {
  const bar = (lanes: number, via: string) => r.bars.find((b) => b.hostLanes === lanes && b.via === via)!;
  const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${f1(100 * (a / b - 1))}%`;
  const short = (l: Limit) => l.explanation.split(/[:;(]/)[0].trim();
  const lanes = [8, 1].map((n) => {
    const [d, c, h] = ['dc-buffer', 'cmb', 'host'].map((v) => bar(n, v));
    return `At x${n}: DC buffer ${f1(d.mbPerSec)} MB/s (${short(d.limit)}), destination's CMB ${f1(c.mbPerSec)} MB/s (${pct(c.mbPerSec, d.mbPerSec)}; ${short(c.limit)}), host memory ${f1(h.mbPerSec)} MB/s (${short(h.limit)}; ${h.hostLinkBytesPerByte.toFixed(2)} B on the host link per byte moved, against ${d.hostLinkBytesPerByte.toFixed(3)} and ${c.hostLinkBytesPerByte.toFixed(3)} for the direct relays).`;
  });
  const cmbBinds = r.bars.some((b) => b.via === 'cmb' && /\bCMB\b/.test(b.limit.resource));
  const same = r.bars.filter((b) => b.via === 'cmb').every((c) => Math.abs(c.mbPerSec / bar(c.hostLanes, 'dc-buffer').mbPerSec - 1) < 0.01);
  const reading = cmbBinds
    ? `The CMB binds: every relayed byte passes its memory twice (in as the source's writes, out as the controller's own read for the write command), so it relays at most half its ${r.cmbMBps} MB/s, ${f1(r.cmbMBps / 2)} MB/s; the DC buffer's DDR takes the same two passes at ${r.ddrMBps} MB/s. A relay in the drive pays off only when the drive's memory is fast beside its flash and its link.`
    : same
      ? 'The CMB saves the relayed data\'s second trip across the box switch and the destination\'s read round trips to the relay, but here neither limits the move, so the two direct relays run alike.'
      : 'The CMB saves the relayed data\'s second trip across the box switch and the destination\'s read round trips to the relay.';
  return [
    `The relay of Fig. 5's move in three places. In the box's DC buffer (the paper's), the source's data crosses the box switch into the buffer and the destination reads it back across the switch (MRd out, CplD back). In the destination's Controller Memory Buffer (${r.cmbSizeBytes / 2 ** 20} MiB in BAR2 of each SSD at ${r.cmbMBps} MB/s${r.cmbAdded ? ', given to the SSDs for this figure: the paper\'s drive predates NVMe 1.2' : ''}), the source writes into the destination's BAR2 across the switch once, and the destination's write command takes its data from its own memory without a PCIe transaction, as Linux's P2PDMA and SPDK's \`cmb_copy\` relay. In host memory every byte crosses the host link twice.`,
    '',
    `${lanes.join(' ')} ${reading}`,
  ].join('\n');
}
