import { checkFaultsAlone, simulatedFaults, type FaultReport } from './faults.js';
import { MAX_BURST_BYTES } from '../pcie/burst.js';
import { DconnectError } from '../core/errors.js';
import { PS_PER_S } from '../core/scheduler.js';
import { sha256InSteps, startPatternDigest, type PendingDigest } from '../devices/pattern-digest.js';
import { blockName, type BootedHost } from './boot.js';
import { linkPayload, traceDelta, type LinkPayload } from './counters.js';
import { digestFabric } from './fast/fabric-digest.js';
import { FastForward, type Fidelity } from './fast/fast-forward.js';
import { JointFastForward } from './fast/joint-forward.js';
import { buildFabric, hostOf, type ConnectFn } from '../topology/builder.js';
import { FIRST_HOST, groupOf, hostsOf, type Topology } from '../topology/schema.js';
import { checkDisjoint, modeOf, pipelineOf, RelayPlan, slotPerAllocation, validateCopy, type MoveVia } from './engine/plan.js';
import { contentOf, copyAcross, DriveRange, expectSeeded, patternOf, seedPattern, verifyEnds } from './engine/endpoints.js';
import { addCounters, beginTransfer, bootHosts, checkAborted, deviceTable, runTransfer, TransferParts } from './engine/runner.js';
import type { BlockDevice } from '../host/dc/manager.js';
import { DcOperator, type MoveHandle, type MoveObserver, type MoveStats } from '../host/dc/operator.js';
import { DEFAULT_FIRST_WINDOW_PS, TraceSampler, type TraceRecordingRequest } from './trace-sampler.js';
import { loadImages, saveDrives, ssdOf, type DriveImage, type DriveSave } from './drive-images.js';


/** A jump's functional copy reports progress after each slice of this many bytes (the copy itself is one loop). */
const FUNCTIONAL_SLICE_BYTES = 64 << 20;
export type FidelityMode = 'fast' | 'full';
export { MOVE_VIAS, type MoveVia, type Via } from './engine/plan.js';
export { bytesEqual } from './engine/endpoints.js';
export { pipelineOf, validateCopy } from './engine/plan.js';

/** One move of a set: a source range to a destination range (the length is the set's). */
export interface MovePair {
  src: string;
  srcOffset: number;
  dst: string;
  dstOffset: number;
  /** The host that runs this move (default the request's `host`): both devices must be in its ExpEther group. */
  host?: string;
}

export interface MovesRequest {
  topology: Topology;
  /**
   * The host whose DC command runs the moves (default the first, `host`): it boots, finds its own
   * ExpEther group's devices and names them (sda, sdb, ... dcbuf0); a pair may name another (`MovePair.host`).
   * The host link counters (`hostLink`, `hostLanes`) are this host's.
   */
  host?: string;
  /** Moved concurrently, each through its own relay slots. */
  pairs: MovePair[];
  /** Bytes per move. */
  lengthBytes: number;
  /** Commands in flight per move over its source and destination together; default the topology's copy.depth. */
  depth?: number;
  chunkBytes?: number;
  via: MoveVia;
  seed: number;
  /** fast (default): jump the steady state, exactly where it repeats, else with a stated interval; full: every TLP. */
  fidelity?: FidelityMode;
  /**
   * tlp (default): every TLP its own object and events, the reference. burst: the TLPs of one flow
   * that per-TLP sends back to back travel as one burst (docs/architecture.md "Two granularities");
   * implies the full fidelity and frame-object channels; a cable with injected faults carries a burst as
   * its frames (runtime/faults.ts).
   */
  granularity?: Granularity;
  /** Largest burst at burst granularity, bytes (default DEFAULT_BURST_BYTES; 4 KiB..1 MiB). */
  burstBytes?: number;
  /** Hash each destination range (default true); experiments that never show the digest skip it. Verification is unaffected. */
  sha256?: boolean;
  /** Keep every chunk's completion time (equivalence tests; one move only). */
  recordChunkTimes?: boolean;
  /** Progress: bytes written to the destinations so far, of all moves (called from the simulation). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Progress of the verification after the moves: bytes compared so far, of all moves (a long move's verification takes a while too). */
  onVerify?: (doneBytes: number, totalBytes: number) => void;
  /** The channel every cable uses (default the builder's: in-memory frames; `connectBytes` encodes each one). */
  connect?: ConnectFn;
  /**
   * Faults, as `dconnect copy --fault` takes them: `loss=1%,reorder=1%,dup=0.5%,corrupt=0.1%[@LINK]`,
   * `down=START+DURATION[@LINK]`, `buffer=SIZE[@LINK]`, `media-error=DRIVE:LBA[:write]`
   * (runtime/faults.ts `simulatedFaults`); the result counts what the cables did (`faults`). Not with
   * `connect` (which lays every cable itself). A `down=` window makes the run go at full fidelity.
   */
  faults?: string[];
  /** Called once the host has booted and the moves are about to start, with the simulated time (faults' down windows count from it). */
  onStart?: (startPs: number) => void;
  /** Logical blocks whose reads fail on a drive (fault injection: `--fault media-error=sdb:LBA`). */
  mediaErrors?: { device: string; lba: number; op?: 'read' | 'write' }[];
  /**
   * Record what a trace-event file or a timeline is drawn from (runtime/trace-sampler.ts): counters
   * sampled every window, each NVMe command. Full fidelity only (the fast one jumps chunks).
   */
  traceRecording?: TraceRecordingRequest;
  /** Raw images loaded into drives after boot (`--image`): a source with one keeps its bytes (no seeded pattern) and is verified against them. */
  images?: DriveImage[];
  /** Drives written out after the moves (`--save`). */
  saves?: DriveSave[];
  /**
   * Stops the run with DconnectError 'ABORTED': looked at before it starts, between slices of 2^20
   * events and between the verification's 4 MiB pieces. The run is synchronous, so on this thread an
   * abort can come only from a callback (`onProgress`); `runMovesInBackground` cancels from outside.
   */
  signal?: AbortSignal;
}

export type { LinkPayload } from './counters.js';

export type Granularity = 'tlp' | 'burst';
/** Default burst: 64 KiB, four SSD stream units, so a flow's bursts outnumber its chunks only by a little. */
export const DEFAULT_BURST_BYTES = 65536;

/** The burst size a request runs with (0 at per-TLP granularity), checked. */
export function burstBytesOf(req: Pick<MovesRequest, 'granularity' | 'burstBytes' | 'fidelity'>): number {
  if ((req.granularity ?? 'tlp') === 'tlp') return 0;
  if (req.fidelity === 'fast') throw new DconnectError('BAD_OPTION', 'the fast fidelity runs at per-TLP granularity only (its state digests do not cover bursts)', 'use --fidelity full with --granularity burst, or --granularity tlp');
  const b = req.burstBytes ?? DEFAULT_BURST_BYTES;
  if (!Number.isInteger(b) || b < 4096 || b > MAX_BURST_BYTES || b % 4 !== 0) throw new DconnectError('BAD_OPTION', `burst size ${b} is outside 4KiB..1MiB (a multiple of 4 bytes)`, 'use e.g. --burst-bytes 64KiB');
  return b;
}

/** One move's outcome. */
export interface MoveResult {
  mode: 'direct' | 'conventional';
  src: string;
  dst: string;
  srcOffset: number;
  dstOffset: number;
  bytes: number;
  /** What relayed the data: a DC buffer's name (`dcbuf0`), an SSD's CMB (`sdb CMB`), or host memory. */
  relay: string;
  /** From the common start to this move's last write, s. */
  simulatedSeconds: number;
  mbPerSec: number;
  verified: boolean;
  sha256: string;
  commands: { read: number; write: number };
  fidelity: Fidelity;
  /** The host that ran the move, when it is not the first (`host`); src, dst and relay are that host's names. */
  host?: string;
  chunkDonePs?: number[];
}

export interface MovesResult {
  chunkBytes: number;
  depth: number;
  hostLanes: number;
  seed: number;
  moves: MoveResult[];
  /** All moves together: total bytes over the time until the last move ended. */
  aggregate: { bytes: number; simulatedSeconds: number; mbPerSec: number; verified: boolean };
  hostLink: LinkPayload;
  /** Events simulated (jumped chunks cost none). */
  events: number;
  /** Every trace counter over the moves (deltas). */
  trace: Record<string, Record<string, number>>;
  /** Which device sits in each slot, by the slot's trace prefix (`box0.slot2` -> `dcbuf0`): names for the counters (a host other than the first's as `host1:sda`). */
  devices: Record<string, string>;
  /** The set's fidelity: exact if every move's is, the largest error of any move, chunks summed. */
  fidelity: Fidelity;
  /** Which granularity produced it; at burst, the burst size and the stated bound on simulated time's error. */
  granularity: GranularityInfo;
  /** With `faults`: what the faulty cables did (frames that crossed them, lost, lost while down, corrupted, duplicated, reordered) and the frames shrunk buffers dropped. */
  faults?: FaultReport;
}

export interface GranularityInfo {
  mode: Granularity;
  burstBytes?: number;
  /** Stated bound on |simulated time - per-TLP's| / per-TLP's (docs/architecture.md "Two granularities"). */
  relativeErrorBound?: number;
}

/** Stated bound on burst granularity's relative error in simulated time (checked by test/integration/burst-equivalence.test.ts). */
export const BURST_RELATIVE_ERROR_BOUND = 0.03; // on the matrix, measured -0.74%..+0.50% at 2 MiB, -1.67%..+0.72% at 32 MiB (2026-12-06; the test prints each cell); off it, paper-2012 conventional x1 with MRRS >= 1024 is 7-10% fast (architecture.md)

/** A move simulated in full: exact per TLP; at burst granularity within the stated bound (reported where a 99.7% interval goes). */
export function fullFidelity(burstBytes: number, chunks: number): Fidelity {
  return burstBytes > 0
    ? { mode: 'full', exact: false, relativeError99: BURST_RELATIVE_ERROR_BOUND, detailedChunks: chunks, totalChunks: chunks, method: 'full at burst granularity: every burst simulated' }
    : { mode: 'full', exact: true, relativeError99: 0, detailedChunks: chunks, totalChunks: chunks, method: 'full: every TLP simulated' };
}

export function granularityInfo(burstBytes: number): GranularityInfo {
  return burstBytes > 0 ? { mode: 'burst', burstBytes, relativeErrorBound: BURST_RELATIVE_ERROR_BOUND } : { mode: 'tlp' };
}

/** Where a device name or serial is found in a topology: which host names it so, in which group and slot. */
export interface DeviceHome {
  host: string;
  groupId: number;
  /** The name that host gives it (sda, ...). */
  name: string;
  /** The slot, `box0.slot3`, and its parameter path. */
  slot: string;
  path: string;
}

/**
 * Every host's block device called `nameOrSerial`, from the topology alone: a host names its group's
 * SSDs sda, sdb, ... in slot order (the order its enumeration finds them), and serials are the slots'.
 * For explaining a device one host does not have; the host's own DC manager is what moves use.
 */
export function deviceHomes(t: Topology, nameOrSerial: string): DeviceHome[] {
  const out: DeviceHome[] = [];
  for (const h of hostsOf(t)) {
    let i = 0;
    t.boxes.forEach((b, bi) =>
      b.slots.forEach((s, si) => {
        if (s.kind !== 'ssd' || groupOf(t, s) !== h.groupId) return;
        const name = blockName(i++);
        if (name === nameOrSerial || s.serial === nameOrSerial) out.push({ host: h.name, groupId: h.groupId, name, slot: `${b.name}.slot${si}`, path: `boxes.${bi}.slots.${si}.group` });
      }),
    );
  }
  return out;
}

/**
 * A pair's device on the host that runs the move. One the host does not have but another host does (by
 * serial, or by the name that host gives it) is refused naming both groups: a move cannot cross
 * ExpEther groups, since a host's enumeration never finds another group's devices.
 */
function lookupOn(host: BootedHost, t: Topology, nameOrSerial: string, role: string): BlockDevice {
  try {
    return host.manager.lookup(nameOrSerial);
  } catch (e) {
    if (!(e instanceof DconnectError) || e.code !== 'UNKNOWN_DEVICE') throw e;
    const own = host.host;
    const other = deviceHomes(t, nameOrSerial).find((d) => d.host !== own.name);
    if (!other) throw e;
    const what = other.name === nameOrSerial ? `${other.host}'s ${other.name}` : `${other.host}'s ${other.name} (serial ${nameOrSerial})`;
    throw new DconnectError(
      'UNKNOWN_DEVICE',
      `the ${role} '${nameOrSerial}' is not a device of host '${own.name}' (ExpEther group ${own.groupId}): it is ${what}, in ${other.slot}, ExpEther group ${other.groupId}; a move cannot cross ExpEther groups`,
      `run the move on host '${other.host}' (copy --host ${other.host}), with both devices in group ${other.groupId}; or put ${other.slot} in group ${own.groupId} (--set ${other.path}=${own.groupId})`,
    );
  }
}


/** The seed of move i's source data: move 0's is the single-move seed, the others differ so that crossed moves are caught. */
export function patternSeedOf(seed: number, move: number): number {
  return ((seed ^ 0x5eed) ^ Math.imul(move, 0x9e3779b1)) >>> 0;
}

/**
 * The DC command as a library call, for one move or several at once: builds the fabric, boots the
 * host, fills each source range with seeded data, moves them concurrently (directly through a DC
 * buffer or through host memory), and verifies every destination byte for byte against its source.
 *
 * Relay slots: each move gets `depth` slots of its own (one chunk each), carved from the relay in
 * order; concurrent moves never share a slot. A slot holds a chunk from its read until its write
 * ends, so sharing would only let one move's backlog starve another; fixed slots keep each move's
 * pipeline exactly the single move's, and the DC buffer has room for many (64 MiB holds 170 moves
 * of 3 x 128 KiB).
 */
export function runMoves(req: MovesRequest): MovesResult {
  checkAborted(req.signal);
  const t = req.topology;
  const { depth, chunk } = pipelineOf(req);
  if (req.pairs.length < 1) throw new DconnectError('BAD_OPTION', 'no move given', 'name a source and a destination: dconnect copy sda sdb');
  if (req.recordChunkTimes && req.pairs.length > 1) throw new Error('recordChunkTimes is for one move');
  const burstBytes = burstBytesOf(req);
  checkFaultsAlone(req);
  const faults = req.faults?.length ? simulatedFaults(t, req.faults, req.seed, burstBytes) : null;
  const fabric = buildFabric(t, { seed: req.seed, connect: faults?.connect ?? req.connect, burstBytes });
  // The hosts that run moves boot, one after the other in the fabric's order; the others stay off.
  const mainHost = hostOf(fabric, req.host);
  const pairHosts = req.pairs.map((p) => hostOf(fabric, p.host ?? mainHost.name));
  const booted = bootHosts(fabric, new Set([mainHost.name, ...pairHosts.map((h) => h.name)]), chunk);
  const host = booted.get(mainHost.name)!;
  const mgr = host.manager;
  const hostsOfMoves = pairHosts.map((h) => booted.get(h.name)!);
  const moves = req.pairs.map((p, i) => ({ ...p, src: lookupOn(hostsOfMoves[i], t, p.src, 'source'), dst: lookupOn(hostsOfMoves[i], t, p.dst, 'destination') }));
  for (const m of [...(req.mediaErrors ?? []), ...(faults?.mediaErrors ?? [])]) {
    const d = mgr.lookup(m.device);
    if (m.lba * d.blockBytes >= d.capacityBytes) throw new DconnectError('OUT_OF_RANGE', `--fault media-error=${m.device}:${m.lba}: block ${m.lba} is beyond ${d.name}'s ${d.capacityBytes / d.blockBytes} blocks`);
    (m.op === 'write' ? ssdOf(host, d).badWriteBlocks : ssdOf(host, d).badBlocks).add(m.lba);
  }
  for (const m of moves) validateCopy(m.src, m.srcOffset, m.dst, m.dstOffset, req.lengthBytes, chunk);
  checkDisjoint(moves, req.lengthBytes);

  // Each host has its own relays (names are per host: both may have a dcbuf0) and its own memory.
  const slotCount = Math.min(depth, Math.ceil(req.lengthBytes / chunk));
  const plans = new Map([...booted].map(([name, h]) => [name, new RelayPlan(h.manager, slotPerAllocation(h.allocator))]));
  const relays = moves.map((m, i) => plans.get(hostsOfMoves[i].host.name)!.place(req.via, m.src, m.dst, slotCount, chunk));

  // Each source range holds seeded data before the move (as if written earlier); its digest is
  // hashed on another core while the moves are simulated (see pattern-digest.ts).
  const srcEnds = moves.map((m) => new DriveRange(ssdOf(host, m.src), m.srcOffset));
  const dstEnds = moves.map((m) => new DriveRange(ssdOf(host, m.dst), m.dstOffset));
  const seeds = moves.map((_, i) => patternSeedOf(req.seed, i));
  loadImages(host, req.images ?? []);
  const imaged = new Set((req.images ?? []).map((im) => mgr.lookup(im.device)));
  const fromImage = moves.map((m) => imaged.has(m.src));
  srcEnds.forEach((e, i) => {
    if (fromImage[i]) return;
    seedPattern(e, req.lengthBytes, seeds[i]);
    expectSeeded(dstEnds[i], e, req.lengthBytes, seeds[i]);
  });
  const srcDigests: (PendingDigest | null)[] = moves.map((m, i) => (req.sha256 === false || fromImage[i] ? null : startPatternDigest(seeds[i], m.srcOffset, req.lengthBytes)));

  const { before, eventsBefore, startPs } = beginTransfer(fabric, (ps) => {
    faults?.start(ps);
    req.onStart?.(ps);
  });
  const parts = new TransferParts<MoveStats>(fabric.scheduler);
  // Each host's DC operator runs that host's moves.
  const operators = new Map([...booted.keys()].map((name) => [name, new DcOperator(fabric.scheduler)]));
  const chunks = Math.ceil(req.lengthBytes / chunk);
  const fullChunks = Math.floor(req.lengthBytes / chunk);
  // A cable that goes down at a time runs at full fidelity: the fast one could jump over the outage.
  const fast = !faults?.needsFullFidelity && (req.fidelity ?? (burstBytes > 0 ? 'full' : 'fast')) === 'fast';
  if (fast && req.traceRecording) throw new DconnectError('BAD_OPTION', 'a trace or timeline is recorded at the full fidelity only (the fast one jumps over most chunks)', 'use --fidelity full (the default with --trace-events and --timeline)');
  const sampler = req.traceRecording ? new TraceSampler(fabric.trace, fabric.scheduler, req.traceRecording.firstWindowPs ?? DEFAULT_FIRST_WINDOW_PS, req.traceRecording.extra) : null;
  const handles: MoveHandle[] = [];
  const total = req.lengthBytes * moves.length;
  /** Bytes the skipped chunks moved functionally so far (progress counts them with the simulated ones). */
  let functionalBytes = 0;
  const progressNow = () => dstEnds.reduce((n, d) => n + d.arrived(), 0) + functionalBytes;
  /**
   * The skipped chunks' bytes move functionally, source store to destination store, in slices of
   * FUNCTIONAL_SLICE_BYTES with progress after each: a jump over 200 GiB is most of a long run's wall time.
   */
  const moveBytes = (i: number, fromChunk: number, count: number) => {
    const len = count * chunk;
    for (let at = 0; at < len; at += FUNCTIONAL_SLICE_BYTES) {
      const n = Math.min(FUNCTIONAL_SLICE_BYTES, len - at);
      copyAcross(srcEnds[i], dstEnds[i], fromChunk * chunk + at, n);
      functionalBytes += n;
      req.onProgress?.(Math.min(progressNow(), total), total);
    }
  };

  const single =
    fast && moves.length === 1
      ? new FastForward({
          startPs,
          chunks,
          fullChunks,
          deterministic: () => !fabric.rng.drew(),
          digest: () => digestFabric(fabric, [...[...booted.values()].flatMap((h) => h.manager.blockDevices().map((b) => b.driver)), handles[0]]),
          counters: () => fabric.trace.snapshot(),
        })
      : null;
  const joint = fast && moves.length > 1 ? new JointFastForward({ startPs, moves: moves.map(() => ({ chunks, fullChunks })), counters: () => fabric.trace.snapshot() }) : null;
  const chunkDone: number[] = [];
  const observerOf = (i: number): MoveObserver | undefined => (sampler ? sampler.observer(i, innerObserverOf(i)) : innerObserverOf(i));
  const innerObserverOf = (i: number): MoveObserver | undefined => {
    if (single) {
      return {
        chunkWritten: (c, nextRead) => {
          const skip = single.chunkWritten(c, nextRead, fabric.scheduler.now());
          if (skip > 0) moveBytes(0, nextRead, skip);
          return skip;
        },
      };
    }
    if (joint) {
      return {
        chunkWritten: (_c, nextRead) => {
          const skips = joint.chunkWritten(i, fabric.scheduler.now(), handles.map((h) => h.nextRead()));
          if (!skips) return 0;
          // Every other move skips now, in the middle of its chunk; this one skips as the operator's answer.
          skips.forEach((k, j) => {
            const from = j === i ? nextRead : handles[j].nextRead();
            moveBytes(j, from, k);
            if (j !== i) handles[j].skipAhead(k);
          });
          return skips[i];
        },
      };
    }
    if (req.recordChunkTimes) return { chunkWritten: (c) => ((chunkDone[c] = fabric.scheduler.now()), 0) };
    return undefined;
  };
  sampler?.start();
  moves.forEach((m, i) =>
    parts.add((done, fail) =>
      handles.push(
        operators.get(hostsOfMoves[i].host.name)!.move({ src: m.src, srcOffset: m.srcOffset, dst: m.dst, dstOffset: m.dstOffset, lengthBytes: req.lengthBytes, chunkBytes: chunk, depth, slots: relays[i].slots, observer: observerOf(i) }, done, fail),
      ),
    ),
  );
  runTransfer(fabric, parts, {
    progress: req.onProgress ? () => req.onProgress!(Math.min(progressNow(), total), total) : undefined,
    signal: req.signal,
  });
  sampler?.finish();
  const done = parts.settled('the move');
  const after = fabric.trace.snapshot();
  let endPs = done.map((s) => s.endPs);
  let skipped = moves.map(() => 0);
  const full = fullFidelity(burstBytes, chunks);
  let fidelities: Fidelity[] = moves.map(() => ({ ...full }));
  let chunkDonePs: number[] | undefined = req.recordChunkTimes ? chunkDone : undefined;
  if (single) {
    const o = single.finish(done[0].endPs);
    endPs = [o.endPs];
    skipped = [single.skipped().count];
    fidelities = [o.fidelity];
    if (req.recordChunkTimes) chunkDonePs = o.chunkDonePs;
    addCounters(after, o.counterAdds);
  } else if (joint) {
    const o = joint.finish(endPs);
    endPs = o.endPs;
    skipped = o.skipped;
    fidelities = o.fidelity;
    addCounters(after, o.counterAdds);
  }

  // Verify: each destination range must equal its source (its seeded pattern, or its image's bytes), byte for byte.
  const verifiedEnds = verifyEnds(
    moves.map((_, i) => ({ expected: fromImage[i] ? contentOf(srcEnds[i]) : patternOf(srcEnds[i], seeds[i]), dst: dstEnds[i] })),
    req.lengthBytes,
    req,
  );
  const results: MoveResult[] = moves.map((m, i) => {
    const verified = verifiedEnds[i];
    // The destination's digest: when every byte equals the source's, it is the source's digest
    // (hashed during the move); otherwise the destination is hashed as it is.
    const digest = srcDigests[i];
    const hashDst = () => sha256InSteps(req.lengthBytes, contentOf(dstEnds[i]));
    const sha256 = digest === null ? (fromImage[i] && req.sha256 !== false ? hashDst() : '') : verified ? digest.result() : hashDst();
    const seconds = (endPs[i] - startPs) / PS_PER_S;
    return {
      mode: modeOf(req.via),
      src: m.src.name,
      dst: m.dst.name,
      srcOffset: m.srcOffset,
      dstOffset: m.dstOffset,
      bytes: req.lengthBytes,
      relay: relays[i].name,
      simulatedSeconds: seconds,
      mbPerSec: req.lengthBytes / seconds / 1e6,
      verified,
      sha256,
      commands: { read: done[i].readCommands + skipped[i], write: done[i].writeCommands + skipped[i] },
      fidelity: fidelities[i],
      ...(hostsOfMoves[i].host.name !== FIRST_HOST ? { host: hostsOfMoves[i].host.name } : {}),
      ...(chunkDonePs ? { chunkDonePs: chunkDonePs.map((x) => x - startPs) } : {}),
    };
  });

  saveDrives(host, req.saves ?? []);
  const lastEndPs = Math.max(...endPs);
  const elapsedPs = lastEndPs - startPs;
  const trace = traceDelta(before, after);
  const exact = fidelities.every((f) => f.exact);
  const devices = deviceTable(booted.values());
  const link = mainHost.link.name;
  if (sampler) req.traceRecording!.done({ samples: sampler.samples, commands: sampler.commands, droppedCommands: sampler.droppedCommands, windowPs: sampler.windowPs, coarsened: sampler.coarsened, devices });
  return {
    chunkBytes: chunk,
    depth,
    hostLanes: mainHost.config.link.lanes,
    seed: req.seed,
    moves: results,
    aggregate: { bytes: total, simulatedSeconds: elapsedPs / PS_PER_S, mbPerSec: total / (elapsedPs / PS_PER_S) / 1e6, verified: results.every((r) => r.verified) },
    hostLink: linkPayload(trace, link, elapsedPs),
    events: fabric.scheduler.eventsExecuted - eventsBefore - (sampler?.ownEvents ?? 0),
    trace,
    devices,
    granularity: granularityInfo(burstBytes),
    ...(faults ? { faults: faults.report() } : {}),
    fidelity:
      fidelities.length === 1
        ? fidelities[0]
        : {
            mode: fidelities[0].mode,
            exact,
            relativeError99: Math.max(...fidelities.map((f) => f.relativeError99)),
            detailedChunks: fidelities.reduce((n, f) => n + f.detailedChunks, 0),
            totalChunks: fidelities.reduce((n, f) => n + f.totalChunks, 0),
            method: fidelities[0].method,
          },
  };
}
