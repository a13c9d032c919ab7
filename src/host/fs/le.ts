/** Little-endian field access on a byte array (ext4's on-disk order), and the big-endian reads jbd2 uses. */
export const u8 = (b: Uint8Array, o: number): number => b[o];
export const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
export const u32 = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
export const be32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
/** A 64-bit value split lo/hi across two fields (exact below 2^53). */
export const hiLo = (hi: number, lo: number): number => hi * 0x1_0000_0000 + lo;

export function set16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

export function set32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

export const lo32 = (v: number): number => v % 0x1_0000_0000;
export const hi32 = (v: number): number => Math.floor(v / 0x1_0000_0000);
