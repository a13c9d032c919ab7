import type { TopLevelSpec } from 'vega-lite';
import { DconnectError } from '../core/errors.js';
import { blockName } from '../runtime/boot.js';
import type { Fidelity } from '../runtime/copy.js';
import { NET_PREFIX } from '../runtime/nic-moves.js';
import { slotParams } from '../topology/device-registry.js';
import type { NicConfig } from '../topology/kinds/nic.js';
import { DEFAULT_PRESET, loadTopology } from '../topology/load.js';
import { applySettings, type Override } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';
import type { Limit, Utilization } from './bottleneck.js';
import { CHART_CONFIG } from './charts.js';
import { fidelityLine, summarizeFidelity, type FidelitySummary } from './fidelity.js';
import { withLanes, type Job, type JobResult } from './jobs.js';

/**
 * Fig. 8, beyond the paper (its section 4's next step, issue 9): the three moves through a NIC,
 * direct (relayed in the DC buffer) against conventional (through host memory), host link x8 and
 * x1. Serve: a drive's data to a client (`sda` -> `net:client0`); ingest: a client's backup to a
 * drive (`net:client0` -> `sdb`); pipeline: HDFS-style forwarding from one client to another through
 * the NIC (`net:client0` -> `net:client1`). Each bar is one move of `fig8SizeBytes` at the preset's
 * commands in flight and chunk, seed 1, every TLP and frame simulated (full fidelity: the figure is the
 * reference the NIC moves' statistical fast path is checked against),
 * verified at the far end, with its limit from the trace counters (bottleneck.ts, `namedLimitOf`).
 */

export const FIG8_MOVES = ['serve', 'ingest', 'pipeline'] as const;
export type Fig8Move = (typeof FIG8_MOVES)[number];
const FIG8_KEYS = [8, 1].flatMap((hostLanes) => FIG8_MOVES.flatMap((move) => (['direct', 'conventional'] as const).map((mode) => ({ hostLanes, move, mode }))));
/** Jobs in Fig. 8 (results are assembled in FIG8_KEYS' order). */
export const FIG8_JOBS = FIG8_KEYS.length;

/** The preset Fig. 8 runs on when the run's topology is the default one, which has no NIC. */
export const FIG8_PRESET = 'paper-2012-nic';
/**
 * Bytes per bar at most: `repro --size` (1 GiB by default, for the paper's figures) is cut to this,
 * since NIC moves simulate every TLP and frame (about 0.1 s of one core per MiB). At 32 MiB the rates
 * are steady (start and drain are a few hundred microseconds of moves lasting 50 to 270 ms) and the
 * twelve bars take 15 to 30 s on two cores.
 */
export const FIG8_MAX_BYTES = 32 * 2 ** 20;

export interface Fig8Bar {
  move: Fig8Move;
  /** The move's ends as `dconnect copy` takes them: `sda`, `net:client0`. */
  src: string;
  dst: string;
  mode: 'direct' | 'conventional';
  hostLanes: number;
  mbPerSec: number;
  simulatedSeconds: number;
  /** Payload bytes on the host link, both directions, per byte moved. */
  hostLinkBytesPerByte: number;
  hostUpstreamPayloadBytes: number;
  hostDownstreamPayloadBytes: number;
  /** The far end's bytes equal the source's, byte for byte. */
  verified: boolean;
  /** What binds, with `name`: the few words the chart and the tables show. */
  limit: Limit;
  /** The busiest resources, busiest first. */
  utilizations: Utilization[];
  fidelity: Fidelity;
}

export interface Fig8Result {
  /** The topology the moves ran on (FIG8_PRESET when the run's was the default, which has no NIC). */
  preset: string;
  /** Bytes moved per bar. */
  sizeBytes: number;
  bars: Fig8Bar[];
  fidelity: FidelitySummary;
}

interface Fig8Plan {
  topology: Topology;
  overrides?: Override[];
  sizeBytes: number;
}

/**
 * The ends of the three moves on a topology: its first two drives, and the first two clients of its
 * first NIC that has two (with that NIC's frame payload); null if it lacks any of them or a DC buffer.
 */
function endsOf(t: Topology): { ends: Record<Fig8Move, { src: string; dst: string }>; frameBytes: number } | null {
  const ssds = t.boxes.flatMap((b) => b.slots.filter((s) => s.kind === 'ssd')).length;
  const buffers = t.boxes.flatMap((b) => b.slots.filter((s) => s.kind === 'dc-buffer')).length;
  const nic = t.boxes.flatMap((b) => b.slots.flatMap((s, slot) => (s.kind === 'nic' && s.clients.length >= 2 ? [{ box: b.name, slot, clients: s.clients }] : [])))[0];
  if (!nic || ssds < 2 || buffers < 1) return null;
  const [a, b] = nic.clients.map((c) => `${NET_PREFIX}${c.name}`);
  return {
    ends: { serve: { src: blockName(0), dst: a }, ingest: { src: a, dst: blockName(1) }, pipeline: { src: a, dst: b } },
    frameBytes: (slotParams(t, nic.box, nic.slot) as NicConfig).framePayloadBytes,
  };
}

/**
 * The topology Fig. 8 runs on: the run's own if it has what the moves need (two SSDs, a DC buffer and
 * a NIC with two clients); the default preset, which has no NIC, becomes FIG8_PRESET with the run's
 * `--set`s applied again; any other topology without a NIC is an error naming the preset to use.
 */
export function fig8Topology(t: Topology, overrides: readonly Override[] = []): Topology {
  if (endsOf(t)) return t;
  if (t.name === DEFAULT_PRESET) return applySettings(loadTopology(FIG8_PRESET), overrides.map((o) => o.set)).topology;
  throw new DconnectError(
    'BAD_TOPOLOGY',
    `Fig. 8 moves data through a NIC, and topology ${t.name} has no NIC with two clients beside two SSDs and a DC buffer`,
    `use --topology ${FIG8_PRESET} (the paper's box with a NIC and clients client0 and client1), or a topology with a slot of kind nic and two clients`,
  );
}

/** Bytes per bar: the run's size, at most FIG8_MAX_BYTES, a whole number of frames and of 4 KiB blocks. */
export function fig8SizeBytes(t: Topology, sizeBytes: number): number {
  const size = Math.min(sizeBytes, FIG8_MAX_BYTES);
  const frame = endsOf(t)!.frameBytes;
  if (size % frame !== 0 || size % 4096 !== 0) throw new DconnectError('UNALIGNED', `Fig. 8 moves ${size} bytes per bar, not a multiple of the ${frame}-byte frame payload and of 4 KiB`, 'use a --size such as 4MiB or 32MiB');
  return size;
}

/** The twelve moves, in FIG8_KEYS' order: host link x8, then x1; serve, ingest, pipeline; direct, then conventional. */
export function fig8Jobs(o: Fig8Plan): Job[] {
  const t = fig8Topology(o.topology, o.overrides);
  const { ends } = endsOf(t)!;
  const sizeBytes = fig8SizeBytes(t, o.sizeBytes);
  return FIG8_KEYS.map(({ hostLanes, move, mode }) => ({
    topology: withLanes(t, hostLanes),
    via: mode === 'direct' ? 'dc-buffer' : 'host',
    depth: t.copy.depth,
    sizeBytes,
    seed: 1,
    fidelity: 'full',
    nic: ends[move],
    label: `fig8 ${move} ${mode} x${hostLanes}`,
  }));
}

export function assembleFig8(o: Fig8Plan, results: JobResult[]): Fig8Result {
  const t = fig8Topology(o.topology, o.overrides);
  const { ends } = endsOf(t)!;
  const sizeBytes = fig8SizeBytes(t, o.sizeBytes);
  return {
    preset: t.name,
    sizeBytes,
    bars: FIG8_KEYS.map((k, i) => {
      const r = results[i];
      return {
        move: k.move,
        ...ends[k.move],
        mode: k.mode,
        hostLanes: k.hostLanes,
        mbPerSec: r.mbPerSec,
        simulatedSeconds: r.simulatedSeconds,
        hostLinkBytesPerByte: (r.hostUpstreamPayloadBytes + r.hostDownstreamPayloadBytes) / sizeBytes,
        hostUpstreamPayloadBytes: r.hostUpstreamPayloadBytes,
        hostDownstreamPayloadBytes: r.hostDownstreamPayloadBytes,
        verified: r.verified,
        limit: r.limit,
        utilizations: r.utilizations,
        fidelity: r.fidelity,
      };
    }),
    fidelity: summarizeFidelity(results.map((r) => r.fidelity)),
  };
}

/** `sda -> client0`: a move's ends for people. */
export const endsText = (b: Pick<Fig8Bar, 'src' | 'dst'>) => `${b.src.replace(NET_PREFIX, '')} → ${b.dst.replace(NET_PREFIX, '')}`;

/** The short name of a bar's limit (`namedLimitOf`), or the busiest resource if the result has none. */
export const limitName = (l: Limit) => l.name ?? l.resource;

/**
 * Horizontal bars grouped by move, direct above conventional, one panel per host link; each bar is
 * labelled with its bandwidth and the host link's payload per byte moved, and under that its limit.
 */
export function fig8Chart(f: Fig8Result, size: string): TopLevelSpec {
  const moveLabel = (b: Fig8Bar) => `${b.move}|${endsText(b)}`;
  const order = FIG8_MOVES.map((m) => moveLabel(f.bars.find((b) => b.move === m)!));
  const panels = [8, 1].map((lanes) => `host link x${lanes}`);
  const values = f.bars.map((b) => ({
    panel: `host link x${b.hostLanes}`,
    move: moveLabel(b),
    mode: b.mode,
    mbPerSec: b.mbPerSec,
    value: `${b.mbPerSec.toFixed(0)} MB/s${b.verified ? '' : ' NOT VERIFIED'}`,
    payload: `host link ${b.hostLinkBytesPerByte.toFixed(2)} B/B`,
    limit: `limit: ${limitName(b.limit)}`,
  }));
  const top = Math.max(...f.bars.map((b) => b.mbPerSec));
  const xMax = Math.ceil((top * 1.02) / 100) * 100;
  const text = { type: 'text', align: 'left', baseline: 'middle', fontSize: 11 } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: 'Fig. 8 (beyond the paper): moves through a NIC, direct against conventional',
      subtitle: [`testbed ${f.preset}; ${size} per bar, seed 1; ${fidelityLine(f.fidelity)}`, 'beside each bar: MB/s (10^6 B/s) and payload bytes on the host link per byte moved;', 'under them, what limits the move (from the trace counters)'],
    },
    config: { ...CHART_CONFIG, header: { labelFontSize: 13, labelFontWeight: 'bold', labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top', labelPadding: 6 } },
    data: { values },
    facet: { row: { field: 'panel', type: 'nominal', sort: panels, title: null } },
    spacing: 18,
    spec: {
      width: 440,
      height: 3 * 84,
      encoding: {
        y: { field: 'move', type: 'nominal', sort: order, title: null, axis: { labelFontSize: 12, labelLimit: 0, labelExpr: "split(datum.label, '|')", grid: false, ticks: false, labelPadding: 6 } },
        yOffset: { field: 'mode', sort: ['direct', 'conventional'] },
        x: { field: 'mbPerSec', type: 'quantitative', title: 'Bandwidth (MB/s)', scale: { domain: [0, xMax] } },
      },
      layer: [
        { mark: { type: 'bar', height: { band: 0.86 } }, encoding: { color: { field: 'mode', type: 'nominal', title: 'Mode', sort: ['direct', 'conventional'], scale: { domain: ['direct', 'conventional'], range: ['#2f6db5', '#e08a2c'] } } } },
        { mark: { ...text, dx: 5, dy: -7, fontWeight: 'bold' }, encoding: { text: { field: 'value' } } },
        { mark: { ...text, dx: 68, dy: -7, color: '#555' }, encoding: { text: { field: 'payload' } } },
        { mark: { ...text, dx: 5, dy: 7, color: '#222' }, encoding: { text: { field: 'limit' } } },
      ],
    },
  } as TopLevelSpec;
}
