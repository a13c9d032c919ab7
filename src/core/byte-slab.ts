/**
 * Zeroed byte arrays for the many short-lived packet-sized buffers (a memory read per MRd). Each
 * `new Uint8Array(n)` above 64 bytes allocates its own ArrayBuffer, which costs a backing-store
 * allocation and a finalizer (about 1 us); a view into a shared slab costs about a tenth. Slabs are
 * never reused, so views never overlap and start zeroed; a slab is freed with its last view.
 * Callers must honour byteOffset: a view does not start its buffer.
 */
const SLAB_BYTES = 256 * 1024;
/** Larger arrays get their own buffer: slabs are for packet-sized data. */
const MAX_SLAB_ALLOC = 4096;

let slab = new ArrayBuffer(SLAB_BYTES);
let used = 0;

export function allocBytes(len: number): Uint8Array {
  if (len > MAX_SLAB_ALLOC) return new Uint8Array(len);
  if (used + len > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const out = new Uint8Array(slab, used, len);
  used += (len + 7) & ~7; // the next view starts 8-byte aligned (word-at-a-time paths stay aligned)
  return out;
}
