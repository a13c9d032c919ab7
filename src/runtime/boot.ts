import { spawn, type Seq } from '../host/coroutine.js';
import { DcManager } from '../host/dc/manager.js';
import { enumerate, type FoundFunction } from '../host/enumeration.js';
import { HostMemoryAllocator } from '../host/host-memory-allocator.js';
import type { Scheduler } from '../core/scheduler.js';
import { hostOf, type Fabric, type HostInstance } from '../topology/builder.js';
import { entryForFunction, slotParams } from '../topology/device-registry.js';

/** Block device names in enumeration order (the SSD kind's names: topology/kinds/ssd.ts). */
export { blockName } from '../topology/kinds/ssd.js';

/** The first MSI vector a host gives its drivers (one each, in the order they come up). */
const FIRST_MSI_VECTOR = 0x40;

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

export interface BootOptions {
  maxTransferBytes: number;
  /** Which host boots (default the first, `host`); it finds only its ExpEther group's devices. */
  host?: string;
}

/**
 * Boots a host on a built fabric: PCI enumeration over the fabric, then each function's driver, found
 * in the device registry by class code, brings it up and registers it with the DC manager (the NVMe
 * driver each SSD: block devices sda, sdb, ... in enumeration order; DC buffers dcbuf0, ...).
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
    const found = new Map<string, number>();
    let vector = FIRST_MSI_VECTOR;
    for (const fn of functions) {
      if (fn.isBridge || fn.bars.length === 0) continue;
      // Which box slot: the server-side bridge shows virtual slot k (the k-th slot of its group) as
      // device k of its internal bus, the downstream port above the function (so the host asks the bus, not the device model).
      const port = functions.find((f) => f.id === fn.parent);
      const slot = port ? host.slots[(port.id >> 3) & 0x1f] : undefined;
      if (!slot) continue;
      // Drivers match by class code, as Linux's do (topology/device-registry.ts); a function no driver takes stays unbound.
      const kind = entryForFunction(fn);
      if (!kind) continue;
      const index = found.get(kind.kind) ?? 0;
      found.set(kind.kind, index + 1);
      yield* kind.driver.probe({
        fn,
        slot,
        params: slotParams(fabric.topology, slot.box, slot.slot),
        topology: fabric.topology,
        name: kind.name(index),
        index,
        scheduler,
        rootComplex: rc,
        allocator,
        manager,
        host: params,
        maxTransferBytes: opts.maxTransferBytes,
        msiVector: () => vector++,
      });
    }
  }

  spawn(
    sequence(),
    () => done({ fabric, host, manager, allocator, functions, bootPs: scheduler.now() - startPs }),
    fail,
  );
}
