/**
 * Byte-addressable memory that keeps only what was written, in fixed pages. Unwritten bytes read as
 * zero, or, inside a pattern region, as the seeded pattern (see `fillPattern`): a 256 GB SSD or a
 * 1 GiB source range costs memory only for pages actually materialized, which happens on a write.
 * Reads of unwritten pattern bytes generate them straight into the reader's buffer (a copy reads
 * each source byte once, so keeping them would only cost memory and page faults).
 */
import { allocBytes } from '../core/byte-slab.js';
import type { BlockStore } from './block-store.js';
import { SIMD_MAX_BLOCKS, simdBlocks, type SimdBlocks } from './pattern-simd.js';

export const PAGE_BYTES = 64 * 1024;
const BLOCK_BYTES = 4096;

interface PatternRegion {
  start: number;
  end: number;
  seed: number;
  /** The pattern's bytes at address a are those it generates for absolute offset a + shift (a region copied from elsewhere). */
  shift: number;
}

export class SparseMemory implements BlockStore {
  private readonly pages = new Map<number, Uint8Array>();
  private readonly patterns: PatternRegion[] = [];
  /**
   * Ranges whose bytes are expected to become a pattern (a move's destination: `expectPattern`). A
   * page there, once written whole and found equal to the pattern, is kept as that pattern
   * (`patternPages`) instead of its bytes: a destination of 1 GiB costs no memory when the move is
   * right, and exactly its bytes when it is not. At most one per move of a run.
   */
  private readonly expected: PatternRegion[] = [];
  /** Pages that hold exactly a pattern (seed, shift) and keep no bytes; their reads generate it. */
  private readonly patternPages = new Map<number, { seed: number; shift: number }>();
  /** Bytes written into each materialized page of an expected range since it was materialized (a page written whole is then compared). */
  private readonly writtenInPage = new Map<number, number>();

  constructor(
    readonly name: string,
    readonly sizeBytes: number,
  ) {}

  /** Nothing to make durable: the simulation's bytes live in memory only. */
  flush(done: (ok: boolean) => void): void {
    done(true);
  }

  /** Bytes held in materialized pages. */
  residentBytes(): number {
    return this.pages.size * PAGE_BYTES;
  }

  /** Where anything but zeros may be: materialized pages and pattern regions, sorted and merged (saving a drive to a sparse file). */
  dataRanges(): { start: number; end: number }[] {
    const all = [...[...this.pages.keys(), ...this.patternPages.keys()].map((i) => ({ start: i * PAGE_BYTES, end: Math.min(this.sizeBytes, (i + 1) * PAGE_BYTES) })), ...this.patterns.map((r) => ({ start: r.start, end: r.end }))].sort((a, b) => a.start - b.start);
    const out: { start: number; end: number }[] = [];
    for (const r of all) {
      const last = out[out.length - 1];
      if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
      else out.push({ ...r });
    }
    return out;
  }

  private check(addr: number, len: number): void {
    if (!(addr >= 0 && len >= 0 && addr + len <= this.sizeBytes)) {
      throw new RangeError(`${this.name}: access [${addr}, ${addr + len}) outside 0..${this.sizeBytes}`);
    }
  }

  private page(index: number): Uint8Array {
    let p = this.pages.get(index);
    if (!p) {
      p = new Uint8Array(PAGE_BYTES);
      const base = index * PAGE_BYTES;
      const kept = this.patternPages.get(index);
      if (kept) {
        patternBytes(kept.seed, base + kept.shift, p);
        this.patternPages.delete(index);
        this.writtenInPage.set(index, PAGE_BYTES); // defined whole: the next write looks again
      } else {
        for (const r of this.patterns) {
          const s = Math.max(r.start, base);
          const e = Math.min(r.end, base + PAGE_BYTES);
          if (s < e) patternBytes(r.seed, s + r.shift, p.subarray(s - base, e - base));
        }
      }
      this.pages.set(index, p);
    }
    return p;
  }

  /**
   * The range [addr, addr + len) should come to hold the seeded pattern that reads at address a as
   * the bytes for a + shift (a move's destination, its source's pattern shifted): each of its whole
   * pages is compared once written whole, and kept as the pattern when equal. Only a representation:
   * what reads return never changes.
   */
  expectPattern(addr: number, len: number, seed: number, shift: number): void {
    this.check(addr, len);
    this.expected.push({ start: addr, end: addr + len, seed, shift });
  }

  /** Bytes were written into page `idx`: once it has been written whole, a page equal to its expected pattern keeps no bytes. */
  private wrote(idx: number, n: number): void {
    const total = (this.writtenInPage.get(idx) ?? 0) + n;
    if (total < PAGE_BYTES) {
      this.writtenInPage.set(idx, total);
      return;
    }
    const base = idx * PAGE_BYTES;
    const r = this.expected.find((x) => x.start <= base && base + PAGE_BYTES <= x.end);
    if (!r) return void this.writtenInPage.delete(idx);
    const p = this.pages.get(idx)!;
    const want = scratchPage();
    patternBytes(r.seed, base + r.shift, want);
    // Not (yet) right: looked at again after each later write into it (a wrong page is an error's).
    if (Buffer.compare(p, want) !== 0) return void this.writtenInPage.set(idx, PAGE_BYTES);
    this.writtenInPage.delete(idx);
    this.pages.delete(idx);
    this.patternPages.set(idx, { seed: r.seed, shift: r.shift });
  }

  /** Copies `pieces` in at `addr`, back to back. */
  writev(addr: number, pieces: readonly Uint8Array[]): void {
    for (const p of pieces) {
      this.write(addr, p);
      addr += p.length;
    }
  }

  /** Copies `data` in at `addr`. */
  write(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    const off0 = addr % PAGE_BYTES;
    const tracked = this.expected.length > 0;
    if (off0 + data.length <= PAGE_BYTES) {
      // Within one page (every TLP-sized access): no subarray view needed.
      const idx = (addr - off0) / PAGE_BYTES;
      this.page(idx).set(data, off0);
      if (tracked) this.wrote(idx, data.length);
      return;
    }
    let done = 0;
    while (done < data.length) {
      const a = addr + done;
      const off = a % PAGE_BYTES;
      const n = Math.min(PAGE_BYTES - off, data.length - done);
      const idx = (a - off) / PAGE_BYTES;
      this.page(idx).set(data.subarray(done, done + n), off);
      if (tracked) this.wrote(idx, n);
      done += n;
    }
  }

  /** Copies `len` bytes out from `addr` into a new array (which may be a view into a shared buffer: mind byteOffset). */
  read(addr: number, len: number): Uint8Array {
    const out = allocBytes(len);
    this.readInto(addr, out);
    return out;
  }

  readInto(addr: number, out: Uint8Array): void {
    this.check(addr, out.length);
    let done = 0;
    while (done < out.length) {
      const a = addr + done;
      const off = a % PAGE_BYTES;
      const n = Math.min(PAGE_BYTES - off, out.length - done);
      const idx = (a - off) / PAGE_BYTES;
      const p = this.pages.get(idx);
      const kept = p ? undefined : this.patternPages.get(idx);
      if (p) out.set(p.subarray(off, off + n), done);
      else if (kept) patternBytes(kept.seed, a + kept.shift, out.subarray(done, done + n));
      else if (this.inPattern(a, n)) this.unwrittenInto(a, out.subarray(done, done + n));
      else out.fill(0, done, done + n);
      done += n;
    }
  }

  /** What an unmaterialized page holds at [addr, addr + out.length): zero, then each pattern in order (as `page` builds it). */
  private unwrittenInto(addr: number, out: Uint8Array): void {
    const end = addr + out.length;
    let covered = false;
    for (const r of this.patterns) if (r.start <= addr && end <= r.end) covered = true;
    if (!covered) out.fill(0);
    for (const r of this.patterns) {
      const s = Math.max(r.start, addr);
      const e = Math.min(r.end, end);
      if (s < e) patternBytes(r.seed, s + r.shift, out.subarray(s - addr, e - addr));
    }
  }

  private inPattern(addr: number, len: number): boolean {
    for (const r of this.patterns) if (r.start < addr + len && addr < r.end) return true;
    return false;
  }

  /**
   * Copies [fromAddr, fromAddr + len) of `from` to `toAddr` here. When the source range is untouched
   * pattern (one region, no page written) and no page here is materialized in the target range, the
   * copy is by reference, as a filesystem's reflink: the target range becomes the same pattern,
   * shifted, and reads generate the very bytes the source holds. Otherwise the bytes are copied.
   * Used for the chunks the fast path jumps: their bytes reach the destination without the
   * page faults of 1 GiB of fresh memory (verification still reads every byte back).
   */
  copyFrom(from: SparseMemory, fromAddr: number, toAddr: number, len: number): void {
    from.check(fromAddr, len);
    this.check(toAddr, len);
    const region = from.patterns.length > 0 ? from.patterns[from.patterns.length - 1] : null;
    const byReference = region !== null && region.start <= fromAddr && fromAddr + len <= region.end && !from.anyPage(fromAddr, len) && !this.anyPage(toAddr, len) && !this.keptInPart(toAddr, len);
    if (byReference) {
      this.forgetPatternPages(toAddr, len);
      this.patterns.push({ start: toAddr, end: toAddr + len, seed: region.seed, shift: region.shift + fromAddr - toAddr });
      return;
    }
    const step = 4 << 20;
    const buf = new Uint8Array(Math.min(step, len));
    for (let off = 0; off < len; off += step) {
      const b = buf.subarray(0, Math.min(step, len - off));
      from.readInto(fromAddr + off, b);
      this.write(toAddr + off, b);
    }
  }

  /** Whether any materialized page overlaps [addr, addr + len). */
  private anyPage(addr: number, len: number): boolean {
    const first = Math.floor(addr / PAGE_BYTES);
    const last = Math.floor((addr + len - 1) / PAGE_BYTES);
    if (last - first + 1 > this.pages.size) {
      for (const idx of this.pages.keys()) if (idx >= first && idx <= last) return true;
      return false;
    }
    for (let i = first; i <= last; i++) if (this.pages.has(i)) return true;
    return false;
  }

  /**
   * Writes the seeded pattern over [addr, addr+len). Content depends only on (seed, absolute
   * offset), so `expectedPattern` can regenerate it for verification. Pages already materialized are
   * rewritten now; the rest hold it when first written.
   */
  fillPattern(addr: number, len: number, seed: number): void {
    this.check(addr, len);
    this.forgetPatternPages(addr, len);
    const end = addr + len;
    for (const [idx, p] of this.pages) {
      const base = idx * PAGE_BYTES;
      const s = Math.max(addr, base);
      const e = Math.min(end, base + PAGE_BYTES);
      if (s < e) patternBytes(seed, s, p.subarray(s - base, e - base));
    }
    this.patterns.push({ start: addr, end, seed, shift: 0 });
  }

  /** Whether a page kept as a pattern lies partly inside [addr, addr + len). */
  private keptInPart(addr: number, len: number): boolean {
    const end = addr + len;
    for (const idx of this.patternPages.keys()) {
      const base = idx * PAGE_BYTES;
      if (base < end && addr < base + PAGE_BYTES && !(addr <= base && base + PAGE_BYTES <= end)) return true;
    }
    return false;
  }

  /** A region laid over [addr, addr + len) defines its bytes: pages kept as a pattern there give way to it (those it covers only in part are materialized, then written over). */
  private forgetPatternPages(addr: number, len: number): void {
    if (this.patternPages.size === 0) return;
    const end = addr + len;
    for (const idx of [...this.patternPages.keys()]) {
      const base = idx * PAGE_BYTES;
      if (base + PAGE_BYTES <= addr || end <= base) continue;
      if (addr <= base && base + PAGE_BYTES <= end) this.patternPages.delete(idx);
      else this.page(idx);
    }
  }
}

let scratch: Uint8Array | null = null;
/** One page of scratch for comparisons (the simulation is single-threaded). */
function scratchPage(): Uint8Array {
  return (scratch ??= new Uint8Array(PAGE_BYTES));
}

/** Whether a Uint32Array stores a word's low byte first (true on every platform Node runs on today). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The pattern: each 4 KiB block (by absolute offset) is xorshift32 output seeded from (seed, block
 * index), each word stored low byte first. Fills `out`, which holds the bytes starting at absolute
 * offset `addr`.
 */
export function patternBytes(seed: number, addr: number, out: Uint8Array): void {
  generate(seed, addr, out, simdBlocks);
}

/** The same bytes without the SIMD kernel: the reference `patternBytes` is tested against. */
export function patternBytesScalar(seed: number, addr: number, out: Uint8Array): void {
  generate(seed, addr, out, null);
}

function generate(seed: number, addr: number, out: Uint8Array, simd: SimdBlocks | null): void {
  // When out's word boundaries line up with the pattern's, whole words are stored through a
  // Uint32Array view (on a little-endian host that is the same byte order); edges go byte by byte.
  const aligned = LITTLE_ENDIAN && (out.byteOffset & 3) === addr % 4;
  const firstWord = (4 - (out.byteOffset & 3)) & 3; // index in out of the first word-aligned byte
  const words = aligned ? new Uint32Array(out.buffer, out.byteOffset + firstWord, (out.length - firstWord) >>> 2) : null;
  let done = 0;
  while (done < out.length) {
    const a = addr + done;
    const block = Math.floor(a / BLOCK_BYTES);
    const off = a - block * BLOCK_BYTES;
    if (simd !== null && off === 0 && out.length - done >= 4 * BLOCK_BYTES) {
      // Whole blocks, four at a time, by the SIMD kernel (same bytes, ~3.5x faster).
      const count = Math.min(SIMD_MAX_BLOCKS, Math.floor((out.length - done) / (4 * BLOCK_BYTES)) * 4);
      out.set(simd.generate((b) => blockSeed(seed, b), block, count), done);
      done += count * BLOCK_BYTES;
      continue;
    }
    const end = off + Math.min(BLOCK_BYTES - off, out.length - done);
    let x = blockSeed(seed, block);
    // The block's words are generated from its start; word i covers block bytes [i, i+4).
    // `base` maps a block byte position to its index in out.
    const base = done - off;
    let i = 0;
    for (; i + 4 <= off; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    if (words !== null) {
      if (i < off) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        emitBytes(x >>> 0, i, off, end, base, out);
        i += 4;
      }
      let w = (base + i - firstWord) >>> 2;
      for (; i + 4 <= end; i += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[w++] = x;
      }
    }
    for (; i < end; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      emitBytes(x >>> 0, i, off, end, base, out);
    }
    done = base + end;
  }
}

/** The xorshift32 state a block's generator starts from, as a signed int32 so the loops stay in int32 arithmetic. */
function blockSeed(seed: number, block: number): number {
  const x = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b) ^ Math.imul(Math.floor(block / 4294967296) + 7, 0xc2b2ae35);
  return x === 0 ? 0x12345678 : x;
}


/** Stores the bytes of word `x` (at block position i) that fall in [off, end). */
function emitBytes(x: number, i: number, off: number, end: number, base: number, out: Uint8Array): void {
  for (let b = 0; b < 4; b++) {
    const pos = i + b;
    if (pos >= off && pos < end) out[base + pos] = (x >>> (8 * b)) & 0xff;
  }
}

/** The pattern bytes for [addr, addr+len): what a verified copy must contain. */
export function expectedPattern(seed: number, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  patternBytes(seed, addr, out);
  return out;
}
