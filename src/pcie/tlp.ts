/**
 * Transaction Layer Packets. One class for every kind keeps objects monomorphic (fast to pass through
 * the fabric); `encodeTlp` / `decodeTlp` in tlp-codec.ts give the PCIe Base Specification byte layout.
 */
import type { StateDigest } from '../core/digest.js';
import type { Ring } from '../core/ring.js';

export type TlpKind = 'MRd' | 'MWr' | 'Cpl' | 'CplD' | 'CfgRd0' | 'CfgWr0' | 'CfgRd1' | 'CfgWr1';

/** Completion status field values (PCIe Base Spec, completion header). */
export const CPL_STATUS = { SC: 0, UR: 1, CRS: 2, CA: 4 } as const;

/** Flow-control class that a TLP consumes credits from. */
export type FcClass = 'P' | 'NP' | 'CPL';

/**
 * Read requests back to back from `address` (burst granularity, pcie/burst.ts): request j asks for
 * `lens[j]` bytes with tag `tags[j]`; `ends[j]` is where it ends, in bytes from `address`.
 */
export interface ReadSet {
  readonly address: number;
  readonly tags: Uint16Array;
  readonly lens: Uint16Array;
  readonly ends: Float64Array;
}

export class Tlp {
  kind: TlpKind = 'MWr';
  /** Memory requests: byte address of the first DW (DW aligned). 4DW header iff >= 4 GiB. */
  address = 0;
  /** Payload length (with data) or requested length (reads), in DW, 1..1024. */
  lengthDw = 1;
  firstBe = 0xf;
  lastBe = 0;
  /** Bus/device/function of the requester (16 bits). */
  requesterId = 0;
  tag = 0;
  /** Completions: completer id, status, remaining byte count, lower address bits 6:0. */
  completerId = 0;
  status = 0;
  byteCount = 0;
  lowerAddress = 0;
  /** Config requests: target bus/device/function and DW-aligned register byte offset (0..4092). */
  targetId = 0;
  register = 0;
  /** Payload for MWr, CplD, CfgWr: exactly lengthDw * 4 bytes (a burst's: all its constituents', contiguous). */
  data: Uint8Array | null = null;
  /**
   * Burst granularity (pcie/burst.ts): the TLPs this object stands for, back to back (1: a plain TLP;
   * the header fields then describe the first constituent), the payload bytes of each (null: one TLP),
   * and when each is wholly available at its current holder, ps (null: all at the time it is handed over).
   */
  count = 1;
  parts: Uint16Array | null = null;
  readyPs: Float64Array | null = null;
  /**
   * A read burst (pcie/burst.ts `ReadSet`): the read requests an MRd burst stands for, or those the
   * completions of a completion burst answer, with `readsOffsetBytes` (a completion burst's first
   * byte, counted from the set's first requested byte). null: one request (a plain read's completions).
   */
  reads: ReadSet | null = null;
  readsOffsetBytes = 0;

  static memWrite(requesterId: number, address: number, data: Uint8Array, tag = 0): Tlp {
    const t = new Tlp();
    t.kind = 'MWr';
    t.requesterId = requesterId;
    t.tag = tag;
    t.address = address;
    t.lengthDw = data.length >>> 2;
    t.lastBe = t.lengthDw > 1 ? 0xf : 0;
    t.data = data;
    return t;
  }

  static memRead(requesterId: number, tag: number, address: number, lengthBytes: number): Tlp {
    const t = new Tlp();
    t.kind = 'MRd';
    t.requesterId = requesterId;
    t.tag = tag;
    t.address = address;
    t.lengthDw = lengthBytes >>> 2;
    t.lastBe = t.lengthDw > 1 ? 0xf : 0;
    return t;
  }

  /**
   * A completion for `req`; `data` null means Cpl (no data), e.g. for an error or a config write.
   * A Cpl given `byteCount` 0 (an error completion's "no bytes") gets the value §2.2.9 requires, so
   * it can be encoded: the bytes the request asked for when it is a memory read, else 4.
   */
  static completion(req: Tlp, completerId: number, status: number, data: Uint8Array | null, byteCount: number, lowerAddress: number): Tlp {
    if (data === null && byteCount === 0) byteCount = req.kind === 'MRd' ? requestedBytes(req) : 4;
    const t = new Tlp();
    t.kind = data ? 'CplD' : 'Cpl';
    t.requesterId = req.requesterId;
    t.tag = req.tag;
    t.completerId = completerId;
    t.status = status;
    t.data = data;
    t.lengthDw = data ? data.length >>> 2 : 0;
    t.firstBe = 0;
    t.lastBe = 0;
    t.byteCount = byteCount;
    t.lowerAddress = lowerAddress & 0x7f;
    return t;
  }

  static config(kind: 'CfgRd0' | 'CfgWr0' | 'CfgRd1' | 'CfgWr1', requesterId: number, tag: number, targetId: number, register: number, data: Uint8Array | null): Tlp {
    const t = new Tlp();
    t.kind = kind;
    t.requesterId = requesterId;
    t.tag = tag;
    t.targetId = targetId;
    t.register = register;
    t.lengthDw = 1;
    t.data = data;
    return t;
  }
}

/** Bytes a memory request asks for, from its length and byte enables (§2.2.9's Byte Count of its first completion). */
export function requestedBytes(t: Tlp): number {
  if (t.lengthDw === 1) {
    const be = t.firstBe & 0xf;
    if (be === 0) return 1; // a zero-length read completes with Byte Count 1
    return 31 - Math.clz32(be) - (31 - Math.clz32(be & -be)) + 1;
  }
  const lead = t.firstBe === 0 ? 4 : 31 - Math.clz32(t.firstBe & -t.firstBe);
  const trail = t.lastBe === 0 ? 4 : 3 - (31 - Math.clz32(t.lastBe & 0xf));
  return Math.min(4096, t.lengthDw * 4 - lead - trail);
}

export function hasData(kind: TlpKind): boolean {
  return kind === 'MWr' || kind === 'CplD' || kind === 'CfgWr0' || kind === 'CfgWr1';
}

/** Header bytes: 16 (4DW) for memory requests at >= 4 GiB, else 12 (3DW). */
export function headerBytes(t: Tlp): number {
  return headerBytesAt(t.kind, t.address);
}

/** Header bytes of a TLP of `kind` at `address` (a burst's constituent starts further on: pcie/burst.ts). */
export function headerBytesAt(kind: TlpKind, address: number): number {
  return (kind === 'MRd' || kind === 'MWr') && address >= 0x1_0000_0000 ? 16 : 12;
}

/** Payload bytes carried by the TLP (0 for requests without data and for Cpl). */
export function payloadBytes(t: Tlp): number {
  return t.data ? t.data.length : 0;
}

export function fcClass(kind: TlpKind): FcClass {
  switch (kind) {
    case 'MWr':
      return 'P';
    case 'Cpl':
    case 'CplD':
      return 'CPL';
    default:
      return 'NP';
  }
}

/** Bus/device/function packing. */
export function bdf(bus: number, dev: number, fn = 0): number {
  return ((bus & 0xff) << 8) | ((dev & 0x1f) << 3) | (fn & 0x7);
}
export function bdfBus(id: number): number {
  return (id >>> 8) & 0xff;
}
export function formatBdf(id: number): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(bdfBus(id), 2)}:${h((id >>> 3) & 0x1f, 2)}.${id & 7}`;
}

/**
 * What of a TLP decides its future (digests for the exact fast path): kind, sizes, ids, completion
 * fields, and its address as the 16 MiB region (which window routes it) plus the offset in its 4 KiB
 * page (boundaries split and align what follows); the rest of the address is a label.
 */
export function digestTlp(d: StateDigest, t: Tlp): void {
  d.str(t.kind);
  d.num(t.lengthDw);
  d.num(t.data ? t.data.length : -1);
  d.num(Math.floor(t.address / 2 ** 24));
  d.num(t.address % 4096);
  d.num(t.requesterId);
  d.num(t.completerId);
  d.num(t.status);
  d.num(t.byteCount);
  d.num(t.lowerAddress);
  d.num(t.targetId);
  d.num(t.register);
  if (t.reads !== null) {
    // A read burst: its requests' lengths and where its completions start (tags are labels).
    d.num(t.count);
    d.num(t.readsOffsetBytes);
    for (let j = 0; j < t.reads.lens.length; j++) d.num(t.reads.lens[j]);
  }
}

/** A queue of TLPs for digests: its length, then each TLP oldest first. */
export function digestTlps(d: StateDigest, q: Ring<Tlp>): void {
  d.num(q.length);
  for (let i = 0; i < q.length; i++) digestTlp(d, q.at(i)!);
}
