import { boot } from './boot.js';
import { buildFabric } from '../topology/builder.js';
import type { KnownDevice } from '../topology/device-kind.js';
import { DEVICE_KINDS, type DeviceKindName } from '../topology/device-registry.js';
import type { Topology } from '../topology/schema.js';

/** A row of `dconnect devices`: what the kind's driver recorded (`KnownDevice`), and the kind (whose `columns` print it). */
export interface DeviceRow extends KnownDevice {
  kind: DeviceKindName;
}

/**
 * Boots a host on a topology and returns what its DC manager knows: its ExpEther group's devices only
 * (`host`: which host, default the first; `hostsOf(topology)` lists them), kind by kind in the
 * registry's order (every SSD, then every DC buffer), each kind's in enumeration order.
 */
export function listDevices(topology: Topology, seed: number, host?: string): DeviceRow[] {
  const booted = boot(buildFabric(topology, seed), { maxTransferBytes: topology.copy.chunkBytes, host });
  return DEVICE_KINDS.flatMap((k) =>
    k.driver.devices(booted.manager).map(({ name, box, slot, bdf, capacityBytes, bar0, ...own }): DeviceRow => ({ name, kind: k.kind, box, slot, bdf, capacityBytes, bar0, ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)) })),
  );
}
