import { labelCallback, type StateDigest } from '../core/digest.js';
import { LevelTimer } from '../core/level-timer.js';
import type { RngStream } from '../core/rng.js';
import type { Scheduler } from '../core/scheduler.js';
import { prefixKeys, type TraceRegistry } from '../core/trace.js';
import type { ConfigSpace } from '../pcie/config-space.js';
import type { PciePort } from '../pcie/link.js';
import type { DmaEngine, DmaParams, DmaSegment } from './dma-engine.js';
import { dwordAt, dwords, PcieEndpoint, type EndpointDevice } from './pcie-endpoint.js';
import { ADMIN_OPCODE, CC_EN, CQE_BYTES, decodeDoorbell, encodeCap, IDENTIFY_CNS, NVM_OPCODE, NVME_VERSION_1_4, REG, SQE_BYTES, STATUS, type NvmeStatus } from './nvme/nvme-defs.js';
import { createIoCqFields, createIoSqFields, decodeSqe, encodeCqe, encodeIdentifyController, encodeIdentifyNamespace, ioFields, type SubmissionEntry } from './nvme/nvme-structs.js';
import { decodePrpEntries, prpListFetches, prpListSegments, prpPlan, type Segment } from './nvme/prp.js';
import { SsdMedia, type MediaParams } from './ssd-media.js';
import { StoreError, type BlockStore } from './block-store.js';
import { SparseMemory } from './sparse-memory.js';
import { CmbMemory, type CmbParams } from './nvme/cmb-memory.js';
import { CAP_HI_CMBS, CMBMSC_CRE, CMBSZ_RDS, CMBSZ_WDS, encodeCmb } from './nvme/cmb.js';

export interface SsdParams extends MediaParams, DmaParams, Partial<CmbParams> {
  /** User capacity, bytes (decimal, as drives are sold). */
  capacityBytes: number;
  /** Logical block size, bytes. */
  blockBytes: number;
  /** Commands the controller works on at once (its internal request slots). */
  maxActiveCommands: number;
  /** Granularity at which data streams between flash and the DMA engine, bytes. */
  streamUnitBytes: number;
  /** Entries per queue the controller supports (CAP.MQES + 1). */
  maxQueueEntries: number;
  serial: string;
  model: string;
}

/** Memory page size the controller uses (CC.MPS = 0: 4 KiB). */
const PAGE_BYTES = 4096;
const BAR0_BYTES = 16 * 1024;
/**
 * Most bytes of a write command's arrived units held back to be stored in one write (nvme-ssd.ts
 * writeData): a drive file's system call per 16 KiB unit cost more than its copy, while holding a
 * whole 4 MiB command's units kept them alive long enough to reach V8's old generation.
 */
const STORE_RUN_BYTES = 256 * 1024;
/** The BAR that holds the CMB, when the drive has one (CMBLOC.BIR; BAR2 as QEMU's NVMe controller puts it). */
export const CMB_BAR = 2;

/** Who the SSD says it is: an NVM Express I/O controller (class 01:08:02: mass storage, NVM, NVMe) of OCZ's vendor id. */
export const NVME_SSD_ID = { vendorId: 0x1b85, deviceId: 0x8084, classCode: 0x010802 } as const;

interface SubQueue {
  base: number;
  entries: number;
  head: number;
  tail: number;
  cqid: number;
}
interface CplQueue {
  base: number;
  entries: number;
  head: number;
  tail: number;
  phase: number;
  interrupts: boolean;
  waiting: { sqid: number; cid: number; status: NvmeStatus }[];
}

/**
 * An NVMe-like SSD: registers and doorbells in BAR0, queues in host memory, commands fetched by DMA,
 * data moved by DMA at PRP addresses (which may be any device's BAR: the DC buffer), completions with
 * the phase bit and an MSI. Flash timing from SsdMedia; bytes in a sparse store.
 */
export class NvmeSsd<S extends BlockStore = SparseMemory> implements EndpointDevice {
  readonly config: ConfigSpace;
  /** Logical blocks whose reads fail with an unrecovered read error (fault injection: `--fault media-error=sdb:LBA`). */
  readonly badBlocks = new Set<number>();
  /** Logical blocks that cannot be programmed: a write covering one completes with Write Fault (`--fault media-error=sdb:LBA:write`). */
  readonly badWriteBlocks = new Set<number>();
  /** The flash's bytes: a SparseMemory unless the builder injects another store (live mode: a file). */
  readonly store: S;
  readonly media: SsdMedia;
  /** The PCIe side shared with every device: configuration, BAR0 decode, UR, the completions waiting for the link, DMA, MSI. */
  private readonly endpoint: PcieEndpoint;
  /** The endpoint's DMA engine (always present: the controller is a bus master). */
  private readonly dma: DmaEngine;
  private cc = 0;
  private csts = 0;
  private aqa = 0;
  private asq = 0;
  private acq = 0;
  private readonly sqs = new Map<number, SubQueue>();
  private readonly cqs = new Map<number, CplQueue>();
  private active = 0;
  /** Commands in work over time (fetched to completion posted), and 1 while there are none. */
  private readonly commandsInWork: LevelTimer;
  private readonly noCommand: LevelTimer;
  /** Controller capabilities (CAP), fixed by the parameters. */
  private readonly cap: bigint;
  /** The Controller Memory Buffer in BAR2 (NVMe 1.4 §4.7), when `cmbSizeBytes` > 0; null: none (the paper's drive predates NVMe 1.2). */
  readonly cmb: CmbMemory | null;
  /** CMBMSC as the host wrote it (CRE makes CMBLOC and CMBSZ readable). */
  private cmbmsc = 0;
  /**
   * unsupportedRequests: requests refused as Unsupported Request (memory requests outside BAR0: a read
   * gets a UR completion, a posted write is dropped; other kinds); writesOutsideBar: the posted writes
   * among them, which no completion reports.
   */
  readonly counters = { commands: 0, reads: 0, writes: 0, flushes: 0, errors: 0, bytesRead: 0, bytesWritten: 0, unsupportedRequests: 0, writesOutsideBar: 0, storeErrors: 0 };

  constructor(
    readonly name: string,
    private readonly scheduler: Scheduler,
    readonly params: SsdParams,
    port: PciePort,
    rng: RngStream,
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
    store?: S,
  ) {
    const cmbBytes = params.cmbSizeBytes ?? 0;
    this.cap = encodeCap({ mqes: params.maxQueueEntries - 1, cqr: true, ams: 0, to: 1, dstrd: 0, nssrs: false, css: 1, mpsmin: 0, mpsmax: 0 }) | (cmbBytes > 0 ? BigInt(CAP_HI_CMBS) << 32n : 0n);
    this.cmb = cmbBytes > 0 ? new CmbMemory(name, scheduler, { cmbSizeBytes: cmbBytes, cmbMBps: params.cmbMBps!, cmbLatencyNs: params.cmbLatencyNs! }) : null;
    this.endpoint = new PcieEndpoint(name, scheduler, port, {
      identity: { ...NVME_SSD_ID, bars: cmbBytes > 0 ? [{ sizeBytes: BAR0_BYTES }, null, { sizeBytes: cmbBytes, prefetchable: true }] : [{ sizeBytes: BAR0_BYTES }], msi: true },
      link,
      dma: { mpsBytes: params.mpsBytes, mrrsBytes: params.mrrsBytes, maxReadTags: params.maxReadTags },
      counters: this.counters,
    });
    this.config = this.endpoint.config;
    this.dma = this.endpoint.dma!;
    this.store = store ?? (new SparseMemory(`${name}.flash`, params.capacityBytes) as BlockStore as S);
    if (this.store.sizeBytes < params.capacityBytes) throw new Error(`${name}: store of ${this.store.sizeBytes} B is smaller than the drive's ${params.capacityBytes} B`);
    this.media = new SsdMedia(params, rng, scheduler);
    this.commandsInWork = new LevelTimer(scheduler);
    this.noCommand = new LevelTimer(scheduler);
    this.noCommand.set(1);
    this.endpoint.attach(this);
    // commandPs: commands in work x ps (over the time, the mean in work); idlePs: time with none in work.
    // A drive with a CMB adds its counters (cmbBusyPs, cmb*Bytes); one without traces exactly as it always did.
    trace?.register(`ssd.${name}`, () => ({ ...this.counters, ...this.media.snapshot(), ...prefixKeys('dma', this.dma.snapshot()), commandPs: this.commandsInWork.readPs(), idlePs: this.noCommand.readPs(), ...this.cmb?.snapshot() }));
  }

  get blocks(): number {
    return Math.floor(this.params.capacityBytes / this.params.blockBytes);
  }

  // ---- PCIe target side (configuration, decode and UR are the endpoint core's) -------------------

  /** A read of BAR0: one 32-bit register per DW; of BAR2, the CMB's bytes (a peer reading relayed data). */
  regRead(bar: number, offset: number, lengthBytes: number): Uint8Array {
    if (bar === CMB_BAR && this.cmb) return this.cmb.peerRead(offset, lengthBytes);
    return dwords(offset, lengthBytes, (off) => this.readRegister(off));
  }

  /** A write of BAR0: each DW is its own register write, in address order; of BAR2, bytes into the CMB (a peer's DMA). */
  regWrite(bar: number, offset: number, data: Uint8Array): void {
    if (bar === CMB_BAR && this.cmb) return this.cmb.peerWrite(offset, data);
    for (let i = 0; i + 4 <= data.length; i += 4) this.writeRegister(offset + i, dwordAt(data, i));
  }

  /** CMBLOC and CMBSZ (§3.1.11-12): the CMB in BAR2 from offset 0, holding read and write data; 0 until CMBMSC.CRE, or without a CMB. */
  private cmbRegisters(): { cmbloc: number; cmbsz: number } {
    if (!this.cmb || (this.cmbmsc & CMBMSC_CRE) === 0) return { cmbloc: 0, cmbsz: 0 };
    return encodeCmb({ sizeBytes: this.cmb.sizeBytes, bar: CMB_BAR, offsetBytes: 0, flags: CMBSZ_RDS | CMBSZ_WDS });
  }

  /** The CMB's bus address (its BAR as enumeration assigned it). */
  private get cmbBase(): number {
    return this.config.barAddress(CMB_BAR);
  }

  private readRegister(off: number): number {
    switch (off) {
      case REG.CAP:
        return Number(this.cap & 0xffffffffn);
      case REG.CAP + 4:
        return Number(this.cap >> 32n);
      case REG.VS:
        return NVME_VERSION_1_4;
      case REG.CC:
        return this.cc;
      case REG.CSTS:
        return this.csts;
      case REG.AQA:
        return this.aqa;
      case REG.ASQ:
        return low32(this.asq);
      case REG.ASQ + 4:
        return high32(this.asq);
      case REG.ACQ:
        return low32(this.acq);
      case REG.ACQ + 4:
        return high32(this.acq);
      case REG.CMBLOC:
        return this.cmbRegisters().cmbloc;
      case REG.CMBSZ:
        return this.cmbRegisters().cmbsz;
      case REG.CMBMSC:
        return this.cmbmsc;
      default:
        return 0;
    }
  }

  /** Register writes only record state; queue work is scheduled as its own event (as QEMU does). */
  private writeRegister(off: number, v: number): void {
    if (off >= 0x1000) {
      const db = decodeDoorbell(off, 0);
      if (!db) return;
      if (db.isCompletion) {
        const cq = this.cqs.get(db.queueId);
        if (cq && v < cq.entries) {
          cq.head = v;
          this.scheduler.schedule(0, labelCallback(() => this.flushCompletions(cq), `${this.name}>flush-cq${db.queueId}`));
        }
      } else {
        const sq = this.sqs.get(db.queueId);
        if (sq && v < sq.entries) {
          sq.tail = v;
          this.scheduler.schedule(0, labelCallback(() => this.fetch(db.queueId), `${this.name}>fetch${db.queueId}`));
        }
      }
      return;
    }
    switch (off) {
      case REG.CC: {
        const wasEnabled = (this.cc & CC_EN) !== 0;
        this.cc = v;
        if (!wasEnabled && (v & CC_EN) !== 0) this.enable();
        if (wasEnabled && (v & CC_EN) === 0) this.reset();
        return;
      }
      case REG.AQA:
        this.aqa = v;
        return;
      case REG.ASQ:
        this.asq = high32(this.asq) * 2 ** 32 + v;
        return;
      case REG.ASQ + 4:
        this.asq = low32(this.asq) + v * 2 ** 32;
        return;
      case REG.ACQ:
        this.acq = high32(this.acq) * 2 ** 32 + v;
        return;
      case REG.ACQ + 4:
        this.acq = low32(this.acq) + v * 2 ** 32;
        return;
      case REG.CMBMSC:
        // CRE only (CMSE and the controller base address are for hosts that move the CMB; this one is where its BAR is).
        if (this.cmb) this.cmbmsc = v & CMBMSC_CRE;
        return;
    }
  }

  private enable(): void {
    this.sqs.set(0, { base: this.asq, entries: (this.aqa & 0xfff) + 1, head: 0, tail: 0, cqid: 0 });
    this.cqs.set(0, { base: this.acq, entries: ((this.aqa >>> 16) & 0xfff) + 1, head: 0, tail: 0, phase: 1, interrupts: true, waiting: [] });
    this.csts |= 1;
  }

  private reset(): void {
    this.sqs.clear();
    this.cqs.clear();
    this.csts &= ~1;
  }

  /**
   * Queue positions (the submission head decides how many contiguous entries one fetch reads, so it
   * stays; completion positions and phases only change data, so they are left out), commands in
   * work, waiting completions, the flash servers and the DMA engine.
   */
  digest(d: StateDigest): void {
    d.section(this.name);
    d.num(this.active);
    d.num(this.endpoint.txQueue.length);
    for (const [id, q] of this.sqs) {
      d.num(id);
      d.num(q.head);
      d.num(q.tail);
    }
    for (const [id, q] of this.cqs) {
      d.num(id);
      d.num((q.tail - q.head + q.entries) % q.entries);
      d.num(q.waiting.length);
    }
    this.media.digest(d);
    this.dma.digest(d);
    this.cmb?.digest(d);
  }

  // ---- Command processing ---------------------------------------------------------------------

  /** Fetches as many new commands as there are free request slots, contiguous entries in one read. */
  private fetch(sqid: number): void {
    const sq = this.sqs.get(sqid);
    if (!sq) return;
    while (sq.head !== sq.tail && this.active < this.params.maxActiveCommands) {
      const avail = sq.tail > sq.head ? sq.tail - sq.head : sq.entries - sq.head;
      const n = Math.min(avail, this.params.maxActiveCommands - this.active);
      const addr = sq.base + sq.head * SQE_BYTES;
      sq.head = (sq.head + n) % sq.entries;
      this.setActive(this.active + n);
      this.dma.read(
        [{ address: addr, lengthBytes: n * SQE_BYTES }],
        labelCallback((data: Uint8Array | null) => {
          if (!data) throw new Error(`${this.name}: command fetch failed`);
          for (let i = 0; i < n; i++) this.execute(sqid, decodeSqe(data.subarray(i * SQE_BYTES, (i + 1) * SQE_BYTES)));
        }, `${this.name}>fetched${sqid}x${n}`),
      );
    }
  }

  private execute(sqid: number, e: SubmissionEntry): void {
    this.counters.commands++;
    if (sqid === 0) return this.admin(e);
    if (e.opcode !== NVM_OPCODE.READ && e.opcode !== NVM_OPCODE.WRITE && e.opcode !== NVM_OPCODE.FLUSH) return this.complete(sqid, e.cid, STATUS.INVALID_OPCODE);
    if (e.nsid !== 1) return this.complete(sqid, e.cid, STATUS.INVALID_NAMESPACE);
    if (e.opcode === NVM_OPCODE.FLUSH) {
      // Writes complete only once programmed (no volatile cache in this model), so what is left to
      // make durable is the store's own: in live mode the file's (fsync, completing later).
      this.counters.flushes++;
      return this.store.flush((ok) => this.complete(sqid, e.cid, ok ? STATUS.SUCCESS : STATUS.INTERNAL_ERROR));
    }
    const { slba, blocks } = ioFields(e);
    if (slba + blocks > this.blocks) return this.complete(sqid, e.cid, STATUS.LBA_OUT_OF_RANGE);
    const len = blocks * this.params.blockBytes;
    const offset = slba * this.params.blockBytes;
    this.mapPrps(e, len, (segs, err) => {
      if (!segs) return this.complete(sqid, e.cid, err!);
      if (e.opcode === NVM_OPCODE.READ) this.readData(sqid, e.cid, offset, len, segs);
      else this.writeData(sqid, e.cid, offset, len, segs);
    });
  }

  private admin(e: SubmissionEntry): void {
    switch (e.opcode) {
      case ADMIN_OPCODE.CREATE_IO_CQ: {
        const f = createIoCqFields(e);
        if (f.qid === 0 || this.cqs.has(f.qid) || f.entries > this.params.maxQueueEntries) return this.complete(0, e.cid, STATUS.INVALID_QUEUE_IDENTIFIER);
        this.cqs.set(f.qid, { base: f.prp1, entries: f.entries, head: 0, tail: 0, phase: 1, interrupts: f.interruptsEnabled, waiting: [] });
        return this.complete(0, e.cid, STATUS.SUCCESS);
      }
      case ADMIN_OPCODE.CREATE_IO_SQ: {
        const f = createIoSqFields(e);
        if (f.qid === 0 || this.sqs.has(f.qid) || f.entries > this.params.maxQueueEntries) return this.complete(0, e.cid, STATUS.INVALID_QUEUE_IDENTIFIER);
        if (!this.cqs.has(f.cqid)) return this.complete(0, e.cid, STATUS.COMPLETION_QUEUE_INVALID);
        this.sqs.set(f.qid, { base: f.prp1, entries: f.entries, head: 0, tail: 0, cqid: f.cqid });
        return this.complete(0, e.cid, STATUS.SUCCESS);
      }
      case ADMIN_OPCODE.IDENTIFY: {
        const cns = e.cdw10 & 0xff;
        let data: Uint8Array;
        if (cns === IDENTIFY_CNS.CONTROLLER) data = encodeIdentifyController({ serial: this.params.serial, model: this.params.model, firmware: '1.0', vid: 0x1b85, nn: 1 });
        else if (cns === IDENTIFY_CNS.NAMESPACE && e.nsid === 1) data = encodeIdentifyNamespace({ nszeBlocks: this.blocks, ncapBlocks: this.blocks, lbaDataSizeLog2: Math.log2(this.params.blockBytes) });
        else return this.complete(0, e.cid, STATUS.INVALID_FIELD);
        return this.mapPrps(e, data.length, (segs, err) => {
          if (!segs) return this.complete(0, e.cid, err!);
          this.dmaOut(segs, data, () => this.complete(0, e.cid, STATUS.SUCCESS));
        });
      }
      default:
        return this.complete(0, e.cid, STATUS.INVALID_OPCODE);
    }
  }

  /** Resolves a command's PRPs to segments, fetching PRP lists (with chaining) by DMA. */
  private mapPrps(e: SubmissionEntry, len: number, cb: (segs: Segment[] | null, err?: NvmeStatus) => void): void {
    const plan = prpPlan(e.prp1, e.prp2, len, PAGE_BYTES);
    if (plan.kind === 'error') return cb(null, plan.status);
    if (plan.kind === 'direct') return cb(plan.segments);
    const fetches = prpListFetches(plan.listAddress, plan.entriesNeeded, PAGE_BYTES);
    const entries: number[] = [];
    const next = (i: number): void => {
      if (i === fetches.length) {
        const r = prpListSegments(plan.firstSegment, entries, len - plan.firstSegment.lengthBytes, PAGE_BYTES, plan.listAddress);
        return r.kind === 'error' ? cb(null, r.status) : cb(r.segments);
      }
      const f = fetches[i];
      const address = f.address ?? entries[entries.length - 1];
      this.dma.read(
        [{ address, lengthBytes: f.entries * 8 }],
        labelCallback((d: Uint8Array | null) => {
          if (!d) return cb(null, STATUS.DATA_TRANSFER_ERROR);
          for (const v of decodePrpEntries(d)) entries.push(v);
          next(i + 1);
        }, `${this.name}>prp-list${i}/${fetches.length}:${e.opcode}:${len}`),
      );
    };
    next(0);
  }

  /** Read: flash delivers stream units in turn; each is DMA-written to host-given addresses as it is ready. */
  private readData(sqid: number, cid: number, offset: number, len: number, segs: Segment[]): void {
    const now = this.scheduler.now();
    const firstData = now + this.media.readLatencyPs();
    const bs = this.params.blockBytes;
    for (const lba of this.badBlocks) {
      if (lba * bs >= offset && lba * bs < offset + len) {
        // The flash was read (the latency is spent) and the block could not be recovered: no data moves.
        this.scheduler.schedule(firstData - now, labelCallback(() => this.complete(sqid, cid, STATUS.UNRECOVERED_READ_ERROR), `${this.name}>media-error:${sqid}`));
        return;
      }
    }
    const unit = this.params.streamUnitBytes;
    let storeFailed = false;
    for (let pos = 0; pos < len; pos += unit) {
      const n = Math.min(unit, len - pos);
      const readyAt = this.media.readUnit(firstData, n);
      const last = pos + n >= len;
      const finish = last ? labelCallback(() => this.finishIo(sqid, cid, 'read', len), `${this.name}>read-done:${sqid}:${len}`) : null;
      this.scheduler.schedule(
        readyAt - now,
        labelCallback(() => {
          if (storeFailed) return;
          const data = this.storeRead(offset + pos, n);
          if (!data) {
            // The backing store failed (live: the drive file): this command fails, the drive goes on.
            storeFailed = true;
            return this.complete(sqid, cid, STATUS.UNRECOVERED_READ_ERROR);
          }
          this.dmaOut(sliceSegments(segs, pos, n), data, finish);
        }, `${this.name}>unit-ready:${sqid}:${n}:${last}`),
      );
    }
  }

  /**
   * Write: stream units are DMA-read from the host-given addresses and programmed as they arrive. The
   * store takes them in runs of consecutive units (up to STORE_RUN_BYTES, and whatever is pending when
   * the last unit arrives), one write per run: a drive file then costs a system call per run, not per
   * unit, while a run's units are held only briefly.
   */
  private writeData(sqid: number, cid: number, offset: number, len: number, segs: Segment[]): void {
    const unit = this.params.streamUnitBytes;
    const latency = this.media.writeLatencyPs();
    let remaining = Math.ceil(len / unit);
    let lastProgrammed = 0;
    let failed = false;
    let writeFault = false;
    let noSpace = false;
    const bs = this.params.blockBytes;
    // The run of consecutive units not yet stored: units runFirst.. of the command.
    let run: Uint8Array[] = [];
    let runFirst = 0;
    const storeRun = (): void => {
      if (run.length === 0) return;
      const stored = this.storeWrite(offset + runFirst * unit, run);
      if (stored === 'no-space') noSpace = true;
      else if (stored === 'io') writeFault = true;
      run = [];
    };
    for (let i = 0, pos = 0; pos < len; i++, pos += unit) {
      const n = Math.min(unit, len - pos);
      const unitDone = (data: Uint8Array | null): void => {
        if (!data) failed = true;
        else {
          // A unit holding a block that cannot be programmed is not stored; the others are (a torn write).
          let bad = false;
          for (const lba of this.badWriteBlocks) if (lba * bs >= offset + pos && lba * bs < offset + pos + n) bad = true;
          if (bad) {
            storeRun();
            writeFault = true;
          } else {
            if (run.length > 0 && runFirst + run.length !== i) storeRun();
            if (run.length === 0) runFirst = i;
            run.push(data);
            // Every unit but a command's last is whole, and nothing follows the last in a run.
            if (run.length * unit >= STORE_RUN_BYTES) storeRun();
          }
          lastProgrammed = Math.max(lastProgrammed, this.media.programUnit(this.scheduler.now(), n));
        }
        if (--remaining > 0) return;
        storeRun();
        if (failed) return this.complete(sqid, cid, STATUS.DATA_TRANSFER_ERROR);
        if (noSpace) return this.complete(sqid, cid, STATUS.CAPACITY_EXCEEDED);
        if (writeFault) {
          this.scheduler.schedule(lastProgrammed + latency - this.scheduler.now(), labelCallback(() => this.complete(sqid, cid, STATUS.WRITE_FAULT), `${this.name}>write-fault:${sqid}`));
          return;
        }
        this.scheduler.schedule(lastProgrammed + latency - this.scheduler.now(), labelCallback(() => this.finishIo(sqid, cid, 'write', len), `${this.name}>write-done:${sqid}:${len}`));
      };
      // Command ids are labels (which id a command gets is the driver's free-list order), so they stay out;
      // the units still to come for a command are the DMA jobs queued behind this one.
      this.fetchData(sliceSegments(segs, pos, n), labelCallback(unitDone, `${this.name}>unit-fetched:${sqid}:${n}:${latency}`));
    }
  }

  /** The store's bytes, or null when the backing store failed (counted; other exceptions are bugs and propagate). */
  private storeRead(addr: number, len: number): Uint8Array | null {
    try {
      return this.store.read(addr, len);
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      this.counters.storeErrors++;
      return null;
    }
  }

  /** Writes units to the store, back to back from `addr`: 'ok', or how the backing store failed (counted). */
  private storeWrite(addr: number, units: readonly Uint8Array[]): 'ok' | StoreError['kind'] {
    try {
      if (units.length === 1) this.store.write(addr, units[0]);
      else this.store.writev(addr, units);
      return 'ok';
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      this.counters.storeErrors++;
      return e.kind;
    }
  }

  private finishIo(sqid: number, cid: number, kind: 'read' | 'write', len: number): void {
    if (kind === 'read') {
      this.counters.reads++;
      this.counters.bytesRead += len;
    } else {
      this.counters.writes++;
      this.counters.bytesWritten += len;
    }
    this.complete(sqid, cid, STATUS.SUCCESS);
  }

  /**
   * A write command's data: by DMA, or from the controller's own CMB without crossing PCIe (NVMe 1.4
   * §4.7: PRPs may point into the CMB). A transfer partly in the CMB fails (Data Transfer Error).
   */
  private fetchData(segs: Segment[], cb: (data: Uint8Array | null) => void): void {
    const where = this.cmb ? this.cmb.placement(segs, this.cmbBase) : 'none';
    if (where === 'none') return this.dma.read(segs, cb);
    if (where === 'mixed') return void this.scheduler.schedule(0, labelCallback(() => cb(null), `${this.name}>cmb-mixed`));
    this.cmb!.ownRead(segs, this.cmbBase, cb, `${segs.length}`);
  }

  private dmaOut(segs: DmaSegment[], data: Uint8Array, done: (() => void) | null): void {
    const where = this.cmb ? this.cmb.placement(segs, this.cmbBase) : 'none';
    if (where === 'all') return this.cmb!.ownWrite(segs, this.cmbBase, data, done, `${data.length}:${done !== null}`);
    let off = 0;
    segs.forEach((s, i) => {
      this.dma.write(s.address, data.subarray(off, off + s.lengthBytes), i === segs.length - 1 ? done : null);
      off += s.lengthBytes;
    });
  }

  /** Posts a completion entry (phase bit) and an MSI; waits while the completion queue is full. */
  private complete(sqid: number, cid: number, status: NvmeStatus): void {
    if (status.sc !== 0 || status.sct !== 0) this.counters.errors++;
    const sq = this.sqs.get(sqid);
    const cqid = sq ? sq.cqid : 0;
    const cq = this.cqs.get(cqid);
    this.setActive(this.active - 1);
    if (!cq) return;
    cq.waiting.push({ sqid, cid, status });
    this.flushCompletions(cq);
    this.scheduler.schedule(0, labelCallback(() => this.fetch(sqid), `${this.name}>fetch${sqid}`));
  }

  private setActive(n: number): void {
    this.active = n;
    this.commandsInWork.set(n);
    this.noCommand.set(n === 0 ? 1 : 0);
  }

  private flushCompletions(cq: CplQueue): void {
    let posted = false;
    while (cq.waiting.length > 0 && (cq.tail + 1) % cq.entries !== cq.head) {
      const w = cq.waiting.shift()!;
      const sq = this.sqs.get(w.sqid);
      const cqe = encodeCqe({ dw0: 0, sqHead: sq ? sq.head : 0, sqId: w.sqid, cid: w.cid, phase: cq.phase, status: w.status });
      this.dma.write(cq.base + cq.tail * CQE_BYTES, cqe);
      cq.tail++;
      if (cq.tail === cq.entries) {
        cq.tail = 0;
        cq.phase ^= 1;
      }
      posted = true;
    }
    if (posted && cq.interrupts) this.endpoint.msi();
  }
}

/** Halves of a 64-bit register value held in a JS number (addresses < 2^53). */
function low32(v: number): number {
  return v % 2 ** 32;
}
function high32(v: number): number {
  return Math.floor(v / 2 ** 32);
}

/** The part of a segment list covering transfer bytes [pos, pos+len). */
export function sliceSegments(segs: Segment[], pos: number, len: number): Segment[] {
  const out: Segment[] = [];
  let skip = pos;
  let want = len;
  for (const s of segs) {
    if (want === 0) break;
    if (skip >= s.lengthBytes) {
      skip -= s.lengthBytes;
      continue;
    }
    const n = Math.min(s.lengthBytes - skip, want);
    out.push({ address: s.address + skip, lengthBytes: n });
    want -= n;
    skip = 0;
  }
  return out;
}

