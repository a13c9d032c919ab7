import { spawn, type Seq } from '../host/coroutine.js';
import { DcManager } from '../host/dc/manager.js';
import { enumerate, type FoundFunction } from '../host/enumeration.js';
import { HostMemoryAllocator } from '../host/host-memory-allocator.js';
import { NvmeDriver } from '../host/nvme-driver.js';
import type { Scheduler } from '../core/scheduler.js';
import { hostOf, type Fabric, type HostInstance } from '../topology/builder.js';

/** NVM Express I/O controller class code (base 01 mass storage, sub 08 NVM, interface 02 NVMe), devices/nvme-ssd.ts. */
const NVME_CLASS = 0x010802;
/** The DC buffer's identity (devices/dc-buffer.ts): a memory controller (05:00:00) on an FPGA card (Altera's vendor id). */
const DC_BUFFER_CLASS = 0x050000;
const DC_BUFFER_VENDOR = 0x1172;
const DC_BUFFER_DEVICE = 0xdc00;

export interface BootedHost<S extends Scheduler = Fabric['scheduler']> {
  fabric: Fabric<S>;
  /** Which of the fabric's hosts booted (its root complex ran the enumeration and the drivers). */
  host: HostInstance;
  manager: DcManager;
  allocator: HostMemoryAllocator;
  functions: FoundFunction[];
  /** Simulated time boot took, ps (from the call to the end). */
  bootPs: number;
}

/** Block device names in enumeration order, as the paper's host named them. */
export function blockName(i: number): string {
  return `sd${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
}

export interface BootOptions {
  maxTransferBytes: number;
  /** Which host boots (default the first, `host`); it finds only its ExpEther group's devices. */
  host?: string;
}

/**
 * Boots a host on a built fabric: PCI enumeration over the fabric, then the NVMe driver brings up
 * each SSD; the DC manager records block devices (sda, sdb, ... in enumeration order) and DC buffers.
 * Runs the simulation until boot is done (virtual time); `startBoot` is the same on any scheduler.
 * Several hosts of one fabric boot one after the other, each with its own call.
 */
export function boot(fabric: Fabric, opts: BootOptions): BootedHost {
  let host: BootedHost | null = null;
  let error: unknown = null;
  startBoot(
    fabric,
    opts,
    (h) => (host = h),
    (e) => (error = e),
  );
  fabric.scheduler.run({ stop: () => host !== null || error !== null, maxEvents: 10_000_000 });
  if (error) throw error;
  if (!host) throw new Error('host boot did not finish: the fabric went idle first (a request was lost)');
  return host;
}

/** Starts booting on the fabric's scheduler, whatever it is (live: the real-time one); `done` or `fail` is called from an event. */
export function startBoot<S extends Scheduler>(fabric: Fabric<S>, opts: BootOptions, done: (host: BootedHost<S>) => void, fail: (e: unknown) => void): void {
  const { scheduler } = fabric;
  const host = hostOf(fabric, opts.host);
  const rc = host.rootComplex;
  const params = host.config;
  const startPs = scheduler.now();
  const manager = new DcManager();
  const allocator = new HostMemoryAllocator();
  let functions: FoundFunction[] = [];

  function* sequence(): Seq<void> {
    functions = yield* enumerate(rc);
    let ssdIndex = 0;
    for (const fn of functions) {
      if (fn.isBridge || fn.bars.length === 0) continue;
      // Which box slot: the server-side bridge shows virtual slot k (the k-th slot of its group) as
      // device k of its internal bus, the downstream port above the function (so the host asks the bus, not the device model).
      const port = functions.find((f) => f.id === fn.parent);
      const slot = port ? host.slots[(port.id >> 3) & 0x1f] : undefined;
      if (!slot) continue;
      // Drivers match by class code, as Linux's do: NVMe 01:08:02; the DC buffer is a memory controller (05:00:00) of its own vendor/device id.
      if (fn.classCode === NVME_CLASS) {
        const driver = new NvmeDriver(scheduler, rc, allocator, fn.id, fn.bars[0].address, 0x40 + ssdIndex, { queueEntries: params.queueEntries, submitCpuNs: params.driverSubmitNs, maxTransferBytes: opts.maxTransferBytes });
        const ns = yield* driver.init();
        manager.addBlockDevice({ name: blockName(ssdIndex++), kind: 'ssd', serial: ns.serial, model: ns.model, capacityBytes: ns.blocks * ns.blockBytes, blockBytes: ns.blockBytes, bdf: fn.bdf, box: slot.box, slot: slot.slot, bar0: fn.bars[0].address, driver });
      } else if (fn.classCode === DC_BUFFER_CLASS && fn.vendorId === DC_BUFFER_VENDOR && fn.deviceId === DC_BUFFER_DEVICE) {
        manager.addDcBuffer({ name: `dcbuf${manager.dcBuffers().length}`, kind: 'dc-buffer', sizeBytes: fn.bars[0].sizeBytes, bdf: fn.bdf, box: slot.box, slot: slot.slot, bar0: fn.bars[0].address });
      }
    }
  }

  spawn(
    sequence(),
    () => done({ fabric, host, manager, allocator, functions, bootPs: scheduler.now() - startPs }),
    fail,
  );
}
