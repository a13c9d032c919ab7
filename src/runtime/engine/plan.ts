import { DconnectError } from '../../core/errors.js';
import type { BlockDevice, DcManager, HostDevice } from '../../host/dc/manager.js';
import { planRelay, type RelayChoice } from '../../host/dc/relay-planner.js';
import type { HostMemoryAllocator } from '../../host/host-memory-allocator.js';
import type { Topology } from '../../topology/schema.js';

/**
 * A transfer's admission, in one place (docs/architecture.md "One transfer engine"): the pipeline
 * (commands in flight within the NVMe queues), a drive range (block-aligned, inside the drive), ranges
 * of concurrent moves that may not touch, and the relay slots (the relay planner's choice, with room
 * for them). Every check runs before anything is written, and a refusal is a DconnectError naming the
 * problem and what to do. Simulated moves, NIC moves, file copies and live jobs all use these.
 */

/** The paper's two paths (Fig. 5): through a DC buffer (direct) or host memory (conventional). */
export type Via = 'dc-buffer' | 'host';
/**
 * Where a move's data is relayed (`--via`): `host`, host memory (conventional); otherwise directly,
 * through the relay the relay planner (host/dc/relay-planner.ts) ranks first by distance, then load,
 * among the DC buffers (`dc-buffer`, the paper's), the SSDs' Controller Memory Buffers (`cmb`), or
 * every relay the host found (`nearest`).
 */
export type MoveVia = Via | 'cmb' | 'nearest';
/** Every `MoveVia`, in the order help text lists them. */
export const MOVE_VIAS: readonly MoveVia[] = ['dc-buffer', 'cmb', 'nearest', 'host'];

/** What a result calls a move: direct through any relay, conventional through host memory. */
export function modeOf(via: MoveVia): 'direct' | 'conventional' {
  return via === 'host' ? 'conventional' : 'direct';
}

/** Most commands in flight per move (and per job): the NVMe queues' depth bounds it too (`pipelineOf`). */
export const MAX_DEPTH = 64;

/** Entries of every NVMe queue that something beside the move holds (live: NBD's commands and the job's flush). */
export interface QueueReserve {
  entries: number;
  /** What holds them, as the refusal names it: `NBD's 4 commands and the job's flush`. */
  what: string;
}

/**
 * A move's pipeline, the request's or the topology's, checked: commands in flight (1..64, and with
 * one empty entry and `reserve`'s within the NVMe queues: `checkQueueRoom`) and bytes per command.
 */
export function pipelineOf(req: { topology: Topology; depth?: number; chunkBytes?: number }, reserve?: QueueReserve): { depth: number; chunk: number } {
  const p = pipelineInRange(req);
  checkQueueRoom(req.topology, p.depth, reserve);
  return p;
}

/** The pipeline with its depth in 1..64, the NVMe queues not asked (a NIC move: see runtime/nic-moves.ts). */
export function pipelineInRange(req: { topology: Topology; depth?: number; chunkBytes?: number }): { depth: number; chunk: number } {
  const t = req.topology;
  const depth = req.depth ?? t.copy.depth;
  const chunk = req.chunkBytes ?? t.copy.chunkBytes;
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH) throw new DconnectError('BAD_OPTION', `depth ${depth} is outside 1..${MAX_DEPTH}`, `use --depth from 1 to ${MAX_DEPTH} (the paper: 3)`);
  return { depth, chunk };
}

/** `depth` commands fit every NVMe queue, with one entry empty (a full queue is told from an empty one by it) and `reserve`'s. */
export function checkQueueRoom(t: Topology, depth: number, reserve?: QueueReserve): void {
  const room = t.host.queueEntries - 1 - (reserve?.entries ?? 0);
  if (depth > room) {
    const beside = reserve ? ` beside ${reserve.what}` : '';
    throw new DconnectError('BAD_OPTION', `depth ${depth} needs NVMe queues of at least ${depth + 1 + (reserve?.entries ?? 0)} entries (one stays empty${beside}); the topology has ${t.host.queueEntries}`, `use --depth ${Math.max(1, room)} or less, or longer queues (--set host.queueEntries=...)`);
  }
}

/** Every value is a whole number of each device's blocks. */
function checkAligned(devices: readonly BlockDevice[], values: readonly [number, string][]): void {
  for (const [v, what] of values) {
    for (const d of devices) {
      if (v % d.blockBytes !== 0) throw new DconnectError('UNALIGNED', `${what} ${v} is not a multiple of ${d.name}'s ${d.blockBytes}-byte block size`, `use a multiple of ${d.blockBytes} bytes, e.g. 4KiB`);
    }
  }
}

/** A chunk is 1..65536 blocks (an NVMe command's count field). */
function checkChunk(chunk: number, blockBytes: number): void {
  if (chunk <= 0 || chunk / blockBytes > 65536) throw new DconnectError('BAD_OPTION', `chunk size ${chunk} is outside 1..65536 blocks`, 'use a chunk from 4KiB to 32MiB');
}

/** A range lies inside its drive. */
function checkInside(d: BlockDevice, offset: number, length: number, role: string): void {
  if (offset < 0 || offset + length > d.capacityBytes) throw new DconnectError('OUT_OF_RANGE', `${role} range [${offset}, ${offset + length}) is beyond ${d.name}'s capacity of ${d.capacityBytes} bytes`, `keep offset + length <= ${d.capacityBytes}`);
}

/** A chunk for moves between these drives whose ranges are known later (file copies: the run list): whole blocks of each, 1..65536 of them. */
export function checkChunkFor(chunk: number, devices: readonly BlockDevice[]): void {
  if (!Number.isInteger(chunk) || chunk <= 0) throw new DconnectError('BAD_OPTION', `chunk size ${chunk} is not a positive number of bytes`, 'use e.g. --chunk 128KiB');
  checkAligned(devices, [[chunk, 'chunk size']]);
  for (const d of devices) checkChunk(chunk, d.blockBytes);
}

/** A drive range one end of a move covers (a NIC move's drive): block-aligned, in chunks a command can carry, inside the drive. */
export function checkDriveRange(d: BlockDevice, offset: number, length: number, chunk: number, role: 'source' | 'destination'): void {
  checkAligned([d], [[offset, `${role} offset`], [length, 'length'], [chunk, 'chunk size']]);
  checkChunk(chunk, d.blockBytes);
  checkInside(d, offset, length, role);
}

/** A drive-to-drive move against its devices: both ranges block-aligned and inside, a positive length, ranges of one drive apart. */
export function validateCopy(src: BlockDevice, srcOffset: number, dst: BlockDevice, dstOffset: number, length: number, chunk: number): void {
  checkAligned([src, dst], [[srcOffset, 'source offset'], [dstOffset, 'destination offset'], [length, 'length'], [chunk, 'chunk size']]);
  if (length <= 0) throw new DconnectError('OUT_OF_RANGE', 'length must be greater than zero', 'give --length, e.g. --length 256MiB');
  checkChunk(chunk, src.blockBytes);
  checkInside(src, srcOffset, length, 'source');
  checkInside(dst, dstOffset, length, 'destination');
  if (src === dst && srcOffset < dstOffset + length && dstOffset < srcOffset + length) {
    throw new DconnectError('OVERLAP', `source and destination ranges overlap on ${src.name}`, 'choose non-overlapping offsets');
  }
}

/** Concurrent moves may not touch the same bytes: each source holds its own data, each destination is verified against it. */
export function checkDisjoint(moves: readonly { src: BlockDevice; srcOffset: number; dst: BlockDevice; dstOffset: number }[], length: number): void {
  const ranges = moves.flatMap((m, i) => [
    { i, dev: m.src, off: m.srcOffset, role: 'source' },
    { i, dev: m.dst, off: m.dstOffset, role: 'destination' },
  ]);
  for (const a of ranges) {
    for (const b of ranges) {
      if (a.i < b.i && a.dev === b.dev && a.off < b.off + length && b.off < a.off + length) {
        throw new DconnectError('OVERLAP', `move ${a.i + 1}'s ${a.role} and move ${b.i + 1}'s ${b.role} overlap on ${a.dev.name}`, 'concurrent moves need disjoint ranges: give each its own device, or offsets (sda:1GiB)');
      }
    }
  }
}

/** Where a move's data waits between its two ends: the relay's name as results report it, its slots' bus addresses and, for a relay in a box, that box (the watchdog waits on it). */
export interface RelaySlots {
  name: string;
  slots: number[];
  box?: string;
}

/** Host memory for `count` slots of `bytes` each (conventional moves): bus addresses. */
export type HostSlots = (count: number, bytes: number) => number[];

/** A page-aligned host-memory allocation per slot (the simulated moves' and file copies' layout). */
export function slotPerAllocation(allocator: HostMemoryAllocator): HostSlots {
  return (count, bytes) => Array.from({ length: count }, () => allocator.alloc(bytes));
}

/** One host-memory allocation holding every slot back to back (a NIC move's frame buffers), refused when it does not fit. */
export function slotsInOneAllocation(allocator: HostMemoryAllocator): HostSlots {
  return (count, bytes) => {
    let base: number;
    try {
      base = allocator.alloc(count * bytes);
    } catch {
      throw new DconnectError('BAD_OPTION', `the move needs ${count * bytes} bytes of relay space in host memory, more than the host has free`, 'use a smaller --chunk or --depth');
    }
    return Array.from({ length: count }, (_, i) => base + i * bytes);
  };
}

/**
 * One host's relay slots for the moves of one run, placed move by move: `host` takes them from host
 * memory; every other `via` asks the relay planner (host/dc/relay-planner.ts: distance, then load,
 * then the drivers' order) among the relays the DC manager recorded, and carves the slots in order
 * from that relay (concurrent moves never share a slot). A run whose slots do not fit is refused.
 */
export class RelayPlan {
  /** Bytes carved from each relay so far, and moves each relays (the planner's load). */
  private readonly used = new Map<string, number>();
  private readonly load = new Map<string, number>();

  constructor(
    private readonly manager: DcManager,
    private readonly hostSlots: HostSlots,
  ) {}

  /** `count` slots of `slotBytes` for a move from `src` to `dst` (devices of this host: drives, a NIC). */
  place(via: MoveVia, src: HostDevice, dst: HostDevice, count: number, slotBytes: number): RelaySlots {
    if (via === 'host') return { name: 'host memory', slots: this.hostSlots(count, slotBytes) };
    const choice: RelayChoice = via === 'nearest' ? { nearest: true } : { via };
    const relay = planRelay(this.manager.relays(), src, dst, choice, this.load);
    this.load.set(relay.name, (this.load.get(relay.name) ?? 0) + 1);
    const used = this.used.get(relay.name) ?? 0;
    const need = used + count * slotBytes;
    if (need > relay.sizeBytes) {
      const what = relay.via === 'dc-buffer' ? `DC buffer ${relay.name}` : relay.name;
      throw new DconnectError('BAD_OPTION', `${used > 0 ? 'these moves need' : 'the move needs'} ${need} bytes of relay slots, more than the relay space in the ${relay.sizeBytes}-byte ${what}`, 'use a smaller --chunk or --depth, or fewer concurrent moves');
    }
    this.used.set(relay.name, need);
    return { name: relay.name, box: relay.box, slots: Array.from({ length: count }, (_, i) => relay.busAddress + used + i * slotBytes) };
  }
}
