import { DconnectError } from '../core/errors.js';
import { PS_PER_S } from '../core/scheduler.js';
import { NicOperator, type NicMoveKind, type NicMoveObserver, type NicMoveStats } from '../host/dc/nic-operator.js';
import type { BlockDevice, NicDevice } from '../host/dc/manager.js';
import { ClientNode } from '../net/client-node.js';
import { buildFabric, hostOf, type ConnectFn, type Fabric, type FabricOptions } from '../topology/builder.js';
import { slotParams } from '../topology/device-registry.js';
import type { NicConfig } from '../topology/kinds/nic.js';
import type { Topology } from '../topology/schema.js';
import type { BootedHost } from './boot.js';
import { ssdOf } from './drive-images.js';
import { patternSeedOf, type FidelityMode } from './moves.js';
import { checkDriveRange, modeOf, pipelineInRange, pipelineOf, RelayPlan, slotsInOneAllocation, type MoveVia } from './engine/plan.js';
import { ClientStream, copyAcross, DriveRange, expectSeeded, patternOf, seedPattern, verifyEnds, type Endpoint } from './engine/endpoints.js';
import { addCounters, beginTransfer, bootHosts, checkAborted, deviceTable, runTransfer, TransferParts } from './engine/runner.js';
import { checkFaultsAlone, isDriveFault, simulatedFaults, type FaultReport, type SimulatedFaults } from './faults.js';
import { linkPayload, traceDelta, type LinkPayload } from './counters.js';
import { FastForward, type Fidelity } from './fast/fast-forward.js';

/** `net:NAME` names a client on a NIC's network as a move's end. */
export const NET_PREFIX = 'net:';

export function isNetEnd(name: string): boolean {
  return name.startsWith(NET_PREFIX);
}

/**
 * A move through a NIC (`runNicMove`): a drive's range to a client on the NIC's network (serve), a
 * client's stream onto a drive (ingest), or one client to another (pipeline), directly through a relay
 * in the box or through host memory.
 */
export interface NicMoveRequest {
  /** The fabric (`loadTopology('paper-2012-nic')`): it must have a NIC with clients on its network. */
  topology: Topology;
  /** A drive (`sda`) or a client (`net:client0`); at least one end is a client. */
  src: string;
  /** A drive (`sdb`) or a client (`net:client1`). */
  dst: string;
  /** Where in the source drive the range starts, bytes (a client takes none: a stream starts at its beginning). */
  srcOffset?: number;
  /** Where in the destination drive the range starts, bytes. */
  dstOffset?: number;
  /** Bytes to move: a multiple of the NIC's frame payload. */
  lengthBytes: number;
  /** Bytes per drive command (default the topology's copy.chunkBytes); a multiple of the frame payload. */
  chunkBytes?: number;
  /** Drive commands in flight (default the topology's copy.depth); a pipeline keeps depth x chunk bytes of frames in flight. */
  depth?: number;
  /** dc-buffer, cmb or nearest: direct, through a relay in the box; host: conventional, through host memory. */
  via: MoveVia;
  /** Seeds the source's bytes and every random stream: the same seed gives the same run. */
  seed: number;
  /** The host that runs the move (default the first, `host`): the NIC and the drive must be in its ExpEther group. */
  host?: string;
  /** The channel every cable uses (default the builder's); not with `faults`. */
  connect?: ConnectFn;
  /**
   * Cable faults, as `dconnect copy --fault` takes them (`loss=1%,reorder=1%[@LINK]`, `down=...`,
   * `buffer=...`; runtime/faults.ts): on ExpEther's cables (a NIC network's carry no retransmission and
   * are left out). Drive faults do not apply to NIC moves yet. The result counts what the cables did.
   */
  faults?: string[];
  /** Where each SSD keeps its bytes (the builder's `storeFor`; tests read them back); the moved drive's store must be a SparseMemory. */
  storeFor?: FabricOptions['storeFor'];
  /** Bytes the receiving end has so far, of the total (called from the simulation). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Called as the move starts, with the simulated time (faults' down windows count from it). */
  onStart?: (startPs: number) => void;
  /**
   * full (default): every TLP and frame; fast: serve and ingest jump their steady state's whole chunks
   * with a stated 99.7% interval (runtime/fast/fast-forward.ts, statistical; a pipeline runs in full).
   */
  fidelity?: FidelityMode;
  /** Progress of the verification after the move: bytes compared so far, of the length. */
  onVerify?: (doneBytes: number, totalBytes: number) => void;
  /**
   * Stops the run with DconnectError 'ABORTED': looked at before it starts, between slices of 2^20
   * events and between the verification's 4 MiB pieces (as `MovesRequest.signal`).
   */
  signal?: AbortSignal;
}

/** What `runNicMove` did: times in the simulation, the far end verified, the fabric's counters. */
export interface NicMoveResult {
  /** serve (drive to client), ingest (client to drive) or pipeline (client to client). */
  kind: NicMoveKind;
  /** direct (through a relay in the box) or conventional (through host memory). */
  mode: 'direct' | 'conventional';
  src: string;
  dst: string;
  srcOffset: number;
  dstOffset: number;
  bytes: number;
  /** The NIC the frames went through. */
  nic: string;
  /** Where the data was relayed: a DC buffer's or a CMB's name, or host memory. */
  relay: string;
  /** From the move's start to the last byte at the far end, simulated. */
  simulatedSeconds: number;
  mbPerSec: number;
  /** The far end's bytes equal the source's, byte for byte. */
  verified: boolean;
  /** Frames the NIC sent or received for the move. */
  frames: number;
  /** Drive commands the host issued (reads when serving, writes when ingesting; none in a pipeline). */
  commands: number;
  chunkBytes: number;
  depth: number;
  /** The host link's width, lanes. */
  hostLanes: number;
  seed: number;
  /** Payload bytes the move put on the host's link, each way. */
  hostLink: LinkPayload;
  /** Simulation events executed. */
  events: number;
  /** How the result was obtained (full: every TLP and frame; fast: with its interval). */
  fidelity: Fidelity;
  /** Every traced counter's change over the move (PCIe links, ports, bridges, devices, clients). */
  trace: Record<string, Record<string, number>>;
  /** Which device sits in each slot, by the slot's trace prefix (`box0.slot3` -> `nic0`). */
  devices: Record<string, string>;
  /** What the faulty cables did (with `faults`). */
  faults?: FaultReport;
}

/** The client of that name and the NIC slot whose network holds it; an unknown name lists the clients. */
export function clientHome(t: Topology, name: string): { box: string; slot: number } {
  const homes: { name: string; box: string; slot: number }[] = [];
  for (const b of t.boxes) b.slots.forEach((s, i) => s.kind === 'nic' && s.clients.forEach((c) => homes.push({ name: c.name, box: b.name, slot: i })));
  const twice = homes.find((x, i) => homes.findIndex((y) => y.name === x.name) !== i);
  if (twice) throw new DconnectError('BAD_TOPOLOGY', `topology ${t.name} has two clients named '${twice.name}'`, 'give each client on the NICs\' networks its own name');
  const h = homes.find((x) => x.name === name);
  if (!h && name === '') throw new DconnectError('BAD_OPTION', `'${NET_PREFIX}' names no client`, homes.length ? `name one: ${homes.map((x) => `${NET_PREFIX}${x.name}`).join(', ')}` : 'this topology has no NIC: try --topology paper-2012-nic');
  if (!h) {
    throw new DconnectError('UNKNOWN_DEVICE', `no client '${name}' on any NIC's network of topology ${t.name}`, homes.length ? `clients: ${homes.map((x) => `${NET_PREFIX}${x.name}`).join(', ')}` : "this topology has no NIC: try --topology paper-2012-nic");
  }
  return h;
}

function clientOf(fabric: Fabric, name: string): ClientNode {
  const c = fabric.nodes.get(name);
  if (!(c instanceof ClientNode)) throw new Error(`${name} is not a client node`);
  return c;
}

/** A NIC move checked, with its fabric built and booted and its relay buffers placed: ready to run. */
interface SetUp {
  kind: NicMoveKind;
  srcNet: boolean;
  dstNet: boolean;
  srcName: string;
  dstName: string;
  srcOffset: number;
  dstOffset: number;
  nicDev: NicDevice;
  nic: NicConfig;
  drive: BlockDevice | undefined;
  fabric: Fabric;
  host: BootedHost;
  chunk: number;
  depth: number;
  relay: string;
  slots: number[];
  faults: SimulatedFaults | null;
}

/**
 * Checks a request and gets it ready: every check of the request (ends, clients, sizes, the drive's
 * range, the relay's room) passes before anything runs, so a bad request fails with nothing moved.
 * The pipeline, the drive's range and the relay are the transfer engine's admission (engine/plan.ts).
 */
function setUp(req: NicMoveRequest): SetUp {
  const t = req.topology;
  const srcNet = isNetEnd(req.src);
  const dstNet = isNetEnd(req.dst);
  if (!srcNet && !dstNet) throw new DconnectError('BAD_OPTION', 'a NIC move needs a client at one end', `name one as ${NET_PREFIX}CLIENT, e.g. dconnect copy sda ${NET_PREFIX}client0`);
  const kind: NicMoveKind = srcNet && dstNet ? 'pipeline' : srcNet ? 'ingest' : 'serve';
  const srcName = srcNet ? req.src.slice(NET_PREFIX.length) : req.src;
  const dstName = dstNet ? req.dst.slice(NET_PREFIX.length) : req.dst;
  for (const [net, end, off] of [[srcNet, req.src, req.srcOffset], [dstNet, req.dst, req.dstOffset]] as const) {
    if (net && off !== undefined && off !== 0) throw new DconnectError('BAD_OPTION', `${end} is a client: it takes no offset (a stream starts at its beginning)`, `drop the offset ${off}`);
  }
  if (srcNet && dstNet && srcName === dstName) throw new DconnectError('OVERLAP', `source and destination are both client ${srcName}`, 'a pipeline goes from one client to another');
  const clientSide = kind === 'ingest' ? srcName : dstName;
  const home = clientHome(t, clientSide);
  if (kind === 'pipeline') {
    const other = clientHome(t, srcName);
    if (other.box !== home.box || other.slot !== home.slot) throw new DconnectError('BAD_OPTION', `${srcName} and ${dstName} are on different NICs' networks`, 'a pipeline goes through one NIC: pick two clients of the same NIC');
  }
  const p = slotParams(t, home.box, home.slot) as NicConfig;
  const F = p.framePayloadBytes;
  // A serve or an ingest keeps up to `depth` drive commands in flight: the same admission as moves
  // between drives (room in the NVMe queues, one entry empty). A pipeline has no drive.
  const { depth, chunk } = kind === 'pipeline' ? pipelineInRange(req) : pipelineOf(req);
  if (!Number.isInteger(req.lengthBytes) || req.lengthBytes <= 0 || req.lengthBytes % F !== 0) throw new DconnectError('UNALIGNED', `length ${req.lengthBytes} is not a positive multiple of the ${F}-byte frame payload`, `use a multiple of ${F} bytes, e.g. 64MiB`);
  if (!Number.isInteger(chunk) || chunk <= 0) throw new DconnectError('BAD_OPTION', `chunk size ${chunk} is not a positive number of bytes`, `use a multiple of ${F} bytes, e.g. 128KiB`);
  if (chunk % F !== 0) throw new DconnectError('UNALIGNED', `chunk size ${chunk} is not a multiple of the ${F}-byte frame payload`, `use a multiple of ${F} bytes`);

  checkFaultsAlone(req);
  const faults = req.faults?.length ? nicMoveFaults(t, req.faults, req.seed) : null;
  const fabric = buildFabric(t, { seed: req.seed, connect: faults?.connect ?? req.connect, storeFor: req.storeFor });
  const hostName = hostOf(fabric, req.host).name;
  const host = bootHosts(fabric, new Set([hostName]), chunk).get(hostName)!;
  const mgr = host.manager;
  const nicDev: NicDevice | undefined = mgr.devicesOf<NicDevice>('nic').find((n) => n.box === home.box && n.slot === home.slot);
  if (!nicDev) throw new DconnectError('UNKNOWN_DEVICE', `the NIC of ${clientSide}'s network (${home.box}.slot${home.slot}) is not one of ${hostName}'s devices`, `put the NIC slot in ${hostName}'s ExpEther group`);
  const drive = kind === 'serve' ? mgr.lookup(req.src) : kind === 'ingest' ? mgr.lookup(req.dst) : undefined;
  const srcOffset = req.srcOffset ?? 0;
  const dstOffset = req.dstOffset ?? 0;
  if (drive) checkDriveRange(drive, kind === 'serve' ? srcOffset : dstOffset, req.lengthBytes, chunk, kind === 'serve' ? 'source' : 'destination');

  // Relay buffers: serve and ingest one chunk per command in flight; a pipeline one frame per buffer,
  // as many as depth x chunk holds (and the receive ring takes). Direct: in the relay the planner
  // ranks first for the data's path (drive to NIC, NIC to drive, NIC to NIC); conventional: in host memory.
  const chunks = Math.ceil(req.lengthBytes / chunk);
  const count = kind === 'pipeline' ? Math.min((depth * chunk) / F, p.ringEntries - 1, req.lengthBytes / F) : Math.min(depth, chunks);
  const slotBytes = kind === 'pipeline' ? F : chunk;
  const from = kind === 'serve' ? drive! : nicDev;
  const to = kind === 'ingest' ? drive! : nicDev;
  const relay = new RelayPlan(mgr, slotsInOneAllocation(host.allocator)).place(req.via, from, to, count, slotBytes);
  return { kind, srcNet, dstNet, srcName, dstName, srcOffset, dstOffset, nicDev, nic: p, drive, fabric, host, chunk, depth, relay: relay.name, slots: relay.slots, faults };
}

/**
 * The cable faults of a NIC move (`NicMoveRequest.faults`, `dconnect copy ... net:CLIENT --fault`):
 * runtime/faults.ts's, refusing the drive faults a NIC move does not take yet.
 */
export function nicMoveFaults(t: Topology, specs: readonly string[], seed: number): SimulatedFaults {
  const drive = specs.find((f) => isDriveFault(f));
  if (drive) throw new DconnectError('BAD_OPTION', `--fault ${drive}: drive faults (media-error=..., store-error=..., disk-full=...) do not apply to moves through a NIC yet`, 'use cable faults (loss=1%,reorder=1%, down=..., buffer=...), or move between drives');
  return simulatedFaults(t, specs, seed, 0);
}

/**
 * Checks a NIC move as runNicMove would, without running it (for a caller that writes something, e.g.
 * a capture file, only once the request is known good). Throws the DconnectError runNicMove would.
 */
export function checkNicMove(req: NicMoveRequest): void {
  setUp({ ...req, connect: undefined, storeFor: undefined, onProgress: undefined, onStart: undefined, onVerify: undefined, signal: undefined });
}

/**
 * A move with a NIC, as a library call: builds the fabric, boots the host (its NIC driver among the
 * others), seeds the source (a drive's range, or the sending client's application data), runs the DC
 * operator's NIC move through a DC buffer (direct) or host memory (conventional), and verifies the far
 * end byte for byte. At full fidelity (the default) every TLP and frame is simulated, so the result is
 * exact by construction; `fidelity: 'fast'` jumps a serve's or an ingest's steady state (statistical,
 * with the interval in `fidelity`).
 */
export function runNicMove(req: NicMoveRequest): NicMoveResult {
  checkAborted(req.signal);
  const { kind, srcNet, dstNet, srcName, dstName, srcOffset, dstOffset, nicDev, nic: p, drive, fabric, host, chunk, depth, relay, slots, faults } = setUp(req);
  const F = p.framePayloadBytes;
  const chunks = Math.ceil(req.lengthBytes / chunk);

  // The ends: a drive's range filled before the move, or the sending client's application data (its
  // pattern by stream offset); a drive's range, or what the receiving client got.
  const seed = patternSeedOf(req.seed, 0);
  const srcEnd: Endpoint = kind === 'serve' ? new DriveRange(ssdOf(host, drive!), srcOffset) : new ClientStream(`${srcName}.data`, req.lengthBytes);
  const sink = dstNet ? new ClientStream(`${dstName}.received`, req.lengthBytes) : null;
  const dstEnd: Endpoint = sink ?? new DriveRange(ssdOf(host, drive!), dstOffset);
  seedPattern(srcEnd, req.lengthBytes, seed);
  expectSeeded(dstEnd, srcEnd, req.lengthBytes, seed);
  const appData = patternOf(srcEnd, seed);

  // The host CPU's time in the transfer stack, traced like a client's (the limit analysis weighs it).
  const hostCpu = { cpuBusyPs: 0 };
  fabric.trace.register(`hostcpu.${host.host.name}`, () => hostCpu);
  const { before, eventsBefore, startPs } = beginTransfer(fabric, (ps) => {
    faults?.start(ps);
    req.onStart?.(ps);
  });
  // The parts that must end: the operator's move and each client's stream.
  const parts = new TransferParts<NicMoveStats | null>(fabric.scheduler);
  const clientPart = (done: (r: null) => void, fail: (e: Error) => void) => (e: Error | null) => (e ? fail(e) : done(null));
  const stream = 1;
  if (srcNet) {
    parts.add((done, fail) =>
      clientOf(fabric, srcName).send(stream, nicDev.mac, req.lengthBytes, F, (off, len) => {
        const out = new Uint8Array(len);
        appData(off, out);
        return out;
      }, clientPart(done, fail)),
    );
  }
  if (sink) parts.add((done, fail) => clientOf(fabric, dstName).receive(stream, nicDev.mac, req.lengthBytes, F, (off, data) => sink.receive(off, data), clientPart(done, fail)));
  // The fast path (serve, ingest): at chunk boundaries FastForward may answer "skip k chunks"; the
  // operator and the client relabel the frames after the gap (NicMoveObserver), the skipped bytes move
  // functionally here, and time and counters get the skipped chunks' share at the end.
  // A cable that goes down at a time runs at full fidelity: the fast one could jump over the outage.
  const fast = (req.fidelity ?? 'full') === 'fast' && kind !== 'pipeline' && !faults?.needsFullFidelity;
  const client = clientOf(fabric, kind === 'serve' ? dstName : srcName);
  const framesPerChunk = chunk / F;
  // A receiving client's credit runs up to a window past the frames it consumed: the chunks after a
  // jump must hold it (and one more), so no credit ever names a frame beyond the shortened stream.
  const tailChunks = 1 + (kind === 'serve' ? Math.ceil(client.params.windowFrames / framesPerChunk) : 0);
  const ff = fast
    ? new FastForward({
        startPs,
        chunks,
        fullChunks: Math.floor(req.lengthBytes / chunk),
        deterministic: () => !fabric.rng.drew(),
        // No digest: with the whole fabric's wired in, no state repeated within the exact search, which
        // only delayed the statistical jump (docs/architecture.md, "Moves with a NIC": measured why).
        digest: null,
        counters: () => fabric.trace.snapshot(),
        tailChunks,
        // A serve's chunk intervals wander (about 10% chunk to chunk, in runs): its mean is known to
        // 0.3% only after thousands of chunks, so it jumps once the interval is within 2% (stated).
        targetRelative: kind === 'serve' ? 0.02 : 0.003,
      })
    : null;
  let skippedFrames = 0;
  const observer: NicMoveObserver | undefined = ff
    ? {
        chunkDone: (c, next) => ff.chunkWritten(c, next, fabric.scheduler.now()),
        skipped: (gapFrame, frames) => {
          client.skipFrames(stream, gapFrame, frames);
          skippedFrames += frames;
          // The skipped frames' bytes, by reference as a reflink would (the far end's range after the
          // move is the source's pattern, shifted).
          copyAcross(srcEnd, dstEnd, gapFrame * F, frames * F);
          sink?.receivedElsewhere(frames * F);
        },
      }
    : undefined;
  const opPart = parts.add((done, fail) =>
    new NicOperator(fabric.scheduler).move(
      {
        kind,
        nic: nicDev.driver,
        drive,
        driveOffset: kind === 'serve' ? srcOffset : dstOffset,
        fromMac: srcNet ? clientOf(fabric, srcName).mac : undefined,
        toMac: dstNet ? clientOf(fabric, dstName).mac : undefined,
        stream,
        lengthBytes: req.lengthBytes,
        chunkBytes: chunk,
        depth,
        slots,
        frameBytes: F,
        perFrameCpuNs: p.hostPacketCpuNs,
        cpu: hostCpu,
        observer,
      },
      done,
      fail,
    ),
  );
  runTransfer(fabric, parts, { progress: req.onProgress ? () => req.onProgress!(dstEnd.arrived(), req.lengthBytes) : undefined, signal: req.signal });
  const stats = parts.settled('the NIC move')[opPart]!;
  let endPs = parts.endPs;
  const after = fabric.trace.snapshot();
  let fidelity: Fidelity = {
    mode: 'full',
    exact: true,
    relativeError99: 0,
    detailedChunks: chunks,
    totalChunks: chunks,
    method: req.fidelity === 'fast' ? 'full: every TLP and frame simulated (a pipeline has no fast path)' : 'full: every TLP and frame simulated',
  };
  if (ff) {
    const o = ff.finish(endPs);
    endPs = o.endPs;
    fidelity = o.fidelity;
    addCounters(after, o.counterAdds);
  }

  // Verify the far end against the source's pattern, byte for byte.
  const [verified] = verifyEnds([{ expected: appData, dst: dstEnd }], req.lengthBytes, req);

  const trace = traceDelta(before, after);
  const elapsedPs = endPs - startPs;
  const link = host.host.link.name;
  const seconds = elapsedPs / PS_PER_S;
  return {
    kind,
    mode: modeOf(req.via),
    src: req.src,
    dst: req.dst,
    srcOffset,
    dstOffset,
    bytes: req.lengthBytes,
    nic: nicDev.name,
    relay,
    simulatedSeconds: seconds,
    mbPerSec: req.lengthBytes / seconds / 1e6,
    verified,
    frames: stats.frames,
    commands: stats.commands + skippedFrames / framesPerChunk,
    chunkBytes: chunk,
    depth,
    hostLanes: host.host.config.link.lanes,
    seed: req.seed,
    hostLink: linkPayload(trace, link, elapsedPs),
    events: fabric.scheduler.eventsExecuted - eventsBefore,
    fidelity,
    trace,
    devices: deviceTable([host]),
    ...(faults ? { faults: faults.report() } : {}),
  };
}
