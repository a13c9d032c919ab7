import { CFG, decodeBarSize, encodeBusNumbers, encodeMemoryWindow, CMD_BUS_MASTER, CMD_MEMORY_SPACE } from '../pcie/config-space.js';
import { bdf, formatBdf } from '../pcie/tlp.js';
import { PCI_HOLE_BASE, RootComplex } from '../devices/root-complex.js';
import { call, type Seq } from './coroutine.js';

export interface FoundBar {
  index: number;
  address: number;
  sizeBytes: number;
}

export interface FoundFunction {
  id: number;
  bdf: string;
  vendorId: number;
  deviceId: number;
  classCode: number;
  isBridge: boolean;
  bars: FoundBar[];
  /** The bridge directly above (its id), or -1 below the root complex's internal bus. */
  parent: number;
}

/** End of the 32-bit MMIO window the BIOS leaves for PCI (below the local APIC and MSI range). */
const MMIO_LIMIT = 0xfec0_0000;
const MIB = 1 << 20;

function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/**
 * Depth-first PCI enumeration over the fabric, as firmware or Linux does it: every configuration
 * access is a real TLP (through the server-side bridge and over Ethernet for the box). Bridges get bus
 * numbers and memory windows; endpoint BARs are sized (write all-ones, read back) and assigned from
 * the 32-bit PCI hole; memory decoding and bus mastering are enabled.
 */
export function* enumerate(rc: RootComplex): Seq<FoundFunction[]> {
  const found: FoundFunction[] = [];
  let lastBus = 0;
  let mmio = PCI_HOLE_BASE;
  const rd = (id: number, reg: number) => call<number>((k) => rc.configRead(id, reg, k));
  const wr = (id: number, reg: number, v: number) => call<void>((k) => rc.configWrite(id, reg, v, k));

  function* scan(bus: number, parent: number): Seq<void> {
    for (let dev = 0; dev < 32; dev++) {
      const id = bdf(bus, dev);
      const ids = yield* rd(id, CFG.VENDOR_ID);
      if ((ids & 0xffff) === 0xffff) continue;
      const headerType = ((yield* rd(id, CFG.HEADER_TYPE)) >>> 16) & 0x7f;
      const classCode = (yield* rd(id, CFG.CLASS_REV)) >>> 8;
      const fn: FoundFunction = { id, bdf: formatBdf(id), vendorId: ids & 0xffff, deviceId: ids >>> 16, classCode, isBridge: headerType === 1, bars: [], parent };
      found.push(fn);
      if (fn.isBridge) {
        const secondary = ++lastBus;
        yield* wr(id, CFG.BUS_NUMBERS, encodeBusNumbers(bus, secondary, 0xff));
        mmio = align(mmio, MIB);
        const windowBase = mmio;
        yield* scan(secondary, id);
        yield* wr(id, CFG.BUS_NUMBERS, encodeBusNumbers(bus, secondary, lastBus));
        mmio = align(mmio, MIB);
        if (mmio > windowBase) yield* wr(id, CFG.MEMORY_BASE_LIMIT, encodeMemoryWindow(windowBase, mmio - 1));
        yield* wr(id, CFG.COMMAND, CMD_MEMORY_SPACE | CMD_BUS_MASTER);
      } else {
        for (let i = 0; i < 6; i++) {
          const reg = CFG.BAR0 + 4 * i;
          yield* wr(id, reg, 0xffffffff);
          const back = yield* rd(id, reg);
          if (back === 0) continue;
          const size = decodeBarSize(back);
          mmio = align(mmio, size);
          if (mmio + size > MMIO_LIMIT) throw new Error(`PCI enumeration: no MMIO space left for ${fn.bdf} BAR${i} (${size} B)`);
          yield* wr(id, reg, mmio);
          fn.bars.push({ index: i, address: mmio, sizeBytes: size });
          mmio += size;
        }
        yield* wr(id, CFG.COMMAND, CMD_MEMORY_SPACE | CMD_BUS_MASTER);
      }
    }
  }

  yield* scan(0, -1);
  return found;
}

export { RootComplex };
