import { DconnectError } from '../../core/errors.js';
import type { NicDriver } from '../nic-driver.js';
import type { NvmeDriver } from '../nvme-driver.js';

/** A block device the host's I/O stack knows: an NVMe namespace behind its driver. */
export interface BlockDevice {
  name: string;
  kind: 'ssd';
  serial: string;
  model: string;
  capacityBytes: number;
  blockBytes: number;
  /** Bus/device/function as enumerated. */
  bdf: string;
  box: string;
  slot: number;
  bar0: number;
  driver: NvmeDriver;
}

/** A DC buffer the host can use as the relay for direct moves. */
export interface DcBufferDevice {
  name: string;
  kind: 'dc-buffer';
  sizeBytes: number;
  bdf: string;
  box: string;
  slot: number;
  bar0: number;
}

/** A NIC the host can move data through, to and from the clients on its network. */
export interface NicDevice {
  name: string;
  kind: 'nic';
  /** Its station address, as its driver read it. */
  mac: number;
  bdf: string;
  box: string;
  slot: number;
  bar0: number;
  driver: NicDriver;
}

/**
 * DC manager: the database of devices connected to the host (the paper's third component). Given a
 * name from the DC command (`sda`) or a serial number, it returns the kernel-side device the operator
 * drives.
 */
export class DcManager {
  private readonly blocks: BlockDevice[] = [];
  private readonly buffers: DcBufferDevice[] = [];
  private readonly nicList: NicDevice[] = [];

  addBlockDevice(d: BlockDevice): void {
    this.blocks.push(d);
  }

  addDcBuffer(d: DcBufferDevice): void {
    this.buffers.push(d);
  }

  addNic(d: NicDevice): void {
    this.nicList.push(d);
  }

  nics(): readonly NicDevice[] {
    return this.nicList;
  }

  blockDevices(): readonly BlockDevice[] {
    return this.blocks;
  }

  dcBuffers(): readonly DcBufferDevice[] {
    return this.buffers;
  }

  /** Finds a block device by name (`sda`) or serial number; unknown names are an error listing known ones. */
  lookup(nameOrSerial: string): BlockDevice {
    const d = this.blocks.find((b) => b.name === nameOrSerial) ?? this.blocks.find((b) => b.serial === nameOrSerial);
    if (!d) {
      const known = this.blocks.map((b) => `${b.name} (serial ${b.serial})`).join(', ') || 'none';
      throw new DconnectError('UNKNOWN_DEVICE', `no block device '${nameOrSerial}'`, `known devices: ${known}; run 'dconnect devices' to list them`);
    }
    return d;
  }

  /**
   * The relay for a direct move from `src` to `dst`, the way Linux's pci_p2pdma_distance ranks
   * providers: the fewest switch traversals for the data (source to buffer plus buffer to
   * destination), then the least loaded (`load`: moves already relayed by each buffer), then
   * enumeration order. A slot's box is its distance: within a box the data crosses the box's switch
   * once; between boxes it crosses the source's box switch, the shared switch and the other box's.
   */
  relayFor(src: BlockDevice, dst: BlockDevice, load: ReadonlyMap<string, number> = new Map()): DcBufferDevice {
    if (this.buffers.length === 0) throw new DconnectError('BAD_TOPOLOGY', 'the fabric has no DC buffer', "add a slot of kind 'dc-buffer' to a box, or use --via host");
    const hops = (a: string, b: string) => (a === b ? 1 : 3);
    const cost = (b: DcBufferDevice) => hops(src.box, b.box) + hops(b.box, dst.box);
    let best = this.buffers[0];
    for (const b of this.buffers.slice(1)) {
      const d = cost(b) - cost(best);
      if (d < 0 || (d === 0 && (load.get(b.name) ?? 0) < (load.get(best.name) ?? 0))) best = b;
    }
    return best;
  }
}
