/**
 * Byte-exact TLP encoder/decoder, following the PCIe Base Specification rev 3.0/4.0, section 2.2:
 *  - §2.2.1  common header fields (Fmt, Type, TC, TD, EP, Attr, AT, Length; Length 1024 DW is encoded as 0)
 *            and the Fmt/Type encodings (rev 3.0 table 2-3);
 *  - §2.2.2  payload size must equal Length; §2.2.3 TD/digest (not modelled: TD=1 is rejected);
 *  - §2.2.4.1 memory addresses: 3DW header below 4 GiB, 4DW header (only) at or above 4 GiB;
 *  - §2.2.5  First/Last DW Byte Enables (Length 1 => Last BE 0; Length > 1 => both BEs non-zero);
 *  - §2.2.6.2 Requester ID / Tag; §2.2.7 memory and configuration requests (config: Length 1, Last BE 0,
 *            Bus/Device/Function, Ext Register Number, Register Number);
 *  - §2.2.9  completions (Completer ID, Status, BCM, Byte Count with 4096 encoded as 0, Lower Address).
 * Header bytes are big-endian, byte 0 first, as on the wire. Fields this model does not carry (TC, Attr,
 * TH, AT, BCM, 10-bit tag bits) are written as 0 and ignored on decode. Fields that a kind's header does
 * not contain (e.g. a completion's byte enables, a memory request's completerId) are not encoded and
 * decode as the Tlp defaults 0 (firstBe/lastBe of completions decode as 0, Cpl lengthDw as 0).
 */
import { DconnectError } from '../core/errors.js';
import { Tlp, headerBytes, type TlpKind } from './tlp.js';

const TWO_32 = 0x1_0000_0000;
const TWO_53 = 2 ** 53;

/** Byte 0 of the header: Fmt[2:0] in bits 7:5, Type[4:0] in bits 4:0. */
const FT_MRD3 = 0x00; // 000 00000
const FT_MRD4 = 0x20; // 001 00000
const FT_MWR3 = 0x40; // 010 00000
const FT_MWR4 = 0x60; // 011 00000
const FT_CFGRD0 = 0x04; // 000 00100
const FT_CFGWR0 = 0x44; // 010 00100
const FT_CFGRD1 = 0x05; // 000 00101
const FT_CFGWR1 = 0x45; // 010 00101
const FT_CPL = 0x0a; // 000 01010
const FT_CPLD = 0x4a; // 010 01010

function malformed(message: string): DconnectError {
  return new DconnectError('MALFORMED_PACKET', message);
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/** Throws unless `v` is an integer in 0..mask (mask = 2^k - 1, k <= 31). */
function checkField(v: number, mask: number, kind: TlpKind, name: string): void {
  if ((v & mask) !== v) throw malformed(`cannot encode ${kind}: ${name} ${v} is not an integer in 0..${mask}`);
}

/** Spec byte-enable rules shared by encode and decode (§2.2.5); returns an error message or null. */
function beProblem(lengthDw: number, firstBe: number, lastBe: number): string | null {
  if (lengthDw === 1) {
    return lastBe !== 0 ? `Last DW BE is ${hex(lastBe)} but must be 0 for a 1 DW request` : null;
  }
  if (firstBe === 0) return `First DW BE is 0 but must be non-zero for a ${lengthDw} DW request`;
  if (lastBe === 0) return `Last DW BE is 0 but must be non-zero for a ${lengthDw} DW request`;
  return null;
}

/** Header + payload bytes of the encoded TLP. */
export function encodedLength(t: Tlp): number {
  return headerBytes(t) + (t.data ? t.data.length : 0);
}

/** Encode `t` into a fresh Uint8Array (header followed by the payload). */
export function encodeTlp(t: Tlp): Uint8Array {
  const out = new Uint8Array(encodedLength(t));
  encodeTlpInto(t, out, 0);
  return out;
}

/**
 * Encode `t` into `out` at `offset` without allocating; returns the number of bytes written. Every header
 * byte is written (reserved bits as 0), so `out` may be a reused buffer.
 */
export function encodeTlpInto(t: Tlp, out: Uint8Array, offset: number): number {
  const kind = t.kind;
  const hdr = headerBytes(t);
  const data = t.data;
  const payload = data ? data.length : 0;
  const total = hdr + payload;
  if (offset < 0 || out.length - offset < total) {
    throw new RangeError(`encodeTlpInto: ${total} bytes do not fit at offset ${offset} of a ${out.length}-byte buffer`);
  }

  let ft: number;
  let lengthField: number; // Length field value (0..1023; 1024 DW encodes as 0)
  let dw1: number;
  switch (kind) {
    case 'MRd':
    case 'MWr': {
      const withData = kind === 'MWr';
      checkLengthAndData(t, withData);
      checkField(t.requesterId, 0xffff, kind, 'requesterId');
      checkField(t.tag, 0xff, kind, 'tag');
      checkField(t.firstBe, 0xf, kind, 'firstBe');
      checkField(t.lastBe, 0xf, kind, 'lastBe');
      const be = beProblem(t.lengthDw, t.firstBe, t.lastBe);
      if (be !== null) throw malformed(`cannot encode ${kind}: ${be}`);
      const a = t.address;
      if (!(Number.isInteger(a) && a >= 0 && a <= TWO_53) || a % 4 !== 0) {
        throw malformed(`cannot encode ${kind}: address ${a} is not a DW-aligned integer in 0..2^53`);
      }
      ft = hdr === 16 ? (withData ? FT_MWR4 : FT_MRD4) : withData ? FT_MWR3 : FT_MRD3;
      lengthField = t.lengthDw & 0x3ff;
      dw1 = (t.requesterId << 16) | (t.tag << 8) | (t.lastBe << 4) | t.firstBe;
      if (hdr === 16) {
        const hi = Math.floor(a / TWO_32);
        put32(out, offset + 8, hi);
        put32(out, offset + 12, a - hi * TWO_32);
      } else {
        put32(out, offset + 8, a);
      }
      break;
    }
    case 'CfgRd0':
    case 'CfgWr0':
    case 'CfgRd1':
    case 'CfgWr1': {
      const withData = kind === 'CfgWr0' || kind === 'CfgWr1';
      if (t.lengthDw !== 1) throw malformed(`cannot encode ${kind}: lengthDw is ${t.lengthDw} but config requests must be 1 DW`);
      checkLengthAndData(t, withData);
      checkField(t.requesterId, 0xffff, kind, 'requesterId');
      checkField(t.tag, 0xff, kind, 'tag');
      checkField(t.firstBe, 0xf, kind, 'firstBe');
      if (t.lastBe !== 0) throw malformed(`cannot encode ${kind}: lastBe is ${hex(t.lastBe)} but must be 0 for a config request`);
      checkField(t.targetId, 0xffff, kind, 'targetId');
      if ((t.register & 0xffc) !== t.register) {
        throw malformed(`cannot encode ${kind}: register ${t.register} is not a DW-aligned offset in 0..4092`);
      }
      ft = kind === 'CfgRd0' ? FT_CFGRD0 : kind === 'CfgWr0' ? FT_CFGWR0 : kind === 'CfgRd1' ? FT_CFGRD1 : FT_CFGWR1;
      lengthField = 1;
      dw1 = (t.requesterId << 16) | (t.tag << 8) | t.firstBe;
      // Bus(8) Device(5) Function(3) | Reserved(4) | Ext Register Number(4) | Register Number(6) | R(2)
      put32(out, offset + 8, (t.targetId << 16) | t.register);
      break;
    }
    case 'Cpl':
    case 'CplD': {
      const withData = kind === 'CplD';
      if (withData) checkLengthAndData(t, true);
      else if (data !== null) throw malformed(`cannot encode Cpl: it carries no data but has ${data.length} payload bytes`);
      checkField(t.completerId, 0xffff, kind, 'completerId');
      checkField(t.status, 0x7, kind, 'status');
      const bc = t.byteCount;
      if (!(Number.isInteger(bc) && bc >= 1 && bc <= 4096)) {
        throw malformed(`cannot encode ${kind}: byteCount ${bc} is not an integer in 1..4096`);
      }
      checkField(t.requesterId, 0xffff, kind, 'requesterId');
      checkField(t.tag, 0xff, kind, 'tag');
      checkField(t.lowerAddress, 0x7f, kind, 'lowerAddress');
      ft = withData ? FT_CPLD : FT_CPL;
      lengthField = withData ? t.lengthDw & 0x3ff : 0; // Length is reserved for Cpl
      // Completer ID(16) | Status(3) | BCM(1) | Byte Count(12)
      dw1 = (t.completerId << 16) | (t.status << 13) | (bc & 0xfff);
      // Requester ID(16) | Tag(8) | R(1) | Lower Address(7)
      put32(out, offset + 8, (t.requesterId << 16) | (t.tag << 8) | t.lowerAddress);
      break;
    }
    default:
      throw malformed(`cannot encode TLP of unknown kind ${String(kind)}`);
  }

  out[offset] = ft;
  out[offset + 1] = 0; // T9 / TC / T8 / Attr[2] / LN / TH
  out[offset + 2] = lengthField >>> 8; // TD=0 EP=0 Attr[1:0]=0 AT=0 Length[9:8]
  out[offset + 3] = lengthField & 0xff;
  put32(out, offset + 4, dw1);
  if (data !== null && payload > 0) out.set(data, offset + hdr);
  return total;
}

/** Length in 1..1024 and payload of exactly lengthDw*4 bytes (with data) or none (without). */
function checkLengthAndData(t: Tlp, withData: boolean): void {
  const n = t.lengthDw;
  if (!(Number.isInteger(n) && n >= 1 && n <= 1024)) {
    throw malformed(`cannot encode ${t.kind}: lengthDw ${n} is not an integer in 1..1024`);
  }
  const data = t.data;
  if (withData) {
    if (data === null) throw malformed(`cannot encode ${t.kind}: it carries data but data is null`);
    if (data.length !== n * 4) {
      throw malformed(`cannot encode ${t.kind}: lengthDw is ${n} DW but data has ${data.length} bytes (expected ${n * 4})`);
    }
  } else if (data !== null) {
    throw malformed(`cannot encode ${t.kind}: it carries no data but has ${data.length} payload bytes`);
  }
}

/** Big-endian 32-bit store and load (every multi-byte field on the wire; the ExpEther codec uses them too). */
export function put32(out: Uint8Array, i: number, v: number): void {
  out[i] = v >>> 24;
  out[i + 1] = v >>> 16;
  out[i + 2] = v >>> 8;
  out[i + 3] = v;
}

export function get32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

/**
 * Decode one TLP occupying all of `bytes` (header + payload, no digest). Throws DconnectError
 * 'MALFORMED_PACKET' naming the problem. The payload is copied, never aliased.
 */
export function decodeTlp(bytes: Uint8Array): Tlp {
  const n = bytes.length;
  if (n < 12) throw malformed(`TLP is ${n} bytes but the smallest (3DW) header is 12 bytes`);
  const ft = bytes[0]!;
  const b2 = bytes[2]!;
  const field = ((b2 & 0x3) << 8) | bytes[3]!;
  const lengthDw = field === 0 ? 1024 : field;
  const dw1 = get32(bytes, 4);

  let kind: TlpKind;
  let hdr = 12;
  switch (ft) {
    case FT_MRD3: kind = 'MRd'; break;
    case FT_MRD4: kind = 'MRd'; hdr = 16; break;
    case FT_MWR3: kind = 'MWr'; break;
    case FT_MWR4: kind = 'MWr'; hdr = 16; break;
    case FT_CFGRD0: kind = 'CfgRd0'; break;
    case FT_CFGWR0: kind = 'CfgWr0'; break;
    case FT_CFGRD1: kind = 'CfgRd1'; break;
    case FT_CFGWR1: kind = 'CfgWr1'; break;
    case FT_CPL: kind = 'Cpl'; break;
    case FT_CPLD: kind = 'CplD'; break;
    default:
      throw malformed(`unknown or unsupported TLP Fmt/Type: Fmt ${(ft >>> 5).toString(2).padStart(3, '0')} Type ${(ft & 0x1f).toString(2).padStart(5, '0')} (byte 0 = ${hex(ft)})`);
  }
  if (b2 & 0x80) throw malformed(`${kind} has TD set (TLP digest / ECRC), which is not supported`);
  if (b2 & 0x40) throw malformed(`${kind} has EP set (poisoned TLP), which is not supported`);
  if (n < hdr) throw malformed(`${kind} uses a 4DW header (16 bytes) but the TLP is only ${n} bytes`);

  const withData = (ft & 0x40) !== 0;
  const payload = n - hdr;
  const isCpl = kind === 'Cpl' || kind === 'CplD';
  const isCfg = !isCpl && kind !== 'MRd' && kind !== 'MWr';
  if (withData) {
    if (isCfg && lengthDw !== 1) throw malformed(`${kind} length field is ${lengthDw} DW but config requests must be 1 DW`);
    if (payload !== lengthDw * 4) {
      throw malformed(
        payload < lengthDw * 4
          ? `TLP length field says ${lengthDw} DW but only ${payload} payload bytes follow`
          : `TLP length field says ${lengthDw} DW (${lengthDw * 4} bytes) but ${payload} payload bytes follow`,
      );
    }
  } else if (payload !== 0) {
    throw malformed(`${kind} carries no data but ${payload} bytes follow the ${hdr}-byte header`);
  }

  const t = new Tlp();
  t.kind = kind;
  if (isCpl) {
    t.completerId = dw1 >>> 16;
    t.status = (dw1 >>> 13) & 0x7;
    const bc = dw1 & 0xfff;
    t.byteCount = bc === 0 ? 4096 : bc;
    const dw2 = get32(bytes, 8);
    t.requesterId = dw2 >>> 16;
    t.tag = (dw2 >>> 8) & 0xff;
    t.lowerAddress = dw2 & 0x7f;
    t.firstBe = 0;
    t.lastBe = 0;
    t.lengthDw = withData ? lengthDw : 0; // Length is reserved for Cpl
  } else {
    t.requesterId = dw1 >>> 16;
    t.tag = (dw1 >>> 8) & 0xff;
    t.lastBe = (dw1 >>> 4) & 0xf;
    t.firstBe = dw1 & 0xf;
    t.lengthDw = lengthDw;
    if (isCfg) {
      if (lengthDw !== 1) throw malformed(`${kind} length field is ${lengthDw} DW but config requests must be 1 DW`);
      if (t.lastBe !== 0) throw malformed(`${kind} Last DW BE is ${hex(t.lastBe)} but must be 0 for a config request`);
      const dw2 = get32(bytes, 8);
      t.targetId = dw2 >>> 16;
      t.register = dw2 & 0xffc;
    } else {
      const be = beProblem(lengthDw, t.firstBe, t.lastBe);
      if (be !== null) throw malformed(`${kind} ${be}`);
      if (hdr === 16) {
        const hi = get32(bytes, 8);
        const lo = get32(bytes, 12) & 0xfffffffc;
        if (hi === 0) {
          throw malformed(`${kind} uses a 4DW header for address ${hex(lo >>> 0)} below 4 GiB (the spec requires a 3DW header)`);
        }
        const addr = hi * TWO_32 + (lo >>> 0);
        if (addr > TWO_53) throw malformed(`${kind} address 0x${hi.toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')} is beyond 2^53, which this model cannot represent`);
        t.address = addr;
      } else {
        t.address = (get32(bytes, 8) & 0xfffffffc) >>> 0;
      }
    }
  }
  if (withData) t.data = bytes.slice(hdr, n);
  return t;
}
