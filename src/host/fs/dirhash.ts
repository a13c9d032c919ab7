import { DconnectError } from '../../core/errors.js';

/**
 * The htree directory hash: half-MD4 as ext4 computes it (linux fs/ext4/hash.c, `ext4fs_dirhash`),
 * with the name's bytes read as signed or unsigned chars as the superblock's flags say. The other
 * hash versions (legacy, TEA) are refused by name where a directory uses them.
 */
export const DX_HASH_HALF_MD4 = 1;
const HASH_NAMES = ['legacy', 'half_md4', 'tea'];

const rol = (x: number, s: number) => ((x << s) | (x >>> (32 - s))) >>> 0;
const F = (x: number, y: number, z: number) => (z ^ (x & (y ^ z))) >>> 0;
const G = (x: number, y: number, z: number) => (((x & y) >>> 0) + (((x ^ y) & z) >>> 0)) >>> 0;
const H = (x: number, y: number, z: number) => (x ^ y ^ z) >>> 0;
const K2 = 0o13240474631;
const K3 = 0o15666365641;

function halfMd4(buf: Uint32Array, inp: Uint32Array): void {
  let [a, b, c, d] = buf;
  const R = (f: typeof F, w: number, x: number, y: number, z: number, v: number, s: number) => rol((w + f(x, y, z) + v) >>> 0, s);
  a = R(F, a, b, c, d, inp[0], 3); d = R(F, d, a, b, c, inp[1], 7); c = R(F, c, d, a, b, inp[2], 11); b = R(F, b, c, d, a, inp[3], 19);
  a = R(F, a, b, c, d, inp[4], 3); d = R(F, d, a, b, c, inp[5], 7); c = R(F, c, d, a, b, inp[6], 11); b = R(F, b, c, d, a, inp[7], 19);
  a = R(G, a, b, c, d, (inp[1] + K2) >>> 0, 3); d = R(G, d, a, b, c, (inp[3] + K2) >>> 0, 5); c = R(G, c, d, a, b, (inp[5] + K2) >>> 0, 9); b = R(G, b, c, d, a, (inp[7] + K2) >>> 0, 13);
  a = R(G, a, b, c, d, (inp[0] + K2) >>> 0, 3); d = R(G, d, a, b, c, (inp[2] + K2) >>> 0, 5); c = R(G, c, d, a, b, (inp[4] + K2) >>> 0, 9); b = R(G, b, c, d, a, (inp[6] + K2) >>> 0, 13);
  a = R(H, a, b, c, d, (inp[3] + K3) >>> 0, 3); d = R(H, d, a, b, c, (inp[7] + K3) >>> 0, 9); c = R(H, c, d, a, b, (inp[2] + K3) >>> 0, 11); b = R(H, b, c, d, a, (inp[6] + K3) >>> 0, 15);
  a = R(H, a, b, c, d, (inp[1] + K3) >>> 0, 3); d = R(H, d, a, b, c, (inp[5] + K3) >>> 0, 9); c = R(H, c, d, a, b, (inp[0] + K3) >>> 0, 11); b = R(H, b, c, d, a, (inp[4] + K3) >>> 0, 15);
  buf[0] = (buf[0] + a) >>> 0;
  buf[1] = (buf[1] + b) >>> 0;
  buf[2] = (buf[2] + c) >>> 0;
  buf[3] = (buf[3] + d) >>> 0;
}

/** `str2hashbuf_signed` / `_unsigned`: up to 4*num bytes of the name into num words, padded with the length. */
function str2hashbuf(name: Uint8Array, from: number, len: number, out: Uint32Array, num: number, unsigned: boolean): void {
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  const n = Math.min(len, num * 4);
  let w = 0;
  for (let i = 0; i < n; i++) {
    const byte = name[from + i];
    const c = unsigned ? byte : byte >= 128 ? byte - 256 : byte;
    val = (c + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[w++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[w++] = val;
  while (--num >= 0) out[w++] = pad;
}

/** The major hash of a name (bit 0 clear), for a directory of hash version `version`. */
export function dirHash(name: Uint8Array, version: number, seed: readonly number[], unsigned: boolean): number {
  if (version !== DX_HASH_HALF_MD4) throw new DconnectError('FS_UNSUPPORTED', `an htree directory uses the '${HASH_NAMES[version] ?? `#${version}`}' hash; dconnect's ext4 code handles half_md4 (mkfs.ext4's default)`, 'rebuild the directory index with e2fsck -fD after tune2fs -E hash_alg=half_md4');
  const buf = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  if (seed.some((s) => s !== 0)) buf.set(seed);
  const inp = new Uint32Array(8);
  for (let off = 0, len = name.length; len > 0; len -= 32, off += 32) {
    str2hashbuf(name, off, len, inp, 8, unsigned);
    halfMd4(buf, inp);
  }
  let hash = buf[1] & ~1;
  if (hash >>> 0 === 0xfffffffe) hash = 0xfffffffc;
  return hash >>> 0;
}
