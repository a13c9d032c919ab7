import { PCI_HOLE_BASE } from '../devices/root-complex.js';

/**
 * Allocates DMA-able host memory (below 4 GiB, like a DMA32 zone) for queues, PRP lists and
 * conventional-mode bounce slots. A bump allocator with page alignment: the host software allocates
 * at start and frees nothing during a run, so nothing more is needed.
 */
export class HostMemoryAllocator {
  private next: number;

  constructor(
    /** Leave the first 16 MiB to the kernel image and legacy areas. */
    base = 16 * 1024 * 1024,
    private readonly limit = PCI_HOLE_BASE,
  ) {
    this.next = base;
  }

  alloc(bytes: number, align = 4096): number {
    const a = Math.ceil(this.next / align) * align;
    if (a + bytes > this.limit) throw new Error(`host memory: cannot allocate ${bytes} B below 0x${this.limit.toString(16)}`);
    this.next = a + bytes;
    return a;
  }
}
