/**
 * The NIC's programming interface: registers in BAR0 and descriptor layouts in host memory. Offsets
 * and legacy transmit descriptors follow Intel's 8254x/82574 (e1000: what QEMU emulates and Linux's
 * e1000e drives); the receive descriptor is the header-split one of the 82599 (ixgbe's "advanced"
 * split descriptor), so protocol headers can land in host memory and payloads anywhere on the bus (a
 * DC buffer): the layout the direct NIC moves need. Little-endian throughout.
 */

/** BAR0: 128 KiB of registers, as the 82574's. */
export const NIC_BAR0_BYTES = 128 * 1024;

/** Identity: a network controller (02:00:00); the vendor is NEC's PCI id, the device id our own. */
export const NIC_CLASS = 0x020000;
export const NIC_VENDOR = 0x1033;
export const NIC_DEVICE = 0x4e10;

export const NIC_REG = {
  CTRL: 0x0000,
  STATUS: 0x0008,
  /** Interrupt cause, read to clear. */
  ICR: 0x00c0,
  /** Interrupt throttling: minimum interval between interrupts, in 256 ns units (e1000's ITR). */
  ITR: 0x00c4,
  IMS: 0x00d0,
  IMC: 0x00d8,
  RCTL: 0x0100,
  TCTL: 0x0400,
  RDBAL: 0x2800,
  RDBAH: 0x2804,
  /** Receive ring length, bytes (a multiple of 128, as the 82574's). */
  RDLEN: 0x2808,
  RDH: 0x2810,
  RDT: 0x2818,
  /** Split control (82599 SRRCTL): BSIZEPKT [4:0] packet buffer KiB; BSIZEHDR [13:8] header buffer, 64 B units. */
  SRRCTL: 0x2c00,
  /** Bytes of each frame written to the header buffer (0: no split, the whole frame to the packet buffer). */
  HSPLIT: 0x2c04,
  /** Packet buffer allocation (82574 PBA): receive KiB in bits 15:0, transmit KiB in 31:16. */
  PBA: 0x1000,
  /** Missed packets: frames dropped because the receive FIFO was full (read to clear). */
  MPC: 0x4010,
  /** Good packets received / transmitted (read to clear). */
  GPRC: 0x4074,
  GPTC: 0x4080,
  TDBAL: 0x3800,
  TDBAH: 0x3804,
  TDLEN: 0x3808,
  TDH: 0x3810,
  TDT: 0x3818,
  /** Receive address: the MAC, low 4 bytes then high 2 (bit 31 of RAH: address valid). */
  RAL0: 0x5400,
  RAH0: 0x5404,
} as const;

export const CTRL_RST = 1 << 26;
export const STATUS_LU = 1 << 1;
export const RCTL_EN = 1 << 1;
export const TCTL_EN = 1 << 1;

/** Interrupt causes (ICR/IMS bits). */
export const ICR = {
  /** Transmit descriptor written back. */
  TXDW: 1 << 0,
  /** Receive FIFO overrun: a frame was dropped. */
  RXO: 1 << 6,
  /** Receive descriptor written back (receiver timer). */
  RXT0: 1 << 7,
  /** A descriptor was refused (bad length, buffer too small, a DMA error): its status says which. */
  DESC_ERR: 1 << 15,
} as const;

export const DESC_BYTES = 16;

/** Legacy transmit descriptor command bits. */
export const TX_CMD = { EOP: 1 << 0, RS: 1 << 3 } as const;
/** Transmit write-back status: DD done; BAD the descriptor was refused (a frame shorter than its 14 B header or longer than 1514 B, an unreadable buffer). */
export const TX_STATUS = { DD: 1 << 0, BAD: 1 << 4 } as const;

export interface TxDescriptor {
  address: number;
  lengthBytes: number;
  cmd: number;
  status: number;
}

/** e1000 legacy transmit descriptor: buffer address (8), length (2), CSO (1), CMD (1), STA (1), CSS (1), special (2). */
export function encodeTxDesc(d: TxDescriptor): Uint8Array {
  const b = new Uint8Array(DESC_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, d.address % 2 ** 32, true);
  v.setUint32(4, Math.floor(d.address / 2 ** 32), true);
  v.setUint16(8, d.lengthBytes, true);
  b[11] = d.cmd;
  b[12] = d.status;
  return b;
}

export function decodeTxDesc(b: Uint8Array): TxDescriptor {
  const v = new DataView(b.buffer, b.byteOffset, DESC_BYTES);
  return { address: v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32, lengthBytes: v.getUint16(8, true), cmd: b[11], status: b[12] };
}

/** Receive write-back status bits (82599: DD, EOP) and errors. */
export const RX_STATUS = { DD: 1 << 0, EOP: 1 << 1 } as const;
/**
 * RXE: the frame did not fit the descriptor's buffers, header part included (it is dropped). HBO (the
 * 82599's header buffer overflow, the header then going to the packet buffer) is defined for the
 * layout but this model never sets it: a header that does not fit is RXE.
 */
export const RX_ERR = { RXE: 1 << 7, HBO: 1 << 4 } as const;

/** What software posts (82599 advanced split read format): packet buffer address, header buffer address. */
export interface RxReadDescriptor {
  packetAddress: number;
  headerAddress: number;
}

/** What the NIC writes back over it: header bytes, packet-buffer bytes, status, errors. */
export interface RxWriteBack {
  headerBytes: number;
  packetBytes: number;
  status: number;
  errors: number;
}

export function encodeRxRead(d: RxReadDescriptor): Uint8Array {
  const b = new Uint8Array(DESC_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, d.packetAddress % 2 ** 32, true);
  v.setUint32(4, Math.floor(d.packetAddress / 2 ** 32), true);
  v.setUint32(8, d.headerAddress % 2 ** 32, true);
  v.setUint32(12, Math.floor(d.headerAddress / 2 ** 32), true);
  return b;
}

export function decodeRxRead(b: Uint8Array): RxReadDescriptor {
  const v = new DataView(b.buffer, b.byteOffset, DESC_BYTES);
  return { packetAddress: v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32, headerAddress: v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32 };
}

/** Write-back layout (as the 82599's): header length at 4 (bits 14:5 there; here the whole u16), status at 8, errors at 10, packet length at 12. */
export function encodeRxWriteBack(w: RxWriteBack): Uint8Array {
  const b = new Uint8Array(DESC_BYTES);
  const v = new DataView(b.buffer);
  v.setUint16(4, w.headerBytes, true);
  v.setUint16(8, w.status, true);
  v.setUint16(10, w.errors, true);
  v.setUint16(12, w.packetBytes, true);
  return b;
}

export function decodeRxWriteBack(b: Uint8Array): RxWriteBack {
  const v = new DataView(b.buffer, b.byteOffset, DESC_BYTES);
  return { headerBytes: v.getUint16(4, true), status: v.getUint16(8, true), errors: v.getUint16(10, true), packetBytes: v.getUint16(12, true) };
}

/**
 * SRRCTL's buffer sizes: the packet buffer in whole KiB (1..31 KiB), the header buffer in 64 B units
 * (0..4032 B). A size the fields cannot hold is a RangeError (truncating it would make the NIC refuse
 * frames the caller thinks fit).
 */
export function encodeSrrctl(packetBufferBytes: number, headerBufferBytes: number): number {
  const pkt = packetBufferBytes / 1024;
  const hdr = headerBufferBytes / 64;
  if (!Number.isInteger(pkt) || pkt < 1 || pkt > 0x1f) throw new RangeError(`SRRCTL: a packet buffer of ${packetBufferBytes} B is not a whole number of KiB from 1 to 31`);
  if (!Number.isInteger(hdr) || hdr < 0 || hdr > 0x3f) throw new RangeError(`SRRCTL: a header buffer of ${headerBufferBytes} B is not a multiple of 64 B up to 4032 B`);
  return pkt | (hdr << 8);
}

export function decodeSrrctl(v: number): { packetBufferBytes: number; headerBufferBytes: number } {
  return { packetBufferBytes: (v & 0x1f) * 1024, headerBufferBytes: ((v >>> 8) & 0x3f) * 64 };
}

/** Largest frame the MAC sends or accepts without FCS: 14 B header + 1500 B payload (no jumbo frames). */
export const MAX_FRAME_BYTES = 1514;
/** Smallest frame the MAC sends: its 14 B header (the MAC pads it to Ethernet's minimum; a shorter one has no addresses). */
export const MIN_FRAME_BYTES = 14;
