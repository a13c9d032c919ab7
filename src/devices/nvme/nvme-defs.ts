/**
 * Constants of the NVM Express Base Specification 1.x (section numbers as in 1.4): controller registers
 * in BAR0 (§3.1), admin and NVM opcodes (§5, §6), status codes (§4.6.1) and Identify CNS values (§5.15).
 */

/** Controller register byte offsets in BAR0 (NVMe 1.4 §3.1). */
export const REG = {
  CAP: 0x00, // Controller Capabilities, 64-bit
  VS: 0x08, // Version
  INTMS: 0x0c, // Interrupt Mask Set
  INTMC: 0x10, // Interrupt Mask Clear
  CC: 0x14, // Controller Configuration
  CSTS: 0x1c, // Controller Status
  AQA: 0x24, // Admin Queue Attributes
  ASQ: 0x28, // Admin Submission Queue base address, 64-bit
  ACQ: 0x30, // Admin Completion Queue base address, 64-bit
  CMBLOC: 0x38, // Controller Memory Buffer Location (§3.1.11)
  CMBSZ: 0x3c, // Controller Memory Buffer Size (§3.1.12)
  CMBMSC: 0x50, // Controller Memory Buffer Memory Space Control, 64-bit (§3.1.20)
} as const;

/** First doorbell register (SQ 0 tail) in BAR0 (NVMe 1.4 §3.1.24). */
export const DOORBELL_BASE = 0x1000;

/** Version register value for NVMe 1.4.0: MJR 31:16, MNR 15:8, TER 7:0 (§3.1.2). */
export const NVME_VERSION_1_4 = 0x00010400;

/** Byte distance between doorbells: 4 << CAP.DSTRD (§3.1.1). */
export function doorbellStride(dstrd: number): number {
  return 4 << dstrd;
}

/** BAR0 offset of SQ y Tail (`isCompletion` false) or CQ y Head doorbell (§3.1.24, §3.1.25). */
export function doorbellOffset(queueId: number, isCompletion: boolean, dstrd: number): number {
  return DOORBELL_BASE + (2 * queueId + (isCompletion ? 1 : 0)) * doorbellStride(dstrd);
}

/** Inverse of doorbellOffset: null when `offset` is not exactly a doorbell register. */
export function decodeDoorbell(offset: number, dstrd: number): { queueId: number; isCompletion: boolean } | null {
  const stride = doorbellStride(dstrd);
  const rel = offset - DOORBELL_BASE;
  if (!Number.isInteger(offset) || rel < 0 || rel % stride !== 0) return null;
  const index = rel / stride;
  const queueId = Math.floor(index / 2);
  if (queueId > 0xffff) return null; // queue identifiers are 16-bit
  return { queueId, isCompletion: index % 2 === 1 };
}

// ---- CAP (§3.1.1) ---------------------------------------------------------------------------------

/** Fields of CAP. `mqes` is zero-based; memory page size = 2^(12 + mpsmin/mpsmax). */
export interface CapFields {
  mqes: number; // 15:0 maximum queue entries supported, zero-based
  cqr: boolean; // 16 contiguous queues required
  ams: number; // 18:17 arbitration mechanisms supported
  to: number; // 31:24 ready timeout in 500 ms units
  dstrd: number; // 35:32 doorbell stride
  nssrs: boolean; // 36 NVM subsystem reset supported
  css: number; // 44:37 command sets supported (bit 0: NVM command set)
  mpsmin: number; // 51:48
  mpsmax: number; // 55:52
}

/** CAP as a 64-bit value (§3.1.1). */
export function encodeCap(f: CapFields): bigint {
  const lo = (f.mqes & 0xffff) | (f.cqr ? 1 << 16 : 0) | ((f.ams & 3) << 17) | ((f.to & 0xff) << 24);
  const hi = (f.dstrd & 0xf) | (f.nssrs ? 1 << 4 : 0) | ((f.css & 0xff) << 5) | ((f.mpsmin & 0xf) << 16) | ((f.mpsmax & 0xf) << 20);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Fields of a 64-bit CAP value (§3.1.1). */
export function decodeCap(value: bigint): CapFields {
  const lo = Number(value & 0xffffffffn);
  const hi = Number((value >> 32n) & 0xffffffffn);
  return {
    mqes: lo & 0xffff,
    cqr: ((lo >>> 16) & 1) === 1,
    ams: (lo >>> 17) & 3,
    to: (lo >>> 24) & 0xff,
    dstrd: hi & 0xf,
    nssrs: ((hi >>> 4) & 1) === 1,
    css: (hi >>> 5) & 0xff,
    mpsmin: (hi >>> 16) & 0xf,
    mpsmax: (hi >>> 20) & 0xf,
  };
}

// ---- CC, CSTS, AQA (§3.1.5, §3.1.6, §3.1.8) ------------------------------------------------------------

/** CC.EN: enable (bit 0). */
export const CC_EN = 1 << 0;
/** CSTS.RDY: ready (bit 0); CSTS.CFS: controller fatal status (bit 1). */
export const CSTS_RDY = 1 << 0;
export const CSTS_CFS = 1 << 1;

/** Fields of CC (§3.1.5). Page size = 2^(12 + mps); queue entry sizes are log2 bytes (6 = 64 B SQE, 4 = 16 B CQE). */
export interface CcFields {
  en: boolean; // 0
  css: number; // 6:4 I/O command set selected (0 = NVM)
  mps: number; // 10:7 memory page size
  ams: number; // 13:11 arbitration mechanism
  shn: number; // 15:14 shutdown notification
  iosqes: number; // 19:16
  iocqes: number; // 23:20
}

export function encodeCc(f: CcFields): number {
  const v =
    (f.en ? CC_EN : 0) | ((f.css & 7) << 4) | ((f.mps & 0xf) << 7) | ((f.ams & 7) << 11) |
    ((f.shn & 3) << 14) | ((f.iosqes & 0xf) << 16) | ((f.iocqes & 0xf) << 20);
  return v >>> 0;
}

export function decodeCc(v: number): CcFields {
  return {
    en: (v & CC_EN) !== 0,
    css: (v >>> 4) & 7,
    mps: (v >>> 7) & 0xf,
    ams: (v >>> 11) & 7,
    shn: (v >>> 14) & 3,
    iosqes: (v >>> 16) & 0xf,
    iocqes: (v >>> 20) & 0xf,
  };
}

/** Memory page size in bytes for a CC.MPS / CAP.MPSMIN value: 2^(12 + mps) (§3.1.5). */
export function pageBytesFromMps(mps: number): number {
  return 2 ** (12 + mps);
}

export function ccEnabled(cc: number): boolean {
  return (cc & CC_EN) !== 0;
}

export function cstsReady(csts: number): boolean {
  return (csts & CSTS_RDY) !== 0;
}

/** AQA from admin queue sizes in entries (stored zero-based: ASQS 11:0, ACQS 27:16) (§3.1.8). */
export function encodeAqa(sqEntries: number, cqEntries: number): number {
  return ((((cqEntries - 1) & 0xfff) << 16) | ((sqEntries - 1) & 0xfff)) >>> 0;
}

/** Admin queue sizes in entries (one-based) from AQA (§3.1.8). */
export function decodeAqa(aqa: number): { sqEntries: number; cqEntries: number } {
  return { sqEntries: (aqa & 0xfff) + 1, cqEntries: ((aqa >>> 16) & 0xfff) + 1 };
}

// ---- Opcodes (§5, §6) ------------------------------------------------------------------------------

/** Admin command opcodes (NVMe 1.4 §5). */
export const ADMIN_OPCODE = {
  DELETE_IO_SQ: 0x00,
  CREATE_IO_SQ: 0x01,
  GET_LOG_PAGE: 0x02,
  DELETE_IO_CQ: 0x04,
  CREATE_IO_CQ: 0x05,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
} as const;

/** NVM command set I/O opcodes (NVMe 1.4 §6). */
export const NVM_OPCODE = {
  FLUSH: 0x00,
  WRITE: 0x01,
  READ: 0x02,
} as const;

/** Identify CNS values, CDW10 bits 7:0 (§5.15). */
export const IDENTIFY_CNS = {
  NAMESPACE: 0x00,
  CONTROLLER: 0x01,
  ACTIVE_NSID_LIST: 0x02,
} as const;

/** Sizes of the fixed structures in bytes. */
export const SQE_BYTES = 64;
export const CQE_BYTES = 16;
export const IDENTIFY_BYTES = 4096;

// ---- Status (§4.6.1) -------------------------------------------------------------------------------

/** Status Code Type and Status Code of a completion (§4.6.1). */
export interface NvmeStatus {
  sct: number; // 3 bits
  sc: number; // 8 bits
}

/** Status code types (§4.6.1.1). */
export const SCT = { GENERIC: 0, COMMAND_SPECIFIC: 1, MEDIA: 2, PATH: 3, VENDOR: 7 } as const;

/** Status values the model uses (§4.6.1.2 generic, §4.6.1.2.2 NVM generic, §4.6.1.3 command specific). */
export const STATUS = {
  SUCCESS: { sct: 0, sc: 0x00 },
  INVALID_OPCODE: { sct: 0, sc: 0x01 },
  INVALID_FIELD: { sct: 0, sc: 0x02 },
  CID_CONFLICT: { sct: 0, sc: 0x03 },
  DATA_TRANSFER_ERROR: { sct: 0, sc: 0x04 },
  INTERNAL_ERROR: { sct: 0, sc: 0x06 },
  INVALID_NAMESPACE: { sct: 0, sc: 0x0b },
  COMMAND_SEQUENCE_ERROR: { sct: 0, sc: 0x0c },
  PRP_OFFSET_INVALID: { sct: 0, sc: 0x13 },
  LBA_OUT_OF_RANGE: { sct: 0, sc: 0x80 },
  /** NVM command set generic (§4.6.1.2.2): a thin-provisioned namespace ran out of space (a drive file's disk is full). */
  CAPACITY_EXCEEDED: { sct: 0, sc: 0x81 },
  COMPLETION_QUEUE_INVALID: { sct: 1, sc: 0x00 },
  INVALID_QUEUE_IDENTIFIER: { sct: 1, sc: 0x01 },
  INVALID_QUEUE_SIZE: { sct: 1, sc: 0x02 },
  INVALID_INTERRUPT_VECTOR: { sct: 1, sc: 0x08 },
  INVALID_QUEUE_DELETION: { sct: 1, sc: 0x0c },
  /** Media and data integrity errors (SCT 2, §4.6.1.2.4): the flash could not return the data. */
  WRITE_FAULT: { sct: 2, sc: 0x80 },
  UNRECOVERED_READ_ERROR: { sct: 2, sc: 0x81 },
} as const satisfies Record<string, NvmeStatus>;

export function isSuccess(s: NvmeStatus): boolean {
  return s.sct === 0 && s.sc === 0;
}

export function statusEquals(a: NvmeStatus, b: NvmeStatus): boolean {
  return a.sct === b.sct && a.sc === b.sc;
}

/** Status as the conventional 11-bit number (SCT << 8 | SC), e.g. 0x101 for Invalid Queue Identifier. */
export function statusValue(s: NvmeStatus): number {
  return ((s.sct & 7) << 8) | (s.sc & 0xff);
}

/** Readable status for traces and error messages, e.g. "SCT 1 SC 0x01 (INVALID_QUEUE_IDENTIFIER)". */
export function statusName(s: NvmeStatus): string {
  const name = Object.entries(STATUS).find(([, v]) => statusEquals(v, s))?.[0];
  const hex = `SCT ${s.sct} SC 0x${s.sc.toString(16).padStart(2, '0')}`;
  return name ? `${hex} (${name})` : hex;
}
