import { labelCallback, type StateDigest } from '../core/digest.js';
import type { Scheduler } from '../core/scheduler.js';
import type { RootComplex } from '../devices/root-complex.js';
import { CC_EN, CQE_BYTES, doorbellOffset, encodeAqa, encodeCc, IDENTIFY_CNS, isSuccess, NVM_OPCODE, REG, SQE_BYTES, statusName, type NvmeStatus } from '../devices/nvme/nvme-defs.js';
import { createIoCqCommand, createIoSqCommand, decodeCqe, decodeIdentifyController, decodeIdentifyNamespace, encodeSqe, identifyCommand, ioCommand, type SubmissionEntry } from '../devices/nvme/nvme-structs.js';
import { buildPrps, encodePrpEntries, type Segment } from '../devices/nvme/prp.js';
import { CAP_HI_CMBS, CMBMSC_CRE, CMBSZ_RDS, CMBSZ_WDS, decodeCmb } from '../devices/nvme/cmb.js';
import { call, type Seq } from './coroutine.js';
import { enableMsi } from './pci-msi.js';
import type { HostMemoryAllocator } from './host-memory-allocator.js';

export interface DriverParams {
  /** Entries in the admin and the I/O queue pair. */
  queueEntries: number;
  /** CPU time to build a command and ring the doorbell, ns (block layer + driver submit path). */
  submitCpuNs: number;
  /** Largest transfer per command, bytes (bounds the PRP list pages each command slot owns). */
  maxTransferBytes: number;
}

const PAGE = 4096;
/** How many times bring-up polls CSTS.RDY before giving up (bounded loop). */
const READY_POLLS = 1000;

type Completion = (status: NvmeStatus) => void;

interface QueuePair {
  qid: number;
  sqBase: number;
  cqBase: number;
  entries: number;
  sqTail: number;
  cqHead: number;
  phase: number;
  /** Completion callback per command id; a free id is a free slot of the queue. */
  waiting: (Completion | null)[];
  freeCids: number[];
  /** PRP list pages owned by each command slot. */
  listPages: number[][];
}

export interface Namespace {
  blocks: number;
  blockBytes: number;
  serial: string;
  model: string;
}

/**
 * The host's NVMe driver for one controller: bring-up (MSI, admin queues, Identify, an I/O queue pair)
 * and block I/O with PRPs that may point anywhere on the bus: host memory for ordinary I/O, or the DC
 * buffer, the paper's one driver change ("DMA can target the DC buffer").
 */
export class NvmeDriver {
  private admin!: QueuePair;
  private io!: QueuePair;
  ns: Namespace | null = null;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rc: RootComplex,
    private readonly alloc: HostMemoryAllocator,
    readonly deviceId: number,
    readonly bar0: number,
    readonly vector: number,
    readonly params: DriverParams,
  ) {}

  private queuePair(qid: number, entries: number): QueuePair {
    const sqBase = this.alloc.alloc(entries * SQE_BYTES);
    const cqBase = this.alloc.alloc(entries * CQE_BYTES);
    const pagesPerCmd = Math.ceil(Math.ceil(this.params.maxTransferBytes / PAGE) / (PAGE / 8 - 1)) + 1;
    const listPages: number[][] = [];
    for (let c = 0; c < entries; c++) listPages.push(Array.from({ length: pagesPerCmd }, () => this.alloc.alloc(PAGE)));
    const freeCids: number[] = [];
    // One entry stays empty so a full queue is distinguishable from an empty one.
    for (let c = entries - 2; c >= 0; c--) freeCids.push(c);
    return { qid, sqBase, cqBase, entries, sqTail: 0, cqHead: 0, phase: 1, waiting: new Array(entries).fill(null), freeCids, listPages };
  }

  /** Brings the controller up; returns the namespace it found. */
  *init(): Seq<Namespace> {
    // MSI: address of the local APIC window, data = our vector, enable (the capability found over the fabric).
    yield* enableMsi(this.rc, this.deviceId, this.vector, () => this.interrupt(), 'NVMe device');

    this.admin = this.queuePair(0, this.params.queueEntries);
    this.mmio(REG.CC, 0);
    this.mmio(REG.AQA, encodeAqa(this.admin.entries, this.admin.entries));
    this.mmio(REG.ASQ, this.admin.sqBase);
    this.mmio(REG.ASQ + 4, 0);
    this.mmio(REG.ACQ, this.admin.cqBase);
    this.mmio(REG.ACQ + 4, 0);
    this.mmio(REG.CC, encodeCc({ en: true, css: 0, mps: 0, ams: 0, shn: 0, iosqes: 6, iocqes: 4 }) | CC_EN);
    let ready = false;
    for (let i = 0; i < READY_POLLS && !ready; i++) ready = ((yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + REG.CSTS, k))) & 1) === 1;
    if (!ready) throw new Error(`NVMe controller at BAR 0x${this.bar0.toString(16)} never became ready`);

    const idBuf = this.alloc.alloc(PAGE);
    yield* this.adminCmd(identifyCommand(0, IDENTIFY_CNS.CONTROLLER, 0, idBuf));
    const ctrl = decodeIdentifyController(this.rc.memory.read(idBuf, PAGE));
    yield* this.adminCmd(identifyCommand(0, IDENTIFY_CNS.NAMESPACE, 1, idBuf));
    const ns = decodeIdentifyNamespace(this.rc.memory.read(idBuf, PAGE));

    this.io = this.queuePair(1, this.params.queueEntries);
    yield* this.adminCmd(createIoCqCommand(0, { qid: 1, entries: this.io.entries, prp1: this.io.cqBase, interruptVector: 0, interruptsEnabled: true }));
    yield* this.adminCmd(createIoSqCommand(0, { qid: 1, entries: this.io.entries, cqid: 1, prp1: this.io.sqBase, priority: 0 }));
    this.ns = { blocks: ns.nszeBlocks, blockBytes: 2 ** ns.lbaDataSizeLog2, serial: ctrl.serial, model: ctrl.model };
    return this.ns;
  }

  /**
   * The controller's Controller Memory Buffer, as Linux's `nvme_map_cmb` finds it: CAP.CMBS says
   * CMBMSC exists, CMBMSC.CRE makes CMBLOC and CMBSZ readable, CMBLOC names the BAR (BIR) and the
   * offset in it, CMBSZ the size and what may be put there. Usable as a relay only when both read and
   * write data may be (RDS and WDS, as `pci_p2pdma` and SPDK's `cmb_copy` require). Null: none, or
   * one the BAR does not hold.
   */
  *findCmb(bars: readonly { index: number; address: number; sizeBytes: number }[]): Seq<{ busAddress: number; sizeBytes: number } | null> {
    const capHi = yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + REG.CAP + 4, k));
    if ((capHi & CAP_HI_CMBS) === 0) return null;
    this.mmio(REG.CMBMSC, CMBMSC_CRE);
    const cmbloc = yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + REG.CMBLOC, k));
    const cmbsz = yield* call<number>((k) => this.rc.mmioRead32(this.bar0 + REG.CMBSZ, k));
    const cmb = decodeCmb(cmbloc, cmbsz);
    if (!cmb || (cmb.flags & (CMBSZ_RDS | CMBSZ_WDS)) !== (CMBSZ_RDS | CMBSZ_WDS)) return null;
    const bar = bars.find((b) => b.index === cmb.bar);
    if (!bar || cmb.offsetBytes + cmb.sizeBytes > bar.sizeBytes) return null;
    return { busAddress: bar.address + cmb.offsetBytes, sizeBytes: cmb.sizeBytes };
  }

  private mmio(reg: number, v: number): void {
    this.rc.mmioWrite32(this.bar0 + reg, v);
  }

  private *adminCmd(e: SubmissionEntry): Seq<void> {
    const status = yield* call<NvmeStatus>((k) => this.submit(this.admin, e, [], 0, k));
    if (!isSuccess(status)) throw new Error(`NVMe admin command 0x${e.opcode.toString(16)} failed: ${statusName(status)}`);
  }

  /**
   * The I/O queue's tail (it stays: with the controller's head it decides fetch sizes) and the
   * commands waiting; command ids are labels, so the waiting commands are digested as a sorted multiset.
   */
  digest(d: StateDigest): void {
    d.section(`driver${this.vector}`);
    const q = this.io;
    d.num(q.sqTail);
    d.num(q.freeCids.length);
    const waiting = q.waiting.filter((cb) => cb !== null).map((cb) => d.callbackName(cb));
    for (const w of waiting.sort()) d.str(w);
  }

  /** Free I/O command slots. */
  freeSlots(): number {
    return this.io.freeCids.length;
  }

  /**
   * Reads or writes `blocks` blocks at `slba` to/from the bus-address segments `buffer` (host memory
   * or another device's BAR). `done` runs from the completion interrupt.
   */
  submitIo(op: 'read' | 'write', slba: number, blocks: number, buffer: Segment[], done: Completion): void {
    const e = ioCommand(op === 'read' ? NVM_OPCODE.READ : NVM_OPCODE.WRITE, 0, 1, slba, blocks, 0, 0);
    this.submit(this.io, e, buffer, blocks * this.ns!.blockBytes, done);
  }

  /** NVMe Flush: completes once every write the drive completed before it is durable. */
  submitFlush(done: Completion): void {
    this.submit(this.io, ioCommand(NVM_OPCODE.FLUSH, 0, 1, 0, 1, 0, 0), [], 0, done);
  }

  private submit(q: QueuePair, e: SubmissionEntry, buffer: Segment[], lengthBytes: number, done: Completion): void {
    const cid = q.freeCids.pop();
    if (cid === undefined) throw new Error(`NVMe queue ${q.qid} full: the caller must bound its commands`);
    e.cid = cid;
    if (lengthBytes > 0) {
      const pages = q.listPages[cid];
      let next = 0;
      const prps = buildPrps(buffer, lengthBytes, PAGE, () => {
        if (next >= pages.length) throw new Error(`transfer of ${lengthBytes} B exceeds the driver's max transfer ${this.params.maxTransferBytes} B`);
        return pages[next++];
      });
      e.prp1 = prps.prp1;
      e.prp2 = prps.prp2;
      for (const p of prps.listPages) this.rc.memory.write(p.address, encodePrpEntries(p.entries));
    }
    q.waiting[cid] = done;
    this.rc.memory.write(q.sqBase + q.sqTail * SQE_BYTES, encodeSqe(e));
    q.sqTail = (q.sqTail + 1) % q.entries;
    const tail = q.sqTail;
    this.scheduler.schedule(this.params.submitCpuNs * 1000, labelCallback(() => this.mmio(doorbellOffset(q.qid, false, 0), tail), `drv${this.vector}>doorbell${q.qid}:${tail}`));
  }

  /** MSI handler: consume completions whose phase matches, then ring the CQ head doorbell. */
  private interrupt(): void {
    for (const q of [this.admin, this.io]) {
      if (!q) continue;
      let n = 0;
      const done: [Completion, NvmeStatus][] = [];
      for (; n < q.entries; n++) {
        const cqe = decodeCqe(this.rc.memory.read(q.cqBase + q.cqHead * CQE_BYTES, CQE_BYTES));
        if (cqe.phase !== q.phase) break;
        const cb = q.waiting[cqe.cid];
        q.waiting[cqe.cid] = null;
        q.freeCids.push(cqe.cid);
        if (cb) done.push([cb, cqe.status]);
        q.cqHead++;
        if (q.cqHead === q.entries) {
          q.cqHead = 0;
          q.phase ^= 1;
        }
      }
      if (n > 0) this.mmio(doorbellOffset(q.qid, true, 0), q.cqHead);
      for (const [cb, st] of done) cb(st);
    }
  }
}
