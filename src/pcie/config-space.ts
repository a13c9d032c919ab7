/**
 * PCI configuration space of one function: the 256-byte PCI-compatible region that host enumeration
 * reads and writes with CfgRd/CfgWr TLPs. Spec references:
 *   [PCI]  PCI Local Bus Specification 3.0, chapter 6 (Type 0 header, BARs 6.2.5.1, MSI 6.8.1)
 *   [P2P]  PCI-to-PCI Bridge Architecture Specification 1.2, chapter 3 (Type 1 header)
 *   [PCIe] PCI Express Base Specification, 7.5.3 (PCI Express Capability structure)
 * Only the fields the fabric needs are modelled; every other byte is read-only zero.
 */
import { DconnectError } from '../core/errors.js';

/** DW-aligned register offsets (byte offsets noted where a field sits inside a DW). */
export const CFG = {
  VENDOR_ID: 0x00, // vendor id 15:0, device id 31:16
  COMMAND: 0x04, // command 15:0, status 31:16 (status byte offset 0x06)
  CLASS_REV: 0x08, // revision 7:0, class code 31:8
  HEADER_TYPE: 0x0c, // header type is byte 0x0E (bits 23:16 of this DW)
  BAR0: 0x10, // Type 0: BAR0..BAR5 at 0x10..0x24; Type 1: BAR0..BAR1 at 0x10..0x14
  BUS_NUMBERS: 0x18, // Type 1: primary 7:0, secondary 15:8, subordinate 23:16
  MEMORY_BASE_LIMIT: 0x20, // Type 1: memory base 15:0, memory limit 31:16
  PREF_BASE_LIMIT: 0x24, // Type 1: prefetchable base 15:0, limit 31:16
  CAP_PTR: 0x34,
  INTERRUPT: 0x3c, // interrupt line 7:0 (RW scratch for software)
  PCIE_CAP: 0x40, // PCI Express capability (cap id 0x10); PCIe capabilities register at byte 0x42
  LINK_CAP: 0x4c, // max link speed 3:0, max link width 9:4
  LINK_CONTROL_STATUS: 0x50, // link control 15:0, link status 31:16 (byte 0x52): speed 3:0, width 9:4
  MSI_CAP: 0x50, // MSI capability when the PCIe capability is absent (else MSI_CAP_AFTER_PCIE)
  MSI_CAP_AFTER_PCIE: 0x80, // PCIe cap occupies 0x40..0x7B, so MSI moves past it
} as const;

/** Command register bits [PCI 6.2.2]. */
export const CMD_MEMORY_SPACE = 1 << 1;
export const CMD_BUS_MASTER = 1 << 2;
/** Status register bit 4: capabilities list present [PCI 6.2.3]. */
export const STATUS_CAP_LIST = 1 << 4;
/** Capability ids [PCI 6.7, PCI Code and ID Assignment]. */
export const CAP_ID = { MSI: 0x05, PCIE: 0x10 } as const;
/** Device/port type field of the PCIe capabilities register [PCIe 7.5.3.2]. */
export const PORT_TYPE = { ENDPOINT: 0x0, ROOT: 0x4, UPSTREAM: 0x5, DOWNSTREAM: 0x6 } as const;
/** Base/limit DW that disables a bridge window (base 0xFFF0 > limit 0x0000); the reset value here. */
export const DISABLED_WINDOW = 0x0000_fff0;

export type PortKind = 'upstream' | 'downstream' | 'root';
export interface BarSpec {
  /** Power of two, 16 B .. 2 GiB (32-bit memory BAR). */
  sizeBytes: number;
  prefetchable?: boolean;
}
export interface LinkOptions {
  /** PCIe generation 1..6 (encoded speed 1 = 2.5 GT/s ... 5 = 32 GT/s, 6 = 64 GT/s). Default 3. */
  linkGen?: number;
  /** Lane count: 1, 2, 4, 8, 12, 16 or 32. Default 16. */
  linkLanes?: number;
}
export interface EndpointOptions extends LinkOptions {
  vendorId: number;
  deviceId: number;
  /** 24 bits: base class 23:16, subclass 15:8, programming interface 7:0. */
  classCode: number;
  revision?: number;
  /** Up to 6 entries; null (or absent) = unimplemented BAR. */
  bars: Array<BarSpec | null>;
  msi?: boolean;
  /** Add a PCI Express capability with device/port type 0 (PCIe endpoint). */
  pcieEndpoint?: boolean;
}
export interface BridgeOptions extends LinkOptions {
  vendorId: number;
  deviceId: number;
  /** Default 0x060400: PCI-to-PCI bridge. */
  classCode?: number;
  portType: PortKind;
}
export interface Window {
  base: number;
  /** Inclusive. */
  limit: number;
}

const LANES = new Set([1, 2, 4, 8, 12, 16, 32]);

function check(ok: boolean, message: string, hint: string): void {
  if (!ok) throw new DconnectError('BAD_TOPOLOGY', message, hint);
}
function checkBits(value: number, bits: number, what: string): void {
  check(Number.isInteger(value) && value >= 0 && value < 2 ** bits, `${what} ${value} does not fit in ${bits} bits`, `give ${what} as an unsigned ${bits}-bit integer`);
}

export class ConfigSpace {
  private readonly bytes = new Uint8Array(256);
  /** Per-byte mask of software-writable bits; all other bits are hardwired (read-only). */
  private readonly wmask = new Uint8Array(256);
  /** Sizes of the memory BARs (0 = unimplemented). */
  private readonly barSizes = [0, 0, 0, 0, 0, 0];
  private msiCap = 0;
  private pcieCap = 0;

  private constructor(readonly kind: 'endpoint' | 'bridge') {}

  /** Configuration read of the DW at `offset` (low 2 bits ignored); 0 outside 0..255. */
  read32(offset: number): number {
    if (!(offset >= 0 && offset < 256)) return 0;
    return this.get(offset & 0xfc, 4);
  }

  /** Configuration write; only byte lanes set in `byteEnables` and only writable bits change. */
  write32(offset: number, value: number, byteEnables = 0xf): void {
    if (!(offset >= 0 && offset < 256)) return;
    const o = offset & 0xfc;
    for (let i = 0; i < 4; i++) {
      if (((byteEnables >>> i) & 1) === 0) continue;
      const m = this.wmask[o + i];
      this.bytes[o + i] = (this.bytes[o + i] & ~m) | ((value >>> (8 * i)) & m);
    }
  }

  // ---- identity ------------------------------------------------------------------------------------
  vendorId(): number {
    return this.get(0x00, 2);
  }
  deviceId(): number {
    return this.get(0x02, 2);
  }
  classCode(): number {
    return this.get(0x09, 3);
  }
  headerType(): number {
    return this.get(0x0e, 1) & 0x7f;
  }
  /** Device/port type from the PCIe capability, or -1 when the function has none. */
  portType(): number {
    return this.pcieCap ? (this.get(this.pcieCap + 2, 2) >>> 4) & 0xf : -1;
  }
  /** Current link speed (generation) and width from the link status register; 0 without PCIe cap. */
  linkSpeed(): number {
    return this.pcieCap ? this.get(this.pcieCap + 0x12, 2) & 0xf : 0;
  }
  linkWidth(): number {
    return this.pcieCap ? (this.get(this.pcieCap + 0x12, 2) >>> 4) & 0x3f : 0;
  }
  /** Hardware side: record the trained link (may be below the capabilities) in link status. */
  setLinkStatus(gen: number, lanes: number): void {
    validateLink(gen, lanes);
    if (this.pcieCap) this.set(this.pcieCap + 0x12, 2, (lanes << 4) | gen);
  }

  // ---- command register [PCI 6.2.2] -------------------------------------------------------------------
  memoryEnabled(): boolean {
    return (this.bytes[0x04] & CMD_MEMORY_SPACE) !== 0;
  }
  busMasterEnabled(): boolean {
    return (this.bytes[0x04] & CMD_BUS_MASTER) !== 0;
  }

  // ---- Type 0 BARs [PCI 6.2.5.1] ----------------------------------------------------------------------
  barSize(i: number): number {
    return this.barSizes[i] ?? 0;
  }
  /** Assigned base of BAR i with the type bits masked (0 when unimplemented or unassigned). */
  barAddress(i: number): number {
    return this.barSize(i) ? (this.get(CFG.BAR0 + 4 * i, 4) & ~0xf) >>> 0 : 0;
  }
  /** Index of the BAR that decodes `address`, or -1; BARs decode only with memory space enabled. */
  barContains(address: number): number {
    if (!this.memoryEnabled()) return -1;
    for (let i = 0; i < 6; i++) {
      const size = this.barSizes[i];
      if (size === 0) continue;
      const base = this.barAddress(i);
      if (base !== 0 && address >= base && address < base + size) return i;
    }
    return -1;
  }

  // ---- MSI [PCI 6.8.1] -------------------------------------------------------------------------------
  msiEnabled(): boolean {
    return this.msiCap !== 0 && (this.bytes[this.msiCap + 2] & 1) !== 0;
  }
  /** 64-bit message address (upper * 2^32 + lower). */
  msiAddress(): number {
    return this.msiCap ? this.get(this.msiCap + 8, 4) * 2 ** 32 + this.get(this.msiCap + 4, 4) : 0;
  }
  msiData(): number {
    return this.msiCap ? this.get(this.msiCap + 0x0c, 2) : 0;
  }

  // ---- Type 1 bridge routing [P2P 3.2.5] -----------------------------------------------------------
  primaryBus(): number {
    return this.kind === 'bridge' ? this.bytes[0x18] : 0;
  }
  secondaryBus(): number {
    return this.kind === 'bridge' ? this.bytes[0x19] : 0;
  }
  subordinateBus(): number {
    return this.kind === 'bridge' ? this.bytes[0x1a] : 0;
  }
  /** True when bus lies in [secondary, subordinate]. An unconfigured bridge (secondary 0) routes nothing. */
  routesBus(bus: number): boolean {
    const sec = this.secondaryBus();
    return sec !== 0 && bus >= sec && bus <= this.subordinateBus();
  }
  /** Non-prefetchable memory window [P2P 3.2.5.8], or null when disabled (limit < base). */
  memoryWindow(): Window | null {
    return this.window(CFG.MEMORY_BASE_LIMIT);
  }
  /** Prefetchable window [P2P 3.2.5.9], 32-bit only here. */
  prefetchableWindow(): Window | null {
    return this.window(CFG.PREF_BASE_LIMIT);
  }
  /**
   * True when `address` falls in either window, so the bridge forwards it downstream. Purely the window
   * decode: the Memory Space Enable gate of the bridge's command register is left to the caller.
   */
  routesAddress(address: number): boolean {
    const m = this.memoryWindow();
    if (m && address >= m.base && address <= m.limit) return true;
    const p = this.prefetchableWindow();
    return p !== null && address >= p.base && address <= p.limit;
  }

  // ---- factories ----------------------------------------------------------------------------------------
  static endpoint(o: EndpointOptions): ConfigSpace {
    checkBits(o.vendorId, 16, 'vendorId');
    checkBits(o.deviceId, 16, 'deviceId');
    checkBits(o.classCode, 24, 'classCode');
    checkBits(o.revision ?? 0, 8, 'revision');
    check(o.bars.length <= 6, `${o.bars.length} BARs given`, 'a Type 0 header has at most 6 BARs');
    const cs = new ConfigSpace('endpoint');
    cs.identity(o.vendorId, o.deviceId, o.classCode, o.revision ?? 0, 0x00);
    o.bars.forEach((bar, i) => {
      if (!bar) return;
      const s = bar.sizeBytes;
      check(Number.isInteger(s) && s >= 16 && s <= 2 ** 31 && (s & (s - 1)) === 0, `BAR${i} size ${s} is not a power of two in 16 B..2 GiB`, 'give a 32-bit memory BAR size such as 16384 or 67108864');
      cs.barSizes[i] = s;
      // Bits below the size are hardwired 0, bits 3:0 hold the type: memory (0), 32-bit (00), prefetchable (bit 3).
      cs.define(CFG.BAR0 + 4 * i, 4, bar.prefetchable ? 0x8 : 0x0, ~(s - 1) >>> 0);
    });
    const pcie = o.pcieEndpoint ? CFG.PCIE_CAP : 0;
    const msi = o.msi ? (pcie ? CFG.MSI_CAP_AFTER_PCIE : CFG.MSI_CAP) : 0;
    if (pcie) cs.addPcieCap(pcie, msi, PORT_TYPE.ENDPOINT, o);
    if (msi) cs.addMsiCap(msi, 0);
    cs.capList(pcie || msi);
    return cs;
  }

  static bridge(o: BridgeOptions): ConfigSpace {
    checkBits(o.vendorId, 16, 'vendorId');
    checkBits(o.deviceId, 16, 'deviceId');
    checkBits(o.classCode ?? 0x060400, 24, 'classCode');
    const type = { upstream: PORT_TYPE.UPSTREAM, downstream: PORT_TYPE.DOWNSTREAM, root: PORT_TYPE.ROOT }[o.portType];
    check(type !== undefined, `unknown port type '${o.portType}'`, "use 'upstream', 'downstream' or 'root'");
    const cs = new ConfigSpace('bridge');
    cs.identity(o.vendorId, o.deviceId, o.classCode ?? 0x060400, 0, 0x01);
    // BAR0/1 unimplemented (read 0). Bus numbers RW; secondary latency timer (0x1B) hardwired 0.
    cs.define(CFG.BUS_NUMBERS, 3, 0, 0xffffff);
    // Base/limit: bits 15:4 = address 31:20 (1 MiB granularity); bits 3:0 RO 0 (32-bit decode).
    cs.define(CFG.MEMORY_BASE_LIMIT, 4, DISABLED_WINDOW, 0xfff0fff0);
    cs.define(CFG.PREF_BASE_LIMIT, 4, DISABLED_WINDOW, 0xfff0fff0);
    cs.addPcieCap(CFG.PCIE_CAP, 0, type, o);
    cs.capList(CFG.PCIE_CAP);
    return cs;
  }

  // ---- layout helpers (hardware side, bypass the writable mask) -------------------------------------------
  private get(off: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.bytes[off + i];
    return v;
  }
  private set(off: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.bytes[off + i] = (value >>> (8 * i)) & 0xff;
  }
  /** Base/limit pair at `off`: bits 15:4 = address bits 31:20; limit inclusive (low 20 bits all ones). */
  private window(off: number): Window | null {
    if (this.kind !== 'bridge') return null;
    const base = ((this.get(off, 2) & 0xfff0) << 16) >>> 0;
    const limit = (((this.get(off + 2, 2) & 0xfff0) << 16) | 0xfffff) >>> 0;
    return limit < base ? null : { base, limit };
  }
  /** Lay out a field: reset value plus the mask of bits software may write. */
  private define(off: number, size: number, value: number, writable = 0): void {
    this.set(off, size, value);
    for (let i = 0; i < size; i++) this.wmask[off + i] = (writable >>> (8 * i)) & 0xff;
  }
  private identity(vendorId: number, deviceId: number, classCode: number, revision: number, headerType: number): void {
    this.define(0x00, 2, vendorId);
    this.define(0x02, 2, deviceId);
    this.define(CFG.COMMAND, 2, 0, CMD_MEMORY_SPACE | CMD_BUS_MASTER);
    this.define(0x08, 1, revision);
    this.define(0x09, 3, classCode);
    this.define(0x0e, 1, headerType);
    this.define(CFG.INTERRUPT, 1, 0, 0xff);
  }
  /** Capabilities pointer [PCI 6.7] and status bit 4 when the list is non-empty. */
  private capList(first: number): void {
    this.define(CFG.CAP_PTR, 1, first);
    this.define(0x06, 2, first ? STATUS_CAP_LIST : 0);
  }
  /** PCI Express capability [PCIe 7.5.3], version 2, 0x3C bytes; link registers from the options. */
  private addPcieCap(off: number, next: number, portType: number, o: LinkOptions): void {
    const gen = o.linkGen ?? 3;
    const lanes = o.linkLanes ?? 16;
    validateLink(gen, lanes);
    this.pcieCap = off;
    this.define(off, 1, CAP_ID.PCIE);
    this.define(off + 1, 1, next);
    this.define(off + 2, 2, (portType << 4) | 0x2); // capability version 2, device/port type 7:4
    this.define(off + 0x0c, 4, (lanes << 4) | gen); // link capabilities: max speed 3:0, max width 9:4
    this.define(off + 0x12, 2, (lanes << 4) | gen); // link status: current speed 3:0, width 9:4
  }
  /** MSI capability with 64-bit address [PCI 6.8.1], one vector. */
  private addMsiCap(off: number, next: number): void {
    this.msiCap = off;
    this.define(off, 1, CAP_ID.MSI);
    this.define(off + 1, 1, next);
    this.define(off + 2, 2, 0x0080, 0x0001); // message control: 64-bit capable (bit 7), MSI enable RW (bit 0)
    this.define(off + 4, 4, 0, 0xfffffffc); // message address, DW aligned (bits 1:0 RO 0)
    this.define(off + 8, 4, 0, 0xffffffff); // message upper address
    this.define(off + 0x0c, 2, 0, 0xffff); // message data
  }
}

function validateLink(gen: number, lanes: number): void {
  check(Number.isInteger(gen) && gen >= 1 && gen <= 6, `link generation ${gen} is not 1..6`, 'use linkGen 1 (2.5 GT/s) to 6 (64 GT/s)');
  check(LANES.has(lanes), `link width x${lanes} is not a PCIe width`, 'use linkLanes 1, 2, 4, 8, 12, 16 or 32');
}

export const endpointConfig = (o: EndpointOptions): ConfigSpace => ConfigSpace.endpoint(o);
export const bridgeConfig = (o: BridgeOptions): ConfigSpace => ConfigSpace.bridge(o);

/** Size of a memory (or I/O) BAR from the value read back after writing all ones [PCI 6.2.5.1]; 0 = unimplemented. */
export function decodeBarSize(readBack: number): number {
  const mask = readBack & 1 ? ~0x3 : ~0xf; // I/O BARs have 2 type bits, memory BARs 4
  const bits = readBack & mask;
  return bits === 0 ? 0 : (~bits + 1) >>> 0;
}

/** The base/limit DW to write at 0x20 or 0x24 for a window [base, limit] (inclusive, 1 MiB granular) [P2P 3.2.5.8]. */
export function encodeMemoryWindow(base: number, limit: number): number {
  const MiB = 0x10_0000;
  check(base % MiB === 0 && (limit + 1) % MiB === 0 && base <= limit && limit < 2 ** 32, `window 0x${base.toString(16)}..0x${limit.toString(16)} is not 1 MiB aligned below 4 GiB`, 'align the base to 1 MiB and make limit + 1 a multiple of 1 MiB');
  return ((((limit >>> 16) & 0xfff0) << 16) | ((base >>> 16) & 0xfff0)) >>> 0;
}

/** The DW to write at 0x18: primary 7:0, secondary 15:8, subordinate 23:16 [P2P 3.2.5.2-3.2.5.4]. */
export function encodeBusNumbers(primary: number, secondary: number, subordinate: number): number {
  return (primary & 0xff) | ((secondary & 0xff) << 8) | ((subordinate & 0xff) << 16);
}

/** Walks the capability list [PCI 6.7]; the offset of the first capability with `capId`, or 0. */
export function findCapability(cfg: { read32(offset: number): number }, capId: number): number {
  if (((cfg.read32(CFG.COMMAND) >>> 16) & STATUS_CAP_LIST) === 0) return 0;
  let ptr = cfg.read32(CFG.CAP_PTR) & 0xfc; // bits 1:0 reserved
  for (let hops = 0; ptr >= 0x40 && hops < 48; hops++) {
    const dw = cfg.read32(ptr);
    if ((dw & 0xff) === capId) return ptr;
    ptr = (dw >>> 8) & 0xfc;
  }
  return 0;
}
