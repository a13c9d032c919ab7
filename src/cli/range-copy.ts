import type { JobRequestBody } from '../live/control-api.js';
import { DconnectError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { runCopy, runMoves, type FidelityMode } from '../runtime/copy.js';
import { burstBytesOf, type Granularity } from '../runtime/moves.js';
import { modeOf } from '../runtime/engine/plan.js';
import { simulatedFaults } from '../runtime/faults.js';
import type { TraceRun } from '../runtime/trace-events.js';
import type { Topology } from '../topology/schema.js';
import { parseDeviceRange, parseMoveVia, parseSeed } from './args.js';
import { openCapture } from './capture-file.js';
import { capturedOn, faultsLine, formatCopy, formatMoves } from './format.js';
import { imageOf, saveOf } from './image-files.js';
import type { Io } from './io.js';
import { fidelityOf } from './options.js';
import { progressBar } from './progress.js';
import { recordInto, viewOutputsOf, writeViewOutputs, type ViewOutputs } from './trace-output.js';

/**
 * `dconnect copy sda sdb [sdc sdd ...] --length N`: ranges between drives, simulated (one pair, or
 * several moving at once), or with --live one pair as a job on the live fabric.
 */

/** The `copy` options a move between drives takes. */
export interface RangeCopyOptions {
  length: string;
  depth?: string;
  chunk?: string;
  via: string;
  seed: string;
  fidelity: FidelityMode;
  granularity: Granularity;
  burstBytes?: string;
  fault?: string[];
  capture?: string;
  pcap?: string;
  host?: string;
  image?: string[];
  save?: string[];
  json?: boolean;
  verify: boolean;
  traceEvents?: string;
  traceWindow?: string;
  timeline?: string;
}

/** `copy sda sdb --length N --live`: the job request for the live fabric's host, and the views asked for. */
export function liveRangeRequest(srcArg: string, dstArg: string, o: RangeCopyOptions): { req: JobRequestBody; views: ViewOutputs | null } {
  // A live capture is written by the host into <state>/captures/NAME: the request names a file, not a path.
  const capture = o.capture && o.pcap ? { links: o.capture.split(',').map((l) => l.trim()).filter((l) => l), name: o.pcap } : undefined;
  const src = parseDeviceRange(srcArg, 'source');
  const dst = parseDeviceRange(dstArg, 'destination');
  const views = viewOutputsOf(o);
  return { req: { src: src.device, srcOffset: src.offset, dst: dst.device, dstOffset: dst.offset, lengthBytes: parseSize(o.length, '--length'), via: parseMoveVia(o.via), ...(o.chunk ? { chunkBytes: parseSize(o.chunk, '--chunk') } : {}), ...(o.depth ? { depth: Number(o.depth) } : {}), verify: o.verify, ...(capture ? { capture } : {}) }, views };
}

/** Simulated moves of the ranges `args` names in pairs (src dst src dst ...): results on `io.out`, progress and notes on `io.err`. */
export async function rangeCopyAction(io: Io, topology: Topology, args: string[], o: RangeCopyOptions, fidelityGiven: boolean): Promise<void> {
  if (args.length % 2 !== 0) throw new DconnectError('BAD_OPTION', `${args.length} devices given; moves need them in pairs`, 'name a destination for every source: dconnect copy sda sdb sdc sdd');
  const pairs = Array.from({ length: args.length / 2 }, (_, i) => {
    const src = parseDeviceRange(args[2 * i], 'source');
    const dst = parseDeviceRange(args[2 * i + 1], 'destination');
    return { src: src.device, srcOffset: src.offset, dst: dst.device, dstOffset: dst.offset };
  });
  const lengthBytes = parseSize(o.length, '--length');
  const depth = o.depth === undefined ? undefined : Number(o.depth);
  if (depth !== undefined && !Number.isInteger(depth)) throw new DconnectError('BAD_OPTION', `--depth '${o.depth}' is not an integer`, 'use 1..64');
  const chunkBytes = o.chunk === undefined ? undefined : parseSize(o.chunk, '--chunk');
  const vias = o.via === 'both' ? (['dc-buffer', 'host'] as const) : [parseMoveVia(o.via)];
  const views = viewOutputsOf(o);
  const seed = parseSeed(o.seed);
  const burstBytes = o.burstBytes ? parseSize(o.burstBytes, '--burst-bytes') : undefined;
  const burst = o.granularity === 'burst' ? { granularity: o.granularity, ...(burstBytes !== undefined ? { burstBytes } : {}) } : {};
  const faults = simulatedFaults(topology, o.fault ?? [], seed, o.granularity === 'burst' ? burstBytesOf({ granularity: 'burst', fidelity: 'full', burstBytes }) : 0);
  const mediaErrors = faults.mediaErrors;
  const cableFaults = faults.connect !== null;
  // Burst granularity implies the full fidelity (the fast one's digests do not cover bursts); asked for both, runMoves refuses.
  let fidelity = fidelityOf(o, fidelityGiven);
  // Down windows are scheduled in time: the fast fidelity could jump over one, so they run per TLP.
  if (faults.needsFullFidelity && fidelity === 'fast') fidelity = 'full';
  if (fidelity !== o.fidelity && o.granularity !== 'burst') io.err.write('note: --fault down=... runs at --fidelity full (the fast fidelity could jump over the outage)\n');
  // A trace draws every chunk: the fast fidelity jumps over most of them.
  if (views && fidelity === 'fast') {
    if (fidelityGiven) throw new DconnectError('BAD_OPTION', '--trace-events and --timeline record the move at the full fidelity only (the fast one jumps over most chunks)', 'drop --fidelity fast');
    fidelity = 'full';
  }
  if (vias.length > 1 && (o.capture !== undefined || cableFaults)) throw new DconnectError('BAD_OPTION', '--via both runs two moves; --capture and cable faults take one', 'run them one at a time: --via dc-buffer, then --via host');
  const traceRuns: TraceRun[] = [];
  const capture = openCapture(topology, o.capture, o.pcap, faults.connect ?? undefined);
  // Raw images in and out (a range copy of a whole image is dd between drives); checked now, read after boot.
  const images = (o.image ?? []).map(imageOf);
  const saves = (o.save ?? []).map(saveOf);
  const both: Record<string, unknown> = {};
  for (const via of vias) {
    const label = vias.length > 1 ? modeOf(via) : '';
    let bar = progressBar(vias.length > 1 ? `copy (${label})` : 'copy', lengthBytes * pairs.length, 'bytes', { lines: true, err: io.err });
    // After the move, the verification (byte for byte) gets a bar of its own: on a long move it takes a while too.
    const onVerify = (d: number, total: number) => {
      if (d === 0) {
        bar.update(total);
        bar.stop();
        bar = progressBar('verify', total, 'bytes', { lines: true, err: io.err });
      }
      bar.update(d);
    };
    try {
      const traceRecording = views ? recordInto(traceRuns, label || modeOf(via), topology, views, cableFaults ? { faults: () => ({ ...faults.counts() }) } : undefined) : undefined;
      const common = { topology, lengthBytes, depth, chunkBytes, via, seed, fidelity, images, saves, onProgress: (d: number) => bar.update(d), onVerify, connect: capture?.connect ?? faults.connect ?? undefined, mediaErrors, onStart: faults.start, ...(o.host ? { host: o.host } : {}), ...burst, ...(traceRecording ? { traceRecording } : {}) };
      // One pair keeps the single move's result shape; several report each move and the aggregate.
      const r = pairs.length === 1 ? runCopy({ ...common, ...pairs[0] }) : runMoves({ ...common, pairs });
      bar.update(lengthBytes * pairs.length); // done (and verified): the fast fidelity's jump reports no progress of its own
      bar.stop();
      if (o.json && vias.length > 1) both[label] = r;
      else if (o.json) io.out.write(JSON.stringify(r) + '\n');
      else io.out.write((label ? `${label}:\n` : '') + ('moves' in r ? formatMoves(r) : formatCopy(r)) + '\n');
      const verified = 'moves' in r ? r.aggregate.verified : r.verified;
      if (!verified) process.exitCode = 3;
      if (cableFaults) io.err.write(faultsLine(faults.report()) + '\n');
      if (capture) {
        const c = capture.close();
        const f = r.fidelity;
        const jumped = f.totalChunks - f.detailedChunks;
        io.err.write(`captured ${c.frames} frames on ${capturedOn(c.perLink)} into ${c.path}${jumped > 0 ? ` (the ${jumped} chunks the fast fidelity jumped carry no frames: --fidelity full captures every one)` : ''}\n`);
      }
    } finally {
      bar.stop();
    }
  }
  if (o.json && vias.length > 1) io.out.write(JSON.stringify(both) + '\n');
  if (views) {
    const what = `${pairs.map((p) => `${p.src} -> ${p.dst}`).join(', ')}, ${o.length}, topology ${topology.name}, seed ${seed}`;
    for (const line of await writeViewOutputs(views, traceRuns, { command: 'copy', topology: topology.name, seed, lengthBytes, fidelity }, what)) io.err.write(line + '\n');
  }
}
