/**
 * Byte layouts of NVMe 1.x structures (section numbers as in NVMe 1.4): the 64-byte submission queue
 * entry (§4.2), the 16-byte completion queue entry (§4.6) and the 4096-byte Identify data (§5.15).
 * All fields are little-endian. 64-bit fields are JS numbers and must be integers in [0, 2^53].
 */
import { DconnectError } from '../../core/errors.js';
import { ADMIN_OPCODE, CQE_BYTES, IDENTIFY_BYTES, SQE_BYTES, type NvmeStatus } from './nvme-defs.js';

const TWO32 = 2 ** 32;
/** Largest value a 64-bit field may hold as a number and still round-trip exactly. */
export const MAX_U64_NUMBER = 2 ** 53;

function malformed(message: string): never {
  throw new DconnectError('MALFORMED_PACKET', message);
}

function checkUint(v: number, bits: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) malformed(`${what} ${v} is not a ${bits}-bit unsigned value`);
}

function view(bytes: Uint8Array, length: number, what: string): DataView {
  if (bytes.length !== length) malformed(`${what} must be ${length} bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a 64-bit little-endian field from a number in [0, 2^53] as two 32-bit halves. */
export function writeU64le(dv: DataView, offset: number, v: number, what = '64-bit field'): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U64_NUMBER) malformed(`${what} ${v} is outside 0..2^53`);
  dv.setUint32(offset, v % TWO32, true);
  dv.setUint32(offset + 4, Math.floor(v / TWO32), true);
}

/** Reads a 64-bit little-endian field; throws MALFORMED_PACKET above 2^53 (not exact as a number). */
export function readU64le(dv: DataView, offset: number, what = '64-bit field'): number {
  const lo = dv.getUint32(offset, true);
  const hi = dv.getUint32(offset + 4, true);
  if (hi > 0x200000 || (hi === 0x200000 && lo !== 0)) malformed(`${what} 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} exceeds 2^53`);
  return hi * TWO32 + lo;
}

// ---- Submission queue entry (§4.2) ---------------------------------------------------------------

/** A 64-byte command. cid is 16-bit, opcode 8-bit, nsid and cdw10..15 32-bit, prp1/prp2 64-bit. */
export interface SubmissionEntry {
  opcode: number;
  cid: number;
  nsid: number;
  prp1: number;
  prp2: number;
  cdw10: number;
  cdw11: number;
  cdw12: number;
  cdw13: number;
  cdw14: number;
  cdw15: number;
}

const CDW_NAMES = ['cdw10', 'cdw11', 'cdw12', 'cdw13', 'cdw14', 'cdw15'] as const;

/** CDW0 = opcode 7:0 | FUSE 9:8 = 0 | PSDT 15:14 = 0 (PRPs) | CID 31:16; NSID 4; MPTR 16 = 0; DPTR 24; CDW10.. 40 (§4.2). */
export function encodeSqe(e: SubmissionEntry): Uint8Array {
  const bytes = new Uint8Array(SQE_BYTES);
  const dv = new DataView(bytes.buffer);
  checkUint(e.opcode, 8, 'opcode');
  checkUint(e.cid, 16, 'cid');
  checkUint(e.nsid, 32, 'nsid');
  dv.setUint32(0, (e.opcode | (e.cid << 16)) >>> 0, true);
  dv.setUint32(4, e.nsid, true);
  writeU64le(dv, 24, e.prp1, 'prp1');
  writeU64le(dv, 32, e.prp2, 'prp2');
  CDW_NAMES.forEach((name, i) => {
    checkUint(e[name], 32, name);
    dv.setUint32(40 + 4 * i, e[name], true);
  });
  return bytes;
}

/** Inverse of encodeSqe; FUSE, PSDT and MPTR are ignored. */
export function decodeSqe(bytes: Uint8Array): SubmissionEntry {
  const dv = view(bytes, SQE_BYTES, 'submission queue entry');
  const cdw0 = dv.getUint32(0, true);
  const cdw = (i: number) => dv.getUint32(40 + 4 * i, true);
  return {
    opcode: cdw0 & 0xff,
    cid: cdw0 >>> 16,
    nsid: dv.getUint32(4, true),
    prp1: readU64le(dv, 24, 'prp1'),
    prp2: readU64le(dv, 32, 'prp2'),
    cdw10: cdw(0),
    cdw11: cdw(1),
    cdw12: cdw(2),
    cdw13: cdw(3),
    cdw14: cdw(4),
    cdw15: cdw(5),
  };
}

/** A command with the given fields and every other dword zero. */
export function command(opcode: number, cid: number, nsid: number, fields: Partial<SubmissionEntry> = {}): SubmissionEntry {
  return { opcode, cid, nsid, prp1: 0, prp2: 0, cdw10: 0, cdw11: 0, cdw12: 0, cdw13: 0, cdw14: 0, cdw15: 0, ...fields };
}

/** Read/Write (§6): SLBA = CDW11:CDW10, NLB = CDW12 15:0 zero-based; `blocks` is 1..65536. */
export function ioCommand(opcode: number, cid: number, nsid: number, slba: number, blocks: number, prp1: number, prp2: number): SubmissionEntry {
  checkUint(blocks - 1, 16, 'blocks - 1 (NLB)');
  if (!Number.isInteger(slba) || slba < 0 || slba > MAX_U64_NUMBER) malformed(`slba ${slba} is outside 0..2^53`);
  return command(opcode, cid, nsid, { prp1, prp2, cdw10: slba % TWO32, cdw11: Math.floor(slba / TWO32), cdw12: blocks - 1 });
}

/** SLBA and one-based block count of a Read/Write. An SLBA above 2^53 comes back rounded, still above any capacity. */
export function ioFields(e: SubmissionEntry): { slba: number; blocks: number } {
  return { slba: e.cdw11 * TWO32 + e.cdw10, blocks: (e.cdw12 & 0xffff) + 1 };
}

// ---- Admin commands (§5) --------------------------------------------------------------------------

/** Identify (§5.15): CNS in CDW10 7:0; data (4096 bytes) goes to PRP1/PRP2. */
export function identifyCommand(cid: number, cns: number, nsid: number, prp1: number, prp2 = 0): SubmissionEntry {
  return command(ADMIN_OPCODE.IDENTIFY, cid, nsid, { prp1, prp2, cdw10: cns & 0xff });
}

export interface CreateCqFields {
  qid: number;
  entries: number; // one-based queue size
  prp1: number; // physically contiguous queue base
  interruptVector: number;
  interruptsEnabled: boolean;
}

/** Create I/O CQ (§5.3): CDW10 = QSIZE 31:16 (zero-based) | QID 15:0; CDW11 = IV 31:16 | IEN 1 | PC 0. */
export function createIoCqCommand(cid: number, f: CreateCqFields): SubmissionEntry {
  const cdw10 = ((((f.entries - 1) & 0xffff) << 16) | (f.qid & 0xffff)) >>> 0;
  const cdw11 = (((f.interruptVector & 0xffff) << 16) | (f.interruptsEnabled ? 2 : 0) | 1) >>> 0;
  return command(ADMIN_OPCODE.CREATE_IO_CQ, cid, 0, { prp1: f.prp1, cdw10, cdw11 });
}

export function createIoCqFields(e: SubmissionEntry): CreateCqFields & { physicallyContiguous: boolean } {
  return {
    qid: e.cdw10 & 0xffff,
    entries: (e.cdw10 >>> 16) + 1,
    prp1: e.prp1,
    interruptVector: e.cdw11 >>> 16,
    interruptsEnabled: (e.cdw11 & 2) !== 0,
    physicallyContiguous: (e.cdw11 & 1) !== 0,
  };
}

export interface CreateSqFields {
  qid: number;
  entries: number; // one-based queue size
  cqid: number;
  prp1: number; // physically contiguous queue base
  priority: number; // QPRIO, 0 = urgent .. 3 = low
}

/** Create I/O SQ (§5.4): CDW10 = QSIZE 31:16 (zero-based) | QID 15:0; CDW11 = CQID 31:16 | QPRIO 2:1 | PC 0. */
export function createIoSqCommand(cid: number, f: CreateSqFields): SubmissionEntry {
  const cdw10 = ((((f.entries - 1) & 0xffff) << 16) | (f.qid & 0xffff)) >>> 0;
  const cdw11 = (((f.cqid & 0xffff) << 16) | ((f.priority & 3) << 1) | 1) >>> 0;
  return command(ADMIN_OPCODE.CREATE_IO_SQ, cid, 0, { prp1: f.prp1, cdw10, cdw11 });
}

export function createIoSqFields(e: SubmissionEntry): CreateSqFields & { physicallyContiguous: boolean } {
  return {
    qid: e.cdw10 & 0xffff,
    entries: (e.cdw10 >>> 16) + 1,
    cqid: e.cdw11 >>> 16,
    prp1: e.prp1,
    priority: (e.cdw11 >>> 1) & 3,
    physicallyContiguous: (e.cdw11 & 1) !== 0,
  };
}

/** Delete I/O SQ / CQ (§5.5, §5.6): QID in CDW10 15:0. */
export function deleteIoQueueCommand(kind: 'sq' | 'cq', cid: number, qid: number): SubmissionEntry {
  const opcode = kind === 'sq' ? ADMIN_OPCODE.DELETE_IO_SQ : ADMIN_OPCODE.DELETE_IO_CQ;
  return command(opcode, cid, 0, { cdw10: qid & 0xffff });
}

// ---- Completion queue entry (§4.6) ---------------------------------------------------------------

/** A 16-byte completion. phase is 0 or 1. */
export interface CompletionEntry {
  dw0: number;
  sqHead: number;
  sqId: number;
  cid: number;
  phase: number;
  status: NvmeStatus;
}

/** DW0 command specific; DW1 reserved; DW2 = SQHD 15:0 | SQID 31:16; DW3 = CID 15:0 | P 16 | SC 24:17 | SCT 27:25 | CRD, M, DNR = 0 (§4.6). */
export function encodeCqe(c: CompletionEntry): Uint8Array {
  const bytes = new Uint8Array(CQE_BYTES);
  const dv = new DataView(bytes.buffer);
  checkUint(c.dw0, 32, 'dw0');
  checkUint(c.sqHead, 16, 'sqHead');
  checkUint(c.sqId, 16, 'sqId');
  checkUint(c.cid, 16, 'cid');
  checkUint(c.phase, 1, 'phase');
  checkUint(c.status.sc, 8, 'status code');
  checkUint(c.status.sct, 3, 'status code type');
  dv.setUint32(0, c.dw0, true);
  dv.setUint32(8, (c.sqHead | (c.sqId << 16)) >>> 0, true);
  dv.setUint32(12, (c.cid | (c.phase << 16) | (c.status.sc << 17) | (c.status.sct << 25)) >>> 0, true);
  return bytes;
}

/** Inverse of encodeCqe; CRD, More and DNR are ignored. */
export function decodeCqe(bytes: Uint8Array): CompletionEntry {
  const dv = view(bytes, CQE_BYTES, 'completion queue entry');
  const dw2 = dv.getUint32(8, true);
  const dw3 = dv.getUint32(12, true);
  return {
    dw0: dv.getUint32(0, true),
    sqHead: dw2 & 0xffff,
    sqId: dw2 >>> 16,
    cid: dw3 & 0xffff,
    phase: (dw3 >>> 16) & 1,
    status: { sct: (dw3 >>> 25) & 7, sc: (dw3 >>> 17) & 0xff },
  };
}

/** Phase tag of a CQE in raw form (DW3 bit 16, i.e. byte 14 bit 0): what a host polls before decoding (§4.6). */
export function cqePhase(bytes: Uint8Array, offset = 0): number {
  return bytes[offset + 14] & 1;
}

// ---- Identify data (§5.15) ------------------------------------------------------------------------

function writeAscii(bytes: Uint8Array, offset: number, width: number, text: string, what: string): void {
  if (text.length > width || !/^[\x20-\x7e]*$/.test(text)) malformed(`${what} '${text}' must be at most ${width} printable ASCII characters`);
  const padded = text.padEnd(width, ' ');
  for (let i = 0; i < width; i++) bytes[offset + i] = padded.charCodeAt(i);
}

/** An ASCII field: trailing spaces (or NULs) are padding; anything else must be printable, as writeAscii requires. */
function readAscii(bytes: Uint8Array, offset: number, width: number, what: string): string {
  const text = String.fromCharCode(...bytes.subarray(offset, offset + width)).replace(/[ \0]+$/, '');
  if (!/^[\x20-\x7e]*$/.test(text)) malformed(`${what} holds a byte that is not printable ASCII: ${JSON.stringify(text)}`);
  return text;
}

/** Identify Controller fields the model uses; trailing spaces are padding and are not part of the strings. */
export interface IdentifyController {
  serial: string; // SN, bytes 23:04, 20 chars
  model: string; // MN, bytes 63:24, 40 chars
  firmware: string; // FR, bytes 71:64, 8 chars
  vid?: number; // PCI vendor id, bytes 1:0
  mdts?: number; // maximum data transfer size, byte 77: 2^mdts * CAP.MPSMIN pages, 0 = no limit
  nn?: number; // number of namespaces, bytes 519:516
}

/** 4096-byte Identify Controller data structure; SQES = 0x66 and CQES = 0x44 (64 B / 16 B entries). */
export function encodeIdentifyController(c: IdentifyController): Uint8Array {
  const bytes = new Uint8Array(IDENTIFY_BYTES);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(0, c.vid ?? 0, true);
  writeAscii(bytes, 4, 20, c.serial, 'serial');
  writeAscii(bytes, 24, 40, c.model, 'model');
  writeAscii(bytes, 64, 8, c.firmware, 'firmware');
  bytes[77] = c.mdts ?? 0;
  bytes[512] = 0x66; // SQES: max 2^6, required 2^6
  bytes[513] = 0x44; // CQES: max 2^4, required 2^4
  dv.setUint32(516, c.nn ?? 1, true);
  return bytes;
}

export function decodeIdentifyController(bytes: Uint8Array): Required<IdentifyController> {
  const dv = view(bytes, IDENTIFY_BYTES, 'Identify Controller data');
  return {
    serial: readAscii(bytes, 4, 20, 'serial number'),
    model: readAscii(bytes, 24, 40, 'model number'),
    firmware: readAscii(bytes, 64, 8, 'firmware revision'),
    vid: dv.getUint16(0, true),
    mdts: bytes[77],
    nn: dv.getUint32(516, true),
  };
}

/** Identify Namespace fields: sizes in logical blocks; block size = 2^lbaDataSizeLog2 bytes (>= 9). */
export interface IdentifyNamespace {
  nszeBlocks: number;
  ncapBlocks: number;
  nuseBlocks?: number; // defaults to ncapBlocks
  lbaDataSizeLog2: number;
}

/** NSZE 7:0, NCAP 15:8, NUSE 23:16, NLBAF 25 = 0 (one format), FLBAS 26 = 0, LBAF0 at 131:128 with LBADS 23:16. */
export function encodeIdentifyNamespace(n: IdentifyNamespace): Uint8Array {
  const bytes = new Uint8Array(IDENTIFY_BYTES);
  const dv = new DataView(bytes.buffer);
  if (!Number.isInteger(n.lbaDataSizeLog2) || n.lbaDataSizeLog2 < 9 || n.lbaDataSizeLog2 > 31) malformed(`lbaDataSizeLog2 ${n.lbaDataSizeLog2} is outside 9..31`);
  writeU64le(dv, 0, n.nszeBlocks, 'NSZE');
  writeU64le(dv, 8, n.ncapBlocks, 'NCAP');
  writeU64le(dv, 16, n.nuseBlocks ?? n.ncapBlocks, 'NUSE');
  dv.setUint32(128, n.lbaDataSizeLog2 << 16, true); // MS 15:0 = 0, LBADS 23:16, RP 25:24 = 0
  return bytes;
}

/** Decodes the format selected by FLBAS 3:0; throws when it is beyond NLBAF or has LBADS < 9. */
export function decodeIdentifyNamespace(bytes: Uint8Array): Required<IdentifyNamespace> {
  const dv = view(bytes, IDENTIFY_BYTES, 'Identify Namespace data');
  const format = bytes[26] & 0xf;
  if (format > bytes[25]) malformed(`FLBAS selects LBA format ${format} but NLBAF is ${bytes[25]}`);
  const lbads = (dv.getUint32(128 + 4 * format, true) >>> 16) & 0xff;
  if (lbads < 9) malformed(`LBA format ${format} has LBADS ${lbads} (< 9, unsupported)`);
  return {
    nszeBlocks: readU64le(dv, 0, 'NSZE'),
    ncapBlocks: readU64le(dv, 8, 'NCAP'),
    nuseBlocks: readU64le(dv, 16, 'NUSE'),
    lbaDataSizeLog2: lbads,
  };
}
