/** The records the DC manager keeps and the relay planner ranks (apart, so the two import neither each other). */

/** What the host records of every device its drivers brought up: the name its kind gives it and where it sits. */
export interface HostDevice {
  name: string;
  /** Its kind (the slot's `kind:`, topology/device-registry.ts). */
  kind: string;
  /** Bus/device/function as enumerated. */
  bdf: string;
  box: string;
  slot: number;
  bar0: number;
}

/**
 * Memory a direct move can relay through: mapped in a BAR every device of the host's group reaches by
 * DMA (a DC buffer's BAR0, an NVMe SSD's CMB), recorded by the driver that found it.
 */
export interface Relay {
  /** As results name it: `dcbuf0`, `sdb CMB`. */
  name: string;
  /** What sort of memory it is, the word `--via` chooses it by: `dc-buffer`, `cmb`. */
  via: string;
  /** The device it is part of (`dcbuf0`, `sdb`): a relay in a move's own source or destination saves that device's trip across the box switch. */
  device: string;
  box: string;
  slot: number;
  /** Bus address of its first byte, and its size. */
  busAddress: number;
  sizeBytes: number;
}
