/**
 * What the builder takes besides the topology (its options, and the channel factory for cables), in a
 * file of their own: device kinds see the options too (`device-kind.ts`), and the builder imports the
 * kinds, so the types live below both (no import cycle).
 */
import type { Scheduler, VirtualScheduler } from '../core/scheduler.js';
import type { EthChannel, EthPort } from '../ethernet/port.js';
import type { BlockStore } from '../devices/block-store.js';

/**
 * Joins two Ethernet ports with a channel (propagation `latencyNs`) and returns it; it must set both
 * ports' `channel`. `name` says which cable (`a.name<->b.name`), for channels that need one (a socket).
 */
export type ConnectFn = (a: EthPort, b: EthPort, latencyNs: number, name: string) => EthChannel;

export interface FabricOptions<S extends Scheduler = VirtualScheduler> {
  /** Root seed of every component's RNG stream. */
  seed: number;
  /** The scheduler every component runs on (any `Scheduler`, e.g. live/'s real-time one); default a fresh VirtualScheduler. */
  scheduler?: S;
  /** The channel factory for every cable; default `connectCable` (or the one `withConnect` sets). */
  connect?: ConnectFn;
  /** Where each SSD keeps its bytes (live mode: a file per drive); default an in-memory SparseMemory. */
  storeFor?: (slotName: string, capacityBytes: number) => BlockStore;
  /**
   * Burst granularity (docs/architecture.md "Two granularities"): the largest burst the DMA engines,
   * the root complex and the endpoint cores send, bytes (set on every PCIe port). 0 or absent: per TLP.
   */
  burstBytes?: number;
}
