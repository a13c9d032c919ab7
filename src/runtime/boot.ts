import { DcBuffer } from '../devices/dc-buffer.js';
import { NvmeSsd } from '../devices/nvme-ssd.js';
import { spawn, type Seq } from '../host/coroutine.js';
import { DcManager } from '../host/dc/manager.js';
import { enumerate, type FoundFunction } from '../host/enumeration.js';
import { HostMemoryAllocator } from '../host/host-memory-allocator.js';
import { NvmeDriver } from '../host/nvme-driver.js';
import type { Fabric } from '../topology/builder.js';

export interface BootedHost {
  fabric: Fabric;
  manager: DcManager;
  allocator: HostMemoryAllocator;
  functions: FoundFunction[];
  /** Simulated time boot took, ps. */
  bootPs: number;
}

/** Block device names in enumeration order, as the paper's host named them. */
export function blockName(i: number): string {
  return `sd${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
}

/**
 * Boots the host on a built fabric: PCI enumeration over the fabric, then the NVMe driver brings up
 * each SSD; the DC manager records block devices (sda, sdb, ... in enumeration order) and DC buffers.
 */
export function boot(fabric: Fabric, opts: { maxTransferBytes: number }): BootedHost {
  const { scheduler, rootComplex: rc, topology: t } = fabric;
  const manager = new DcManager();
  const allocator = new HostMemoryAllocator();
  let functions: FoundFunction[] = [];
  let finished = false;
  let error: unknown = null;

  function* sequence(): Seq<void> {
    functions = yield* enumerate(rc);
    let ssdIndex = 0;
    for (const fn of functions) {
      if (fn.isBridge || fn.bars.length === 0) continue;
      const slot = fabric.slots.find((s) => s.device.config.barAddress(0) === fn.bars[0].address);
      if (!slot) continue;
      if (slot.device instanceof NvmeSsd) {
        const driver = new NvmeDriver(scheduler, rc, allocator, fn.id, fn.bars[0].address, 0x40 + ssdIndex, { queueEntries: t.host.queueEntries, submitCpuNs: t.host.driverSubmitNs, maxTransferBytes: opts.maxTransferBytes });
        const ns = yield* driver.init();
        manager.addBlockDevice({ name: blockName(ssdIndex++), kind: 'ssd', serial: ns.serial, model: ns.model, capacityBytes: ns.blocks * ns.blockBytes, blockBytes: ns.blockBytes, bdf: fn.bdf, box: slot.box, slot: slot.slot, bar0: fn.bars[0].address, driver });
      } else if (slot.device instanceof DcBuffer) {
        manager.addDcBuffer({ name: `dcbuf${manager.dcBuffers().length}`, kind: 'dc-buffer', sizeBytes: fn.bars[0].sizeBytes, bdf: fn.bdf, box: slot.box, slot: slot.slot, bar0: fn.bars[0].address });
      }
    }
  }

  spawn(
    sequence(),
    () => (finished = true),
    (e) => (error = e),
  );
  scheduler.run({ stop: () => finished || error !== null, maxEvents: 10_000_000 });
  if (error) throw error;
  if (!finished) throw new Error('host boot did not finish: the fabric went idle first (a request was lost)');
  return { fabric, manager, allocator, functions, bootPs: scheduler.now() };
}
