import { boot } from './boot.js';
import { buildFabric } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';

export interface DeviceRow {
  name: string;
  kind: 'ssd' | 'dc-buffer';
  box: string;
  slot: number;
  bdf: string;
  capacityBytes: number;
  bar0: number;
  serial?: string;
}

/**
 * Boots a host on a topology and returns what its DC manager knows: its ExpEther group's devices only
 * (`host`: which host, default the first; `hostsOf(topology)` lists them).
 */
export function listDevices(topology: Topology, seed: number, host?: string): DeviceRow[] {
  const booted = boot(buildFabric(topology, seed), { maxTransferBytes: topology.copy.chunkBytes, host });
  const mgr = booted.manager;
  const rows: DeviceRow[] = mgr.blockDevices().map((d) => ({ name: d.name, kind: 'ssd', box: d.box, slot: d.slot, bdf: d.bdf, capacityBytes: d.capacityBytes, bar0: d.bar0, serial: d.serial }));
  for (const b of mgr.dcBuffers()) rows.push({ name: b.name, kind: 'dc-buffer', box: b.box, slot: b.slot, bdf: b.bdf, capacityBytes: b.sizeBytes, bar0: b.bar0 });
  return rows;
}
