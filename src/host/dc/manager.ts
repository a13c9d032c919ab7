import { DconnectError } from '../../core/errors.js';
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

/**
 * DC manager: the database of devices connected to the host (the paper's third component). Given a
 * name from the DC command (`sda`) or a serial number, it returns the kernel-side device the operator
 * drives.
 */
export class DcManager {
  private readonly blocks: BlockDevice[] = [];
  private readonly buffers: DcBufferDevice[] = [];

  addBlockDevice(d: BlockDevice): void {
    this.blocks.push(d);
  }

  addDcBuffer(d: DcBufferDevice): void {
    this.buffers.push(d);
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

  /** The DC buffer in the same box as the devices (the relay for a direct move). */
  bufferFor(box: string): DcBufferDevice {
    const b = this.buffers.find((x) => x.box === box);
    if (!b) throw new DconnectError('BAD_TOPOLOGY', `box '${box}' has no DC buffer`, "add a slot of kind 'dc-buffer' to the box, or use --via host");
    return b;
  }
}
