/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven: ext4's metadata checksum
 * (docs.kernel.org/filesystems/ext4/checksums.html). Node 20's zlib has only CRC-32. As the kernel's
 * `ext4_chksum` and e2fsprogs' `ext2fs_crc32c_le`, it has no pre- or post-inversion: callers start from
 * ~0 (or a seed) and chain, which is what ext4 stores. The standard check value is `~crc32c(~0, "123456789")`.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** crc32c over a little-endian 32-bit value (ext4 chains inode numbers, generations and group numbers so). */
export function crc32cU32(seed: number, v: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return crc32c(seed, b);
}
