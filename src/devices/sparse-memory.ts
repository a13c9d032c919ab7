/**
 * Byte-addressable memory that keeps only what was written, in fixed pages. Unwritten bytes read as
 * zero, or, inside a pattern region, as the seeded pattern (see `fillPattern`): a 256 GB SSD or a
 * 1 GiB source range costs memory only for pages actually materialized.
 */
export const PAGE_BYTES = 64 * 1024;
const BLOCK_BYTES = 4096;

interface PatternRegion {
  start: number;
  end: number;
  seed: number;
}

export class SparseMemory {
  private readonly pages = new Map<number, Uint8Array>();
  private readonly patterns: PatternRegion[] = [];

  constructor(
    readonly name: string,
    readonly sizeBytes: number,
  ) {}

  /** Bytes held in materialized pages. */
  residentBytes(): number {
    return this.pages.size * PAGE_BYTES;
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
      for (const r of this.patterns) {
        const s = Math.max(r.start, base);
        const e = Math.min(r.end, base + PAGE_BYTES);
        if (s < e) patternBytes(r.seed, s, p.subarray(s - base, e - base));
      }
      this.pages.set(index, p);
    }
    return p;
  }

  /** Copies `data` in at `addr`. */
  write(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    let done = 0;
    while (done < data.length) {
      const a = addr + done;
      const off = a % PAGE_BYTES;
      const n = Math.min(PAGE_BYTES - off, data.length - done);
      this.page((a - off) / PAGE_BYTES).set(data.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Copies `len` bytes out from `addr` into a new array. */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
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
      if (p) out.set(p.subarray(off, off + n), done);
      else if (this.inPattern(a, n)) out.set(this.page(idx).subarray(off, off + n), done);
      else out.fill(0, done, done + n);
      done += n;
    }
  }

  private inPattern(addr: number, len: number): boolean {
    for (const r of this.patterns) if (r.start < addr + len && addr < r.end) return true;
    return false;
  }

  /**
   * Writes the seeded pattern over [addr, addr+len). Content depends only on (seed, absolute
   * offset), so `expectedPattern` can regenerate it for verification. Pages already materialized are
   * rewritten now; the rest materialize when first touched.
   */
  fillPattern(addr: number, len: number, seed: number): void {
    this.check(addr, len);
    const end = addr + len;
    for (const [idx, p] of this.pages) {
      const base = idx * PAGE_BYTES;
      const s = Math.max(addr, base);
      const e = Math.min(end, base + PAGE_BYTES);
      if (s < e) patternBytes(seed, s, p.subarray(s - base, e - base));
    }
    this.patterns.push({ start: addr, end, seed });
  }
}

/**
 * The pattern: each 4 KiB block (by absolute offset) is xorshift32 output seeded from (seed, block
 * index). Fills `out`, which holds the bytes starting at absolute offset `addr`.
 */
export function patternBytes(seed: number, addr: number, out: Uint8Array): void {
  let done = 0;
  while (done < out.length) {
    const a = addr + done;
    const block = Math.floor(a / BLOCK_BYTES);
    const off = a - block * BLOCK_BYTES;
    const n = Math.min(BLOCK_BYTES - off, out.length - done);
    let x = (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b) ^ Math.imul(Math.floor(block / 4294967296) + 7, 0xc2b2ae35)) >>> 0;
    if (x === 0) x = 0x12345678;
    // Generate the whole block's words up to off+n, emitting only the requested part.
    for (let i = 0; i < off + n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      for (let b = 0; b < 4; b++) {
        const pos = i + b;
        if (pos >= off && pos < off + n) out[done + pos - off] = (x >>> (8 * b)) & 0xff;
      }
    }
    done += n;
  }
}

/** The pattern bytes for [addr, addr+len): what a verified copy must contain. */
export function expectedPattern(seed: number, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  patternBytes(seed, addr, out);
  return out;
}
