import { createHash } from 'node:crypto';
import { DconnectError } from '../../core/errors.js';
import { PS_PER_S } from '../../core/scheduler.js';
import { startPatternDigest } from '../../devices/pattern-digest.js';
import { patternBytes, type SparseMemory } from '../../devices/sparse-memory.js';
import { NvmeSsd } from '../../devices/nvme-ssd.js';
import { boot, type BootedHost } from '../../runtime/boot.js';
import { digestFabric } from '../../runtime/fast/fabric-digest.js';
import { FastForward, type Fidelity } from '../../runtime/fast/fast-forward.js';
import { buildFabric } from '../../topology/builder.js';
import type { Topology } from '../../topology/schema.js';
import type { BlockDevice } from './manager.js';
import { DcOperator, type MoveHandle, type MoveStats } from './operator.js';

export type { Fidelity } from '../../runtime/fast/fast-forward.js';
export type FidelityMode = 'fast' | 'full';

export type Via = 'dc-buffer' | 'host';

export interface CopyRequest {
  topology: Topology;
  src: string;
  srcOffset: number;
  dst: string;
  dstOffset: number;
  lengthBytes: number;
  /** Commands in flight over source and destination together; default the topology's copy.depth. */
  depth?: number;
  chunkBytes?: number;
  via: Via;
  seed: number;
  /** fast (default): jump the steady state, exactly where it repeats, else with a stated interval; full: every TLP. */
  fidelity?: FidelityMode;
  /** Hash the destination range (default true); experiments that never show the digest skip it. Verification is unaffected. */
  sha256?: boolean;
  /** Keep every chunk's completion time in the result (equivalence tests). */
  recordChunkTimes?: boolean;
  /** Progress callback: bytes written to the destination so far (called from the simulation). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface LinkPayload {
  upstreamPayloadBytes: number;
  downstreamPayloadBytes: number;
  upstreamTlps: number;
  downstreamTlps: number;
  upstreamUtilization: number;
  downstreamUtilization: number;
}

export interface CopyResult {
  mode: 'direct' | 'conventional';
  src: string;
  dst: string;
  srcOffset: number;
  dstOffset: number;
  bytes: number;
  chunkBytes: number;
  depth: number;
  hostLanes: number;
  seed: number;
  simulatedSeconds: number;
  mbPerSec: number;
  verified: boolean;
  sha256: string;
  hostLink: LinkPayload;
  commands: { read: number; write: number };
  events: number;
  /** Every trace counter at the end of the move (deltas over the move for links). */
  trace: Record<string, Record<string, number>>;
  /** How the numbers were obtained: per-TLP, an exact jump, or a statistical one with its interval. */
  fidelity: Fidelity;
  /** Completion time of every chunk from the start of the move, ps (only with recordChunkTimes). */
  chunkDonePs?: number[];
}


/** Validates a copy against the devices before anything is written. */
export function validateCopy(src: BlockDevice, srcOffset: number, dst: BlockDevice, dstOffset: number, length: number, chunk: number): void {
  const bs = src.blockBytes;
  const checks: [number, string][] = [
    [srcOffset, `source offset ${srcOffset}`],
    [dstOffset, `destination offset ${dstOffset}`],
    [length, `length ${length}`],
    [chunk, `chunk size ${chunk}`],
  ];
  for (const [v, what] of checks) {
    if (v % bs !== 0 || v % dst.blockBytes !== 0) throw new DconnectError('UNALIGNED', `${what} is not a multiple of the ${bs}-byte block size`, `use a multiple of ${bs} bytes, e.g. 4KiB`);
  }
  if (length <= 0) throw new DconnectError('OUT_OF_RANGE', 'length must be greater than zero', 'give --length, e.g. --length 256MiB');
  if (chunk <= 0 || chunk / bs > 65536) throw new DconnectError('BAD_OPTION', `chunk size ${chunk} is outside 1..65536 blocks`, 'use a chunk from 4KiB to 32MiB');
  for (const [d, off, role] of [[src, srcOffset, 'source'], [dst, dstOffset, 'destination']] as const) {
    if (off + length > d.capacityBytes) {
      throw new DconnectError('OUT_OF_RANGE', `${role} range [${off}, ${off + length}) is beyond ${d.name}'s capacity of ${d.capacityBytes} bytes`, `keep offset + length <= ${d.capacityBytes}`);
    }
  }
  if (src === dst && srcOffset < dstOffset + length && dstOffset < srcOffset + length) {
    throw new DconnectError('OVERLAP', `source and destination ranges overlap on ${src.name}`, 'choose non-overlapping offsets');
  }
}

function ssdOf(host: BootedHost, d: BlockDevice): NvmeSsd {
  const s = host.fabric.slots.find((x) => x.box === d.box && x.slot === d.slot)!.device;
  if (!(s instanceof NvmeSsd)) throw new Error(`${d.name} is not an SSD model`);
  return s;
}

/**
 * The DC command as a library call: builds the fabric, boots the host, fills the source range with
 * seeded data, moves it (directly through the DC buffer or through host memory), and verifies the
 * destination byte for byte against the source.
 */
export function runCopy(req: CopyRequest): CopyResult {
  const t = req.topology;
  const depth = req.depth ?? t.copy.depth;
  const chunk = req.chunkBytes ?? t.copy.chunkBytes;
  if (!Number.isInteger(depth) || depth < 1 || depth > 64) throw new DconnectError('BAD_OPTION', `depth ${depth} is outside 1..64`);
  if (depth + 1 > t.host.queueEntries) throw new DconnectError('BAD_OPTION', `depth ${depth} needs NVMe queues of at least ${depth + 1} entries; the topology has ${t.host.queueEntries}`);
  const fabric = buildFabric(t, req.seed);
  const host = boot(fabric, { maxTransferBytes: chunk });
  const src = host.manager.lookup(req.src);
  const dst = host.manager.lookup(req.dst);
  validateCopy(src, req.srcOffset, dst, req.dstOffset, req.lengthBytes, chunk);

  const slotCount = Math.min(depth, Math.ceil(req.lengthBytes / chunk));
  let slots: number[];
  if (req.via === 'dc-buffer') {
    const buf = host.manager.bufferFor(src.box);
    if (slotCount * chunk > buf.sizeBytes) throw new DconnectError('BAD_OPTION', `${slotCount} slots of ${chunk} bytes do not fit the ${buf.sizeBytes}-byte DC buffer`, 'use a smaller --chunk or --depth');
    slots = Array.from({ length: slotCount }, (_, i) => buf.bar0 + i * chunk);
  } else {
    slots = Array.from({ length: slotCount }, () => host.allocator.alloc(chunk));
  }

  // The source range holds seeded data before the move (as if written earlier).
  const srcSsd = ssdOf(host, src);
  const dstSsd = ssdOf(host, dst);
  const patternSeed = (req.seed ^ 0x5eed) >>> 0;
  srcSsd.store.fillPattern(req.srcOffset, req.lengthBytes, patternSeed);
  // The source's digest, hashed on another core while the move is simulated (see pattern-digest.ts).
  const srcDigest = req.sha256 === false ? null : startPatternDigest(patternSeed, req.srcOffset, req.lengthBytes);

  const before = fabric.trace.snapshot();
  const eventsBefore = fabric.scheduler.eventsExecuted;
  let stats: MoveStats | null = null;
  let failure: Error | null = null;
  const op = new DcOperator(fabric.scheduler);
  const chunks = Math.ceil(req.lengthBytes / chunk);
  const fidelityMode = req.fidelity ?? 'fast';
  let handle: MoveHandle | null = null;
  const ff =
    fidelityMode === 'fast'
      ? new FastForward({
          startPs: fabric.scheduler.now(),
          chunks,
          fullChunks: Math.floor(req.lengthBytes / chunk),
          deterministic: fabric.slots.every((s) => !(s.device instanceof NvmeSsd) || s.device.media.params.latencyJitterFraction === 0),
          digest: () => digestFabric(fabric, [...host.manager.blockDevices().map((b) => b.driver), handle!]),
          counters: () => fabric.trace.snapshot(),
        })
      : null;
  const observer = ff
    ? {
        chunkWritten: (c: number, nextRead: number): number => {
          const skip = ff.chunkWritten(c, nextRead, fabric.scheduler.now());
          // The skipped chunks' bytes move functionally, source store to destination store.
          if (skip > 0) dstSsd.store.copyFrom(srcSsd.store, req.srcOffset + nextRead * chunk, req.dstOffset + nextRead * chunk, skip * chunk);
          return skip;
        },
      }
    : undefined;
  const chunkDone: number[] = [];
  const recorder = !ff && req.recordChunkTimes ? { chunkWritten: (c: number) => ((chunkDone[c] = fabric.scheduler.now()), 0) } : undefined;
  handle = op.move(
    { src, srcOffset: req.srcOffset, dst, dstOffset: req.dstOffset, lengthBytes: req.lengthBytes, chunkBytes: chunk, depth, slots, observer: observer ?? recorder },
    (s) => (stats = s),
    (e) => (failure = e),
  );
  const progressEvery = 1 << 20;
  let nextProgress = progressEvery;
  fabric.scheduler.run({
    maxEvents: 2e10,
    stop: () => {
      if (req.onProgress && fabric.scheduler.eventsExecuted >= nextProgress) {
        nextProgress = fabric.scheduler.eventsExecuted + progressEvery;
        req.onProgress(dstSsd.counters.bytesWritten, req.lengthBytes);
      }
      return stats !== null || failure !== null;
    },
  });
  if (failure) throw failure;
  if (!stats) throw new Error('the move did not finish: the fabric went idle with commands outstanding');
  const s: MoveStats = stats;
  const after = fabric.trace.snapshot();
  const outcome = ff?.finish(s.endPs) ?? null;
  const skippedChunks = ff ? ff.skipped().count : 0;
  if (outcome) {
    s.endPs = outcome.endPs;
    for (const [name, adds] of Object.entries(outcome.counterAdds)) for (const [k, v] of Object.entries(adds)) if (after[name]) after[name][k] += v;
  }
  const fidelity: Fidelity = outcome?.fidelity ?? { mode: 'full', exact: true, relativeError99: 0, detailedChunks: chunks, totalChunks: chunks, method: 'full: every TLP simulated' };

  // Verify: the destination range must equal the source pattern, byte for byte. Two chunk buffers
  // are reused (fresh 4 MiB arrays per chunk cost page faults).
  let verified = true;
  const step = 4 << 20;
  const wantBuf = new Uint8Array(Math.min(step, req.lengthBytes));
  const gotBuf = new Uint8Array(wantBuf.length);
  for (let off = 0; off < req.lengthBytes && verified; off += step) {
    const n = Math.min(step, req.lengthBytes - off);
    const want = wantBuf.subarray(0, n);
    const got = gotBuf.subarray(0, n);
    patternBytes(patternSeed, req.srcOffset + off, want);
    dstSsd.store.readInto(req.dstOffset + off, got);
    verified = bytesEqual(want, got);
  }
  // The destination's digest: when every byte equals the source's, it is the source's digest (hashed
  // during the move); otherwise the destination is hashed as it is.
  const sha256 = srcDigest === null ? '' : verified ? srcDigest.result() : hashRange(dstSsd.store, req.dstOffset, req.lengthBytes);

  const delta = (name: string, key: string) => (after[name]?.[key] ?? 0) - (before[name]?.[key] ?? 0);
  const seconds = (s.endPs - s.startPs) / PS_PER_S;
  const elapsedPs = s.endPs - s.startPs;
  const trace: Record<string, Record<string, number>> = {};
  for (const [name, counters] of Object.entries(after)) {
    trace[name] = {};
    for (const [k, v] of Object.entries(counters)) trace[name][k] = v - (before[name]?.[k] ?? 0);
  }
  return {
    mode: req.via === 'dc-buffer' ? 'direct' : 'conventional',
    src: src.name,
    dst: dst.name,
    srcOffset: req.srcOffset,
    dstOffset: req.dstOffset,
    bytes: req.lengthBytes,
    chunkBytes: chunk,
    depth,
    hostLanes: t.host.link.lanes,
    seed: req.seed,
    simulatedSeconds: seconds,
    mbPerSec: req.lengthBytes / seconds / 1e6,
    verified,
    sha256,
    hostLink: {
      upstreamPayloadBytes: delta('hostLink.upstream', 'payloadBytes'),
      downstreamPayloadBytes: delta('hostLink.downstream', 'payloadBytes'),
      upstreamTlps: delta('hostLink.upstream', 'tlps'),
      downstreamTlps: delta('hostLink.downstream', 'tlps'),
      upstreamUtilization: delta('hostLink.upstream', 'busyPs') / elapsedPs,
      downstreamUtilization: delta('hostLink.downstream', 'busyPs') / elapsedPs,
    },
    commands: { read: s.readCommands + skippedChunks, write: s.writeCommands + skippedChunks },
    events: fabric.scheduler.eventsExecuted - eventsBefore,
    trace,
    fidelity,
    ...(req.recordChunkTimes ? { chunkDonePs: (outcome ? outcome.chunkDonePs : chunkDone).map((t) => t - s.startPs) } : {}),
  };
}
/** The SHA-256 of a store's bytes over [addr, addr + len). */
function hashRange(store: SparseMemory, addr: number, len: number): string {
  const hash = createHash('sha256');
  const step = 4 << 20;
  const buf = new Uint8Array(Math.min(step, len));
  for (let off = 0; off < len; off += step) {
    const b = buf.subarray(0, Math.min(step, len - off));
    store.readInto(addr + off, b);
    hash.update(b);
  }
  return hash.digest('hex');
}

/** Byte equality, by the runtime's native compare (memcmp: ~20x a JavaScript loop over 1 GiB). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
