import { DconnectError } from '../../core/errors.js';
import type { NicDriver } from '../nic-driver.js';
import type { NvmeDriver } from '../nvme-driver.js';
import type { HostDevice, Relay } from './host-device.js';

export type { HostDevice, Relay } from './host-device.js';

/** A block device the host's I/O stack knows: an NVMe namespace behind its driver; the ends a DC command names. */
export interface BlockDevice extends HostDevice {
  kind: 'ssd';
  serial: string;
  model: string;
  capacityBytes: number;
  blockBytes: number;
  driver: NvmeDriver;
}

/** A DC buffer (the paper's relay). */
export interface DcBufferDevice extends HostDevice {
  kind: 'dc-buffer';
  sizeBytes: number;
}

/** A NIC the host can move data through, to and from the clients on its network. */
export interface NicDevice extends HostDevice {
  kind: 'nic';
  /** Its station address, as its driver read it. */
  mac: number;
  driver: NicDriver;
}

/**
 * DC manager: the database of devices connected to the host (the paper's third component). Devices
 * are kept by kind, whatever the kind (`dconnect devices` lists them); what the DC command needs of
 * them is kept by capability: endpoints (block devices a move names, by name or serial) and relays
 * (memory a move's data passes through). A kind's probe records its device and the capabilities it
 * offers (topology/kinds/*.ts); nothing here names a kind but the block devices' own type.
 */
export class DcManager {
  private readonly byKind = new Map<string, HostDevice[]>();
  private readonly endpoints: BlockDevice[] = [];
  private readonly relayList: Relay[] = [];

  /** Records a device under its kind. */
  add(d: HostDevice): void {
    const list = this.byKind.get(d.kind) ?? [];
    list.push(d);
    this.byKind.set(d.kind, list);
  }

  /** The devices of one kind the host recorded, in enumeration order (`T`: the record that kind's probe adds). */
  devicesOf<T extends HostDevice = HostDevice>(kind: string): readonly T[] {
    return (this.byKind.get(kind) ?? []) as T[];
  }

  /** Records a device as an end of moves: a block device, found by `lookup`. */
  addEndpoint(d: BlockDevice): void {
    this.endpoints.push(d);
  }

  /** Records memory a direct move may relay through. */
  addRelay(r: Relay): void {
    this.relayList.push(r);
  }

  /** The block devices, in enumeration order. */
  blockDevices(): readonly BlockDevice[] {
    return this.endpoints;
  }

  /** Every relay, in the order the drivers found them. */
  relays(): readonly Relay[] {
    return this.relayList;
  }

  /** Finds a block device by name (`sda`) or serial number; unknown names are an error listing known ones. */
  lookup(nameOrSerial: string): BlockDevice {
    const d = this.endpoints.find((b) => b.name === nameOrSerial) ?? this.endpoints.find((b) => b.serial === nameOrSerial);
    if (!d) {
      const known = this.endpoints.map((b) => `${b.name} (serial ${b.serial})`).join(', ') || 'none';
      throw new DconnectError('UNKNOWN_DEVICE', `no block device '${nameOrSerial}'`, `known devices: ${known}; run 'dconnect devices' to list them`);
    }
    return d;
  }
}
