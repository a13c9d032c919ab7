/**
 * The seeded data pattern's whole 4 KiB blocks, four at a time, by a small WebAssembly SIMD kernel.
 *
 * Each block is one xorshift32 chain, which is latency-bound in scalar code (~2.3 GB/s here). Four
 * blocks' chains are independent, so one i32x4 vector advances all four and a 4x4 transpose stores
 * four consecutive words of each: the same bytes at ~8 GB/s. A 1 GiB move generates its pattern two
 * or three times (source reads, verification, digest), so this is most of a fast move's byte work.
 *
 * The module is assembled here from named opcodes (it is ~200 bytes; no toolchain needed) and
 * checked against the scalar generator by test/devices/pattern.test.ts. Where WebAssembly SIMD is
 * unavailable, `simdBlocks` is null and callers use the scalar generator.
 */

/** Blocks per call: the scratch area holds this many 4 KiB blocks (4 MiB). */
export const SIMD_MAX_BLOCKS = 1024;
const BLOCK_BYTES = 4096;
const SEEDS_AT = 0; // SIMD_MAX_BLOCKS int32 seeds (4 KiB), one per block
const SCRATCH_AT = 65536; // the generated blocks
const PAGES = (SCRATCH_AT + SIMD_MAX_BLOCKS * BLOCK_BYTES) / 65536;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// Opcodes (WebAssembly core 2.0 and its fixed-width SIMD proposal).
const I32 = 0x7f;
const V128 = 0x7b;
const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const localGet = (i: number) => [0x20, ...uleb(i)];
const localSet = (i: number) => [0x21, ...uleb(i)];
const localTee = (i: number) => [0x22, ...uleb(i)];
const i32Const = (n: number) => [0x41, ...sleb(n)];
const I32_ADD = 0x6a;
const I32_SHL = 0x74;
const I32_LT_S = 0x48;
const I32_GE_S = 0x4e;
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const br = (depth: number) => [0x0c, depth];
const brIf = (depth: number) => [0x0d, depth];
const v128Load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)];
const V128_XOR = simd(0x51);
const I32X4_SHL = simd(0xab);
const I32X4_SHR_U = simd(0xad);
/** i8x16.shuffle picking four 32-bit lanes (0-3 from the first operand, 4-7 from the second). */
const shuffle32 = (lanes: number[]) => [...simd(0x0d), ...lanes.flatMap((l) => [l * 4, l * 4 + 1, l * 4 + 2, l * 4 + 3])];

// gen(seedsPtr, outPtr, groups): for each group of four blocks, v = their four seeds; 1024 words each.
const P_SEEDS = 0, P_OUT = 1, P_GROUPS = 2; // i32 params
const L_I = 3, L_G = 4, L_BASE = 5; // i32 locals
const L_V = 6, L_R = 7, L_T = 11; // v128 locals: the state, four steps' outputs, transpose temporaries
/** v ^= v << s (or >>> s). */
const xorShift = (s: number, right: boolean) => [...localGet(L_V), ...localGet(L_V), ...i32Const(s), ...(right ? I32X4_SHR_U : I32X4_SHL), ...V128_XOR, ...localSet(L_V)];
/** One xorshift32 step of all four chains; r[k] = the new state (word i+k of each block). */
const step = (k: number) => [...xorShift(13, false), ...xorShift(17, true), ...xorShift(5, false), ...localGet(L_V), ...localSet(L_R + k)];
/** Stores block b's four words: lanes of the transposed temporaries. */
const storeBlock = (b: number) => [
  ...localGet(L_BASE), ...localGet(L_I), I32_ADD,
  ...localGet(L_T + (b >> 1)), ...localGet(L_T + 2 + (b >> 1)), ...shuffle32(b & 1 ? [2, 3, 6, 7] : [0, 1, 4, 5]),
  ...v128Store(b * BLOCK_BYTES),
];
const body = [
  ...i32Const(0), ...localSet(L_G),
  ...BLOCK, ...LOOP,
  ...localGet(L_G), ...localGet(P_GROUPS), I32_GE_S, ...brIf(1),
  ...localGet(P_SEEDS), ...localGet(L_G), ...i32Const(4), I32_SHL, I32_ADD, ...v128Load(0), ...localSet(L_V),
  ...localGet(P_OUT), ...localGet(L_G), ...i32Const(14), I32_SHL, I32_ADD, ...localSet(L_BASE),
  ...i32Const(0), ...localSet(L_I),
  ...LOOP,
  ...step(0), ...step(1), ...step(2), ...step(3),
  // r[k] = [a_k, b_k, c_k, d_k] -> t0 = [a0 a1 b0 b1], t1 = [c0 c1 d0 d1], t2 = [a2 a3 b2 b3], t3 = [c2 c3 d2 d3]
  ...localGet(L_R), ...localGet(L_R + 1), ...shuffle32([0, 4, 1, 5]), ...localSet(L_T),
  ...localGet(L_R), ...localGet(L_R + 1), ...shuffle32([2, 6, 3, 7]), ...localSet(L_T + 1),
  ...localGet(L_R + 2), ...localGet(L_R + 3), ...shuffle32([0, 4, 1, 5]), ...localSet(L_T + 2),
  ...localGet(L_R + 2), ...localGet(L_R + 3), ...shuffle32([2, 6, 3, 7]), ...localSet(L_T + 3),
  ...storeBlock(0), ...storeBlock(1), ...storeBlock(2), ...storeBlock(3),
  ...localGet(L_I), ...i32Const(16), I32_ADD, ...localTee(L_I), ...i32Const(BLOCK_BYTES), I32_LT_S, ...brIf(0),
  END,
  ...localGet(L_G), ...i32Const(1), I32_ADD, ...localSet(L_G),
  ...br(0),
  END, END,
  END,
];
const code = [...vec([[...uleb(3), I32], [...uleb(9), V128]]), ...body];
const name = (s: string) => vec([...s].map((c) => [c.charCodeAt(0)]));
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([])]])), // type: (i32 i32 i32) -> ()
  ...section(3, vec([[0]])), // function 0 has type 0
  ...section(5, vec([[0x00, ...uleb(PAGES)]])), // one memory of PAGES pages
  ...section(7, vec([[...name('gen'), 0x00, 0], [...name('mem'), 0x02, 0]])),
  ...section(10, vec([[...uleb(code.length), ...code]])),
]);

export interface SimdBlocks {
  /**
   * Generates `count` (a multiple of 4, at most SIMD_MAX_BLOCKS) whole blocks whose generator states
   * are `seedOf(first + i)`, and returns them as a view of the scratch area, valid until the next call.
   */
  generate(seedOf: (block: number) => number, first: number, count: number): Uint8Array;
}

function instantiate(): SimdBlocks | null {
  if (!WebAssembly.validate(MODULE)) return null;
  const exports = new WebAssembly.Instance(new WebAssembly.Module(MODULE)).exports as { gen: (seeds: number, out: number, groups: number) => void; mem: WebAssembly.Memory };
  const seeds = new Int32Array(exports.mem.buffer, SEEDS_AT, SIMD_MAX_BLOCKS);
  const scratch = new Uint8Array(exports.mem.buffer, SCRATCH_AT, SIMD_MAX_BLOCKS * BLOCK_BYTES);
  return {
    generate(seedOf, first, count) {
      if (count % 4 !== 0 || count < 0 || count > SIMD_MAX_BLOCKS) throw new RangeError(`simd pattern: ${count} blocks is not a multiple of 4 up to ${SIMD_MAX_BLOCKS}`);
      // Seeds of a group are interleaved lane by lane: group g's vector is blocks 4g..4g+3.
      for (let i = 0; i < count; i++) seeds[i] = seedOf(first + i);
      exports.gen(SEEDS_AT, SCRATCH_AT, count / 4);
      return scratch.subarray(0, count * BLOCK_BYTES);
    },
  };
}

/** The kernel, or null where WebAssembly SIMD is unavailable. */
export const simdBlocks: SimdBlocks | null = instantiate();
