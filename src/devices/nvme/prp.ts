/**
 * Physical Region Page (PRP) mapping as pure functions (NVMe 1.4 §4.3; compare QEMU's nvme_map_prp).
 *
 * Device side: `prpPlan` turns PRP1/PRP2 and a length into direct segments, or says a PRP list must be
 * read; `prpListFetches` says which pieces of the list to read (a full list page ends with a pointer to
 * the next list page); `prpListSegments` turns the entries read into segments. Errors come back as an
 * NVMe status, since the controller answers them with a completion rather than failing.
 *
 * Host side: `buildPrps` lays a scattered buffer out as PRP1/PRP2 plus (chained) PRP list pages.
 * Addresses are numbers (integers below 2^53); the page size is a power of two (CC.MPS, usually 4096).
 */
import { DconnectError } from '../../core/errors.js';
import { STATUS, type NvmeStatus } from './nvme-defs.js';
import { readU64le, writeU64le } from './nvme-structs.js';

/** A physically contiguous piece of a data buffer. */
export interface Segment {
  address: number;
  lengthBytes: number;
}

export interface PrpError {
  kind: 'error';
  status: NvmeStatus;
  reason: string;
}

/** Result of prpPlan: the whole transfer, or the first segment plus a PRP list still to be read. */
export type PrpPlan =
  | { kind: 'direct'; segments: Segment[] }
  | { kind: 'list'; firstSegment: Segment; listAddress: number; entriesNeeded: number }
  | PrpError;

/** Result of prpListSegments: every segment of the transfer (first one included), merged. */
export type PrpSegments = { kind: 'segments'; segments: Segment[] } | PrpError;

/**
 * One read of PRP list entries: `entries` 8-byte entries at `address`. When `chained`, the last entry
 * read is the pointer to the next list page, which is where the next fetch reads (its `address` is null
 * here because it is only known once this fetch has completed).
 */
export interface PrpListFetch {
  address: number | null;
  entries: number;
  chained: boolean;
}

/** A PRP list page the host writes to memory: entries in order, a chain pointer last if chained. */
export interface PrpListPage {
  address: number;
  entries: number[];
}

export interface BuiltPrps {
  prp1: number;
  prp2: number;
  listPages: PrpListPage[];
}

/** Size of one PRP entry (§4.3). */
export const PRP_ENTRY_BYTES = 8;

function checkPageBytes(pageBytes: number): void {
  if (!Number.isInteger(pageBytes) || pageBytes < 16 || !Number.isInteger(Math.log2(pageBytes))) {
    throw new DconnectError('BAD_PARAM', `PRP page size ${pageBytes} is not a power of two >= 16`);
  }
}

/** PRP list entries that fit in one list page. */
export function prpEntriesPerPage(pageBytes: number): number {
  return pageBytes / PRP_ENTRY_BYTES;
}

function prpError(status: NvmeStatus, reason: string): PrpError {
  return { kind: 'error', status, reason };
}

const hex = (v: number) => `0x${v.toString(16)}`;

/** Joins neighbouring segments that are physically contiguous (fewer DMA requests). */
export function mergeSegments(segments: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const last = out[out.length - 1];
    if (last && last.address + last.lengthBytes === s.address) last.lengthBytes += s.lengthBytes;
    else if (s.lengthBytes > 0) out.push({ address: s.address, lengthBytes: s.lengthBytes });
  }
  return out;
}

/**
 * §4.3: PRP1 may point into a page (dword aligned) and covers up to that page's end. If one more page
 * suffices, PRP2 is that page (page aligned); otherwise PRP2 points to a PRP list (qword aligned; it may
 * start inside a page, as Linux's 256-byte list pool does).
 */
export function prpPlan(prp1: number, prp2: number, lengthBytes: number, pageBytes: number): PrpPlan {
  checkPageBytes(pageBytes);
  if (!Number.isInteger(lengthBytes) || lengthBytes <= 0) return prpError(STATUS.INVALID_FIELD, `transfer length ${lengthBytes} is not positive`);
  if (prp1 % 4 !== 0) return prpError(STATUS.PRP_OFFSET_INVALID, `PRP1 ${hex(prp1)} is not dword aligned`);
  const firstSegment = { address: prp1, lengthBytes: Math.min(lengthBytes, pageBytes - (prp1 % pageBytes)) };
  const rest = lengthBytes - firstSegment.lengthBytes;
  if (rest === 0) return { kind: 'direct', segments: [firstSegment] };
  if (rest <= pageBytes) {
    if (prp2 % pageBytes !== 0) return prpError(STATUS.PRP_OFFSET_INVALID, `PRP2 ${hex(prp2)} is not page aligned`);
    return { kind: 'direct', segments: mergeSegments([firstSegment, { address: prp2, lengthBytes: rest }]) };
  }
  if (prp2 % PRP_ENTRY_BYTES !== 0) return prpError(STATUS.PRP_OFFSET_INVALID, `PRP list pointer ${hex(prp2)} is not qword aligned`);
  return { kind: 'list', firstSegment, listAddress: prp2, entriesNeeded: Math.ceil(rest / pageBytes) };
}

/**
 * The reads that fetch a PRP list of `entriesNeeded` data entries starting at `listAddress` (§4.3): each
 * read stops at the end of a list page; if entries remain, that page's last entry is a chain pointer.
 */
export function prpListFetches(listAddress: number, entriesNeeded: number, pageBytes: number): PrpListFetch[] {
  checkPageBytes(pageBytes);
  const fetches: PrpListFetch[] = [];
  let capacity = (pageBytes - (listAddress % pageBytes)) / PRP_ENTRY_BYTES;
  let address: number | null = listAddress;
  for (let left = entriesNeeded; left > 0; ) {
    const chained = left > capacity;
    const entries = chained ? capacity : left;
    fetches.push({ address, entries, chained });
    left -= chained ? entries - 1 : entries;
    address = null;
    capacity = prpEntriesPerPage(pageBytes);
  }
  return fetches;
}

/**
 * All segments of a list-mapped transfer: `firstSegment` (from prpPlan) then one page per data entry,
 * skipping chain pointers, merged where contiguous. `entries` are the entries of every fetch of
 * prpListFetches, concatenated in order. `listAddress` (PRP2) matters only when it is not page aligned.
 */
export function prpListSegments(firstSegment: Segment, entries: readonly number[], remainingBytes: number, pageBytes: number, listAddress = 0): PrpSegments {
  const fetches = prpListFetches(listAddress, Math.ceil(remainingBytes / pageBytes), pageBytes);
  const total = fetches.reduce((n, f) => n + f.entries, 0);
  if (entries.length < total) throw new DconnectError('MALFORMED_PACKET', `PRP list needs ${total} entries, got ${entries.length}`);
  const segments: Segment[] = [firstSegment];
  let index = 0;
  let left = remainingBytes;
  for (const f of fetches) {
    for (let j = 0; j < f.entries; j++, index++) {
      const entry = entries[index];
      if (entry % pageBytes !== 0) return prpError(STATUS.PRP_OFFSET_INVALID, `PRP list entry ${index} (${hex(entry)}) is not page aligned`);
      if (f.chained && j === f.entries - 1) continue; // pointer to the next list page
      segments.push({ address: entry, lengthBytes: Math.min(left, pageBytes) });
      left -= pageBytes;
    }
  }
  return { kind: 'segments', segments: mergeSegments(segments) };
}

/** PRP entries as they sit in memory (64-bit little-endian). */
export function encodePrpEntries(entries: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * PRP_ENTRY_BYTES);
  const dv = new DataView(bytes.buffer);
  entries.forEach((e, i) => writeU64le(dv, i * PRP_ENTRY_BYTES, e, 'PRP entry'));
  return bytes;
}

/** Entries from list bytes read by the device; throws MALFORMED_PACKET on a ragged length or an entry above 2^53. */
export function decodePrpEntries(bytes: Uint8Array): number[] {
  if (bytes.length % PRP_ENTRY_BYTES !== 0) throw new DconnectError('MALFORMED_PACKET', `PRP list data of ${bytes.length} bytes is not a whole number of entries`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / PRP_ENTRY_BYTES }, (_, i) => readU64le(dv, i * PRP_ENTRY_BYTES, 'PRP entry'));
}

function badBuffer(message: string): never {
  throw new DconnectError('MALFORMED_PACKET', `buffer cannot be described by PRPs: ${message}`);
}

/** One PRP entry per memory page the first `lengthBytes` of the buffer touch; checks the PRP shape rules. */
function pageEntries(bufferSegments: readonly Segment[], lengthBytes: number, pageBytes: number): number[] {
  const pages: number[] = [];
  let left = lengthBytes;
  for (const [k, s] of bufferSegments.entries()) {
    if (left === 0) break;
    if (s.lengthBytes === 0) continue;
    if (pages.length === 0 && s.address % 4 !== 0) badBuffer(`segment ${k} starts at ${hex(s.address)}, not dword aligned`);
    if (pages.length > 0 && s.address % pageBytes !== 0) badBuffer(`segment ${k} starts at ${hex(s.address)}, inside a page`);
    const end = s.address + Math.min(left, s.lengthBytes);
    for (let a = s.address; a < end; a = (Math.floor(a / pageBytes) + 1) * pageBytes) pages.push(a);
    left -= end - s.address;
    if (left > 0 && end % pageBytes !== 0) badBuffer(`segment ${k} ends at ${hex(end)}, inside a page`);
  }
  if (left > 0) badBuffer(`segments hold ${lengthBytes - left} of ${lengthBytes} bytes`);
  return pages;
}

function allocPage(allocListPage: () => number, pageBytes: number): PrpListPage {
  const address = allocListPage();
  if (address % pageBytes !== 0) badBuffer(`PRP list page ${hex(address)} is not page aligned`);
  return { address, entries: [] };
}

/** Lays data entries into list pages; a full page's last slot chains to the next page (§4.3). */
function layoutList(entries: readonly number[], pageBytes: number, allocListPage: () => number): PrpListPage[] {
  const perPage = prpEntriesPerPage(pageBytes);
  const pages = [allocPage(allocListPage, pageBytes)];
  for (let i = 0; ; i += perPage - 1) {
    const page = pages[pages.length - 1];
    if (entries.length - i <= perPage) {
      page.entries = entries.slice(i);
      return pages;
    }
    const next = allocPage(allocListPage, pageBytes);
    page.entries = [...entries.slice(i, i + perPage - 1), next.address];
    pages.push(next);
  }
}

/**
 * Host side of §4.3: PRP1 = the first byte; PRP2 = 0 (one page), the second page (two pages), or the
 * first PRP list page. Segments after the first must start on a page boundary and every segment but
 * the last used must end on one. `allocListPage` returns page-aligned addresses for list pages.
 */
export function buildPrps(bufferSegments: readonly Segment[], lengthBytes: number, pageBytes: number, allocListPage: () => number): BuiltPrps {
  checkPageBytes(pageBytes);
  if (!Number.isInteger(lengthBytes) || lengthBytes <= 0) badBuffer(`length ${lengthBytes} is not positive`);
  const pages = pageEntries(bufferSegments, lengthBytes, pageBytes);
  if (pages.length <= 2) return { prp1: pages[0], prp2: pages[1] ?? 0, listPages: [] };
  const listPages = layoutList(pages.slice(1), pageBytes, allocListPage);
  return { prp1: pages[0], prp2: listPages[0].address, listPages };
}
