import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import {
  CAP_ID,
  CFG,
  CMD_BUS_MASTER,
  CMD_MEMORY_SPACE,
  DISABLED_WINDOW,
  PORT_TYPE,
  bridgeConfig,
  decodeBarSize,
  encodeBusNumbers,
  encodeMemoryWindow,
  endpointConfig,
  findCapability,
} from '../../src/pcie/config-space.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function nvme(extra: { msi?: boolean; pcieEndpoint?: boolean; linkGen?: number; linkLanes?: number } = {}) {
  return endpointConfig({
    vendorId: 0x144d,
    deviceId: 0xa808,
    classCode: 0x010802,
    revision: 0x01,
    bars: [{ sizeBytes: 16 * KiB }, null, { sizeBytes: 64 * MiB, prefetchable: true }],
    ...extra,
  });
}

/** BAR sizing as enumeration does it [PCI 6.2.5.1]: save, write all ones, read back, restore. */
function sizeBar(cs: ReturnType<typeof nvme>, i: number): { readBack: number; size: number } {
  const off = CFG.BAR0 + 4 * i;
  const saved = cs.read32(off);
  cs.write32(off, 0xffffffff);
  const readBack = cs.read32(off);
  cs.write32(off, saved);
  return { readBack, size: decodeBarSize(readBack) };
}

test('BAR sizing returns ~(size-1) with type bits and decodes to the size', () => {
  const cs = nvme();
  assert.deepEqual(sizeBar(cs, 0), { readBack: 0xffffc000, size: 16 * KiB });
  // 64 MiB prefetchable: bit 3 set, bits 2:1 = 00 (32-bit), bit 0 = 0 (memory).
  assert.deepEqual(sizeBar(cs, 2), { readBack: 0xfc000008, size: 64 * MiB });
  assert.equal(cs.read32(CFG.BAR0 + 8) & 0xf, 0x8);
  assert.equal(cs.read32(CFG.BAR0) & 0xf, 0x0);
});

test('unimplemented BARs read 0 even after writing all ones', () => {
  const cs = nvme();
  for (const i of [1, 3, 4, 5]) {
    assert.deepEqual(sizeBar(cs, i), { readBack: 0, size: 0 });
    assert.equal(cs.barAddress(i), 0);
  }
});

test('assigned BAR address ignores low bits; barContains needs memory space enable', () => {
  const cs = nvme();
  cs.write32(CFG.BAR0, 0xe000_7fff); // bits below 16 KiB are hardwired 0
  cs.write32(CFG.BAR0 + 8, 0xe400_0000);
  assert.equal(cs.read32(CFG.BAR0), 0xe000_4000);
  assert.equal(cs.barAddress(0), 0xe000_4000);
  assert.equal(cs.barAddress(2), 0xe400_0000);
  assert.equal(cs.barContains(0xe000_4000), -1, 'memory space disabled');
  cs.write32(CFG.COMMAND, CMD_MEMORY_SPACE | CMD_BUS_MASTER);
  assert.ok(cs.memoryEnabled() && cs.busMasterEnabled());
  assert.equal(cs.barContains(0xe000_4000), 0);
  assert.equal(cs.barContains(0xe000_7ffc), 0);
  assert.equal(cs.barContains(0xe000_8000), -1);
  assert.equal(cs.barContains(0xe7ff_fffc), 2);
  assert.equal(cs.barContains(0xe800_0000), -1);
});

test('vendor/device id, class code and header type are read-only; command keeps only its RW bits', () => {
  const cs = nvme();
  for (const off of [CFG.VENDOR_ID, CFG.CLASS_REV, CFG.HEADER_TYPE]) cs.write32(off, 0xffffffff);
  assert.equal(cs.read32(CFG.VENDOR_ID), 0xa808_144d);
  assert.equal(cs.read32(CFG.CLASS_REV), 0x0108_0201);
  assert.equal((cs.read32(CFG.HEADER_TYPE) >>> 16) & 0xff, 0x00);
  assert.equal(cs.vendorId(), 0x144d);
  assert.equal(cs.deviceId(), 0xa808);
  assert.equal(cs.classCode(), 0x010802);
  cs.write32(CFG.COMMAND, 0xffff);
  assert.equal(cs.read32(CFG.COMMAND) & 0xffff, CMD_MEMORY_SPACE | CMD_BUS_MASTER);
});

test('byte enables select the lanes written; out-of-range offsets read 0', () => {
  const cs = bridgeConfig({ vendorId: 0x10b5, deviceId: 0x8796, portType: 'downstream' });
  cs.write32(CFG.BUS_NUMBERS, encodeBusNumbers(1, 2, 5));
  cs.write32(CFG.BUS_NUMBERS, 0x00_09_07_08, 0b0010); // only the secondary bus lane
  assert.equal(cs.read32(CFG.BUS_NUMBERS), 0x00_05_07_01);
  cs.write32(CFG.COMMAND, 0xffff_ffff, 0b0000);
  assert.equal(cs.read32(CFG.COMMAND) & 0xffff, 0);
  cs.write32(CFG.INTERRUPT, 0x0000_00ab, 0b0001);
  assert.equal(cs.read32(CFG.INTERRUPT) & 0xff, 0xab);
  assert.equal(cs.read32(256), 0);
  assert.equal(cs.read32(-4), 0);
});

test('bridge: Type 1 header, no BARs, bus numbers and routesBus', () => {
  const cs = bridgeConfig({ vendorId: 0x10b5, deviceId: 0x8796, portType: 'upstream' });
  assert.equal((cs.read32(CFG.HEADER_TYPE) >>> 16) & 0xff, 0x01);
  assert.equal(cs.read32(CFG.CLASS_REV) >>> 8, 0x060400);
  for (const off of [CFG.BAR0, CFG.BAR0 + 4]) {
    cs.write32(off, 0xffffffff);
    assert.equal(cs.read32(off), 0);
  }
  assert.equal(cs.routesBus(0), false, 'unconfigured bridge routes nothing');
  cs.write32(CFG.BUS_NUMBERS, encodeBusNumbers(1, 2, 5) | 0xff00_0000); // latency timer byte is RO
  assert.equal(cs.read32(CFG.BUS_NUMBERS), 0x00_05_02_01);
  assert.deepEqual([cs.primaryBus(), cs.secondaryBus(), cs.subordinateBus()], [1, 2, 5]);
  assert.deepEqual([1, 2, 3, 5, 6].map((b) => cs.routesBus(b)), [false, true, true, true, false]);
});

test('bridge memory window encoding, decode and routesAddress', () => {
  const cs = bridgeConfig({ vendorId: 0x10b5, deviceId: 0x8796, portType: 'downstream' });
  assert.equal(cs.read32(CFG.MEMORY_BASE_LIMIT), DISABLED_WINDOW);
  assert.equal(cs.memoryWindow(), null, 'reset: disabled');
  assert.equal(cs.routesAddress(0), false);
  // Bits 15:4 of each register carry address bits 31:20 [P2P 3.2.5.8].
  const dw = encodeMemoryWindow(0xc000_0000, 0xc3ff_ffff);
  assert.equal(dw & 0xffff, 0xc000);
  assert.equal(dw >>> 16, 0xc3f0);
  cs.write32(CFG.MEMORY_BASE_LIMIT, dw | 0x000f_000f); // low 4 bits are RO 0
  assert.equal(cs.read32(CFG.MEMORY_BASE_LIMIT), 0xc3f0_c000);
  assert.deepEqual(cs.memoryWindow(), { base: 0xc000_0000, limit: 0xc3ff_ffff });
  assert.equal(cs.routesAddress(0xc000_0000), true);
  assert.equal(cs.routesAddress(0xc3ff_fffc), true);
  assert.equal(cs.routesAddress(0xc400_0000), false);
  assert.equal(cs.routesAddress(0xbfff_fffc), false);
  // Prefetchable window also routes; then disable both.
  cs.write32(CFG.PREF_BASE_LIMIT, encodeMemoryWindow(0xd000_0000, 0xd00f_ffff));
  assert.deepEqual(cs.prefetchableWindow(), { base: 0xd000_0000, limit: 0xd00f_ffff });
  assert.equal(cs.routesAddress(0xd008_0000), true);
  cs.write32(CFG.MEMORY_BASE_LIMIT, DISABLED_WINDOW);
  cs.write32(CFG.PREF_BASE_LIMIT, DISABLED_WINDOW);
  assert.equal(cs.memoryWindow(), null);
  assert.equal(cs.routesAddress(0xc000_0000), false);
  assert.throws(() => encodeMemoryWindow(0xc008_0000, 0xc3ff_ffff), DconnectError);
});

test('MSI capability: found by walking the list, programmable through config writes', () => {
  const cs = nvme({ msi: true });
  assert.ok((cs.read32(CFG.COMMAND) >>> 16) & 0x10, 'status: capabilities list');
  assert.equal(cs.read32(CFG.CAP_PTR) & 0xff, 0x50);
  const msi = findCapability(cs, CAP_ID.MSI);
  assert.equal(msi, 0x50);
  assert.equal(findCapability(cs, CAP_ID.PCIE), 0);
  const hdr = cs.read32(msi);
  assert.equal(hdr & 0xff, 0x05);
  assert.equal((hdr >>> 8) & 0xff, 0, 'last capability');
  assert.equal((hdr >>> 16) & 0xffff, 0x0080, '64-bit address capable, disabled');
  cs.write32(msi + 4, 0xfee0_1003); // bits 1:0 RO 0
  cs.write32(msi + 8, 0x0000_0001);
  cs.write32(msi + 0xc, 0xdead_4021); // 16-bit data: upper half not written (reserved here)
  cs.write32(msi, 0xffff_0000, 0b1100); // only MSI enable sticks
  assert.equal(cs.read32(msi) >>> 16, 0x0081);
  assert.equal(cs.msiEnabled(), true);
  assert.equal(cs.msiAddress(), 0x1_fee0_1000);
  assert.equal(cs.msiData(), 0x4021);
  assert.equal(nvme().read32(CFG.CAP_PTR), 0, 'no capabilities without msi');
});

test('PCIe capability precedes MSI; manual next-pointer walk finds both', () => {
  const cs = nvme({ msi: true, pcieEndpoint: true, linkGen: 4, linkLanes: 4 });
  const seen: Array<[number, number]> = [];
  for (let p = cs.read32(CFG.CAP_PTR) & 0xfc; p !== 0; p = (cs.read32(p) >>> 8) & 0xfc) seen.push([p, cs.read32(p) & 0xff]);
  assert.deepEqual(seen, [
    [0x40, CAP_ID.PCIE],
    [CFG.MSI_CAP_AFTER_PCIE, CAP_ID.MSI],
  ]);
  assert.equal((cs.read32(0x40) >>> 20) & 0xf, PORT_TYPE.ENDPOINT);
  assert.equal(cs.read32(CFG.LINK_CAP) & 0x3ff, (4 << 4) | 4);
  cs.write32(CFG.MSI_CAP_AFTER_PCIE, 1 << 16);
  assert.equal(cs.msiEnabled(), true);
});

test('PCIe port type and link registers for bridges', () => {
  const kinds = [
    ['root', PORT_TYPE.ROOT],
    ['upstream', PORT_TYPE.UPSTREAM],
    ['downstream', PORT_TYPE.DOWNSTREAM],
  ] as const;
  for (const [portType, code] of kinds) {
    const cs = bridgeConfig({ vendorId: 0x8086, deviceId: 0x1234, portType, linkGen: 5, linkLanes: 8 });
    assert.equal(findCapability(cs, CAP_ID.PCIE), CFG.PCIE_CAP);
    assert.equal((cs.read32(CFG.PCIE_CAP) >>> 20) & 0xf, code, portType);
    assert.equal(cs.portType(), code);
    assert.equal(cs.read32(CFG.LINK_CAP) & 0xf, 5, 'max speed 32 GT/s');
    assert.equal((cs.read32(CFG.LINK_CAP) >>> 4) & 0x3f, 8, 'max width x8');
    const status = cs.read32(CFG.LINK_CONTROL_STATUS) >>> 16; // link status at 0x52
    assert.deepEqual([status & 0xf, (status >>> 4) & 0x3f], [5, 8]);
    cs.write32(CFG.LINK_CAP, 0xffffffff);
    assert.equal(cs.read32(CFG.LINK_CAP) & 0x3ff, (8 << 4) | 5, 'read-only');
  }
  const ds = bridgeConfig({ vendorId: 0x8086, deviceId: 0x1234, portType: 'downstream' });
  ds.setLinkStatus(2, 4);
  assert.deepEqual([ds.linkSpeed(), ds.linkWidth()], [2, 4]);
  assert.equal(nvme().portType(), -1);
});

test('invalid factory options throw DconnectError', () => {
  const bad = (sizeBytes: number) => () => endpointConfig({ vendorId: 1, deviceId: 2, classCode: 0x020000, bars: [{ sizeBytes }] });
  for (const s of [0, 8, 3 * KiB, 2 ** 32]) assert.throws(bad(s), DconnectError);
  assert.throws(() => endpointConfig({ vendorId: 0x1_0000, deviceId: 2, classCode: 0, bars: [] }), DconnectError);
  assert.throws(() => bridgeConfig({ vendorId: 1, deviceId: 2, portType: 'root', linkLanes: 3 }), DconnectError);
});

test('property: sizing recovers any power-of-two BAR size and any aligned address reads back', () => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 31 }), fc.boolean(), fc.nat(), (log2, prefetchable, pick) => {
      const size = 2 ** log2;
      const cs = endpointConfig({ vendorId: 1, deviceId: 2, classCode: 0x058000, bars: [{ sizeBytes: size, prefetchable }] });
      cs.write32(CFG.BAR0, 0xffffffff);
      const readBack = cs.read32(CFG.BAR0);
      assert.equal(readBack, ((~(size - 1) >>> 0) | (prefetchable ? 8 : 0)) >>> 0);
      assert.equal(decodeBarSize(readBack), size);
      const address = (pick % 2 ** (32 - log2)) * size; // any size-aligned 32-bit address
      cs.write32(CFG.BAR0, address);
      assert.equal(cs.barAddress(0), address);
      assert.equal(cs.read32(CFG.BAR0), (address | (prefetchable ? 8 : 0)) >>> 0);
      cs.write32(CFG.COMMAND, CMD_MEMORY_SPACE);
      assert.equal(cs.barContains(address + size - 1), address === 0 ? -1 : 0);
    }),
    { numRuns: 500 },
  );
});
