/**
 * Seeded random streams. Every component that draws randomness gets its own stream, derived from the
 * run's one root seed and the component's name, so adding a component never perturbs another's draws.
 * Generator: xoshiro128** (Blackman and Vigna), seeded through splitmix32.
 */
export class RngStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Numbers drawn so far: a stream that never drew leaves a run deterministic (`RngFactory.drew`). */
  private drawn = 0;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The generator's state as text: equal positions draw equal futures (digests). */
  position(): string {
    return `${this.s0}:${this.s1}:${this.s2}:${this.s3}`;
  }

  /** Whether anything was drawn from this stream. */
  hasDrawn(): boolean {
    return this.drawn > 0;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.drawn++;
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.nextFloat());
  }

  /** Uniform in [lo, hi]. */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.nextFloat();
  }

  /** Fills `out` with pseudo-random bytes. */
  fillBytes(out: Uint8Array): void {
    let i = 0;
    const n = out.length;
    for (; i + 4 <= n; i += 4) {
      const v = this.nextU32();
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = v >>> 24;
    }
    if (i < n) {
      let v = this.nextU32();
      for (; i < n; i++, v >>>= 8) out[i] = v & 0xff;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** FNV-1a over a string, mixed with the root seed: the per-stream seed. */
export function deriveSeed(rootSeed: number, name: string): number {
  let h = 0x811c9dc5 ^ (rootSeed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= Math.floor(rootSeed / 4294967296) >>> 0;
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
}

/**
 * Hands out one named stream per component from a single root seed, and answers whether any of them
 * drew: a run in which nothing drew is deterministic whatever its components are (the exact fast path
 * asks this, not which classes the fabric holds).
 */
export class RngFactory {
  private readonly streams: RngStream[] = [];
  constructor(readonly rootSeed: number) {}
  stream(name: string): RngStream {
    const s = new RngStream(deriveSeed(this.rootSeed, name));
    this.streams.push(s);
    return s;
  }

  /** Whether any stream handed out has drawn a number. */
  drew(): boolean {
    return this.streams.some((s) => s.hasDrawn());
  }
}
