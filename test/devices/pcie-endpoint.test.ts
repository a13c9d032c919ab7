import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CAP_ID, findCapability } from '../../src/pcie/config-space.js';
import { bdf, CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';
import { dwordAt, dwords, PcieEndpoint, type EndpointCounters, type EndpointDevice } from '../../src/devices/pcie-endpoint.js';
import type { DmaParams } from '../../src/devices/dma-engine.js';
import { AMPLE_CREDITS, BENCH_ID, dwordLe, le32, PcieBench, type BenchOptions } from '../helpers/pcie-bench.js';

const BUS = 5;
const BAR0 = 0xd000_0000;
const BAR0_BYTES = 4096;
/** BAR1 is left unimplemented: the second register BAR is BAR2. */
const BAR2 = 0xd010_0000;
const BAR2_BYTES = 16384;

/** A tiny register device: 32-bit registers per BAR, every access recorded. */
class RegisterDevice implements EndpointDevice {
  readonly endpoint: PcieEndpoint;
  readonly counters: EndpointCounters = { unsupportedRequests: 0, writesOutsideBar: 0 };
  readonly regs = [new Map<number, number>(), new Map<number, number>(), new Map<number, number>()];
  readonly reads: { bar: number; offset: number; lengthBytes: number }[] = [];
  readonly writes: { bar: number; offset: number; data: number[] }[] = [];
  readyCalls = 0;

  constructor(bench: PcieBench, o: { dma?: DmaParams; msi?: boolean } = {}) {
    this.endpoint = new PcieEndpoint('dev', bench.s, bench.port, {
      identity: { vendorId: 0x1af4, deviceId: 0x1234, classCode: 0x020000, bars: [{ sizeBytes: BAR0_BYTES }, null, { sizeBytes: BAR2_BYTES, prefetchable: true }], msi: o.msi },
      link: { generation: 2, lanes: 4 },
      dma: o.dma,
      counters: this.counters,
    });
    this.endpoint.attach(this);
  }

  regRead(bar: number, offset: number, lengthBytes: number): Uint8Array {
    this.reads.push({ bar, offset, lengthBytes });
    return dwords(offset, lengthBytes, (off) => this.regs[bar].get(off) ?? 0);
  }

  regWrite(bar: number, offset: number, data: Uint8Array): void {
    this.writes.push({ bar, offset, data: [...data] });
    for (let i = 0; i + 4 <= data.length; i += 4) this.regs[bar].set(offset + i, dwordAt(data, i));
  }

  portReady(): void {
    this.readyCalls++;
  }
}

/** A device whose BAR0 is memory with its own timing: it holds every request until the test releases it. */
class MemoryDevice implements EndpointDevice {
  readonly endpoint: PcieEndpoint;
  readonly counters: EndpointCounters = { unsupportedRequests: 0, writesOutsideBar: 0 };
  readonly held: { tlp: Tlp; bar: number; offset: number }[] = [];
  readonly memory = new Uint8Array(BAR0_BYTES);

  constructor(bench: PcieBench) {
    this.endpoint = new PcieEndpoint('mem', bench.s, bench.port, {
      identity: { vendorId: 0x1172, deviceId: 0xdc00, classCode: 0x050000, bars: [{ sizeBytes: BAR0_BYTES, prefetchable: true }] },
      link: { generation: 2, lanes: 4 },
      counters: this.counters,
    });
    this.endpoint.attach(this);
  }

  memoryRequest(tlp: Tlp, bar: number, offset: number): void {
    this.held.push({ tlp, bar, offset });
  }

  /** Serves and releases every held request: writes store, reads answer with the data (MPS 128, RCB 64). */
  serveAll(): number[] {
    const completions: number[] = [];
    for (const { tlp, offset } of this.held.splice(0)) {
      this.endpoint.release(tlp);
      if (tlp.kind === 'MWr') this.memory.set(tlp.data!, offset);
      else completions.push(this.endpoint.sendReadData(tlp, this.memory.slice(offset, offset + tlp.lengthDw * 4), 128, 64));
    }
    return completions;
  }
}

/** A bench with the device configured as enumeration would: bus number, BARs, memory space on. */
function configured<D>(make: (b: PcieBench) => D, o: BenchOptions = {}): { bench: PcieBench; dev: D } {
  const bench = new PcieBench(o);
  const dev = make(bench);
  bench.assignBar(BUS, 0, BAR0);
  bench.assignBar(BUS, 2, BAR2);
  bench.enable(BUS);
  bench.got.length = 0;
  return { bench, dev };
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 37 + i * 11) & 0xff);
}

describe('PcieEndpoint configuration', () => {
  it('answers configuration reads with its identity, and the bus number of the request becomes its completer id', () => {
    const bench = new PcieBench();
    const dev = new RegisterDevice(bench);
    assert.equal(dev.endpoint.completerId, 0, 'bus 0 until configured');
    const req = bench.cfgRead(BUS, 0x00);
    bench.run();
    const [c] = bench.completionsFor(req);
    assert.equal(c.kind, 'CplD');
    assert.equal(c.status, CPL_STATUS.SC);
    assert.equal(c.completerId, bdf(BUS, 0));
    assert.equal(c.requesterId, BENCH_ID);
    assert.equal(dwordLe(c.data!, 0), ((0x1234 << 16) | 0x1af4) >>> 0);
    assert.equal(bench.readConfig(BUS, 0x08) >>> 8, 0x020000, 'class code in bits 31:8');
    assert.equal(dev.endpoint.completerId, bdf(BUS, 0));
    // A configuration request on another bus (enumeration renumbering) moves the completer id with it.
    bench.readConfig(7, 0x00);
    assert.equal(dev.endpoint.completerId, bdf(7, 0));
  });

  it('configuration writes complete without data (Cpl, byte count 4)', () => {
    const bench = new PcieBench();
    new RegisterDevice(bench);
    const req = bench.cfgWrite(BUS, 0x10, BAR0);
    bench.run();
    const [c] = bench.completionsFor(req);
    assert.equal(c.kind, 'Cpl');
    assert.equal(c.status, CPL_STATUS.SC);
    assert.equal(c.byteCount, 4);
  });

  it('BARs are sized and assigned through configuration writes; an unimplemented BAR reads back 0', () => {
    const bench = new PcieBench();
    const dev = new RegisterDevice(bench);
    assert.equal(bench.assignBar(BUS, 0, BAR0), BAR0_BYTES);
    assert.equal(bench.assignBar(BUS, 1, 0xe000_0000), 0);
    assert.equal(bench.assignBar(BUS, 2, BAR2), BAR2_BYTES);
    assert.equal(bench.readConfig(BUS, 0x18) & 0xf, 0x8, 'BAR2 is prefetchable');
    assert.equal(dev.endpoint.config.barAddress(0), BAR0);
    assert.equal(dev.endpoint.config.barAddress(1), 0);
    assert.equal(dev.endpoint.config.barAddress(2), BAR2);
    // Not decoded until memory space is on.
    assert.equal(dev.endpoint.config.barContains(BAR2), -1);
    bench.enable(BUS);
    assert.equal(dev.endpoint.config.barContains(BAR2 + 8), 2);
  });
});

describe('PcieEndpoint register BARs', () => {
  it('a memory write reaches regWrite with its BAR, offset and data, and is not answered', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    bench.memWrite(BAR2 + 0x10, le32(0xdeadbeef));
    bench.memWrite(BAR0 + 0x20, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    bench.run();
    assert.deepEqual(dev.writes, [
      { bar: 2, offset: 0x10, data: [0xef, 0xbe, 0xad, 0xde] },
      { bar: 0, offset: 0x20, data: [1, 2, 3, 4, 5, 6, 7, 8] },
    ]);
    assert.equal(dev.regs[0].get(0x24), 0x08070605);
    assert.equal(bench.got.length, 0, 'posted writes get no completion');
    assert.equal(dev.counters.unsupportedRequests, 0);
  });

  it('a memory read reaches regRead and its data comes back in one successful completion', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    dev.regs[2].set(0x100, 0x11223344);
    dev.regs[2].set(0x104, 0x55667788);
    const req = bench.memRead(BAR2 + 0x100, 8);
    bench.run();
    assert.deepEqual(dev.reads, [{ bar: 2, offset: 0x100, lengthBytes: 8 }]);
    const [c] = bench.completionsFor(req);
    assert.equal(c.kind, 'CplD');
    assert.equal(c.status, CPL_STATUS.SC);
    assert.equal(c.completerId, bdf(BUS, 0));
    assert.equal(c.byteCount, 8);
    assert.equal(c.lowerAddress, 0x100 & 0x7f);
    assert.equal(dwordLe(c.data!, 0), 0x11223344);
    assert.equal(dwordLe(c.data!, 4), 0x55667788);
  });

  it('a read at the last DW of a BAR is inside it', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    const req = bench.memRead(BAR0 + BAR0_BYTES - 4, 4);
    bench.run();
    assert.equal(bench.completionsFor(req)[0].status, CPL_STATUS.SC);
    assert.equal(dev.counters.unsupportedRequests, 0);
  });
});

describe('PcieEndpoint Unsupported Request', () => {
  it('a memory read outside every BAR gets a UR completion (no data) and is counted', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    const below = bench.memRead(BAR0 - 0x1000, 4);
    const between = bench.memRead(BAR0 + BAR0_BYTES, 4); // past BAR0, where BAR1 would be
    bench.run();
    for (const req of [below, between]) {
      const [c] = bench.completionsFor(req);
      assert.equal(c.kind, 'Cpl');
      assert.equal(c.status, CPL_STATUS.UR);
      assert.equal(c.data, null);
      assert.equal(c.completerId, bdf(BUS, 0));
      assert.equal(c.byteCount, 4, 'a UR completion reports the bytes the read asked for');
    }
    assert.equal(dev.reads.length, 0);
    assert.deepEqual(dev.counters, { unsupportedRequests: 2, writesOutsideBar: 0 });
  });

  it('a memory write outside every BAR is dropped, with only the counters to tell', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    bench.memWrite(BAR2 + BAR2_BYTES, le32(1));
    bench.run();
    assert.equal(dev.writes.length, 0);
    assert.equal(bench.got.length, 0);
    assert.deepEqual(dev.counters, { unsupportedRequests: 1, writesOutsideBar: 1 });
  });

  it('a request straddling the end of a BAR is refused whole', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    const read = bench.memRead(BAR0 + BAR0_BYTES - 4, 8);
    bench.memWrite(BAR2 + BAR2_BYTES - 4, new Uint8Array(8));
    bench.run();
    assert.equal(bench.completionsFor(read)[0].status, CPL_STATUS.UR);
    assert.equal(dev.reads.length + dev.writes.length, 0);
    assert.deepEqual(dev.counters, { unsupportedRequests: 2, writesOutsideBar: 1 });
  });

  it('with memory space off nothing decodes, and a Type 1 configuration request gets UR', () => {
    const bench = new PcieBench();
    const dev = new RegisterDevice(bench);
    bench.assignBar(BUS, 0, BAR0);
    const read = bench.memRead(BAR0, 4);
    const cfg1 = bench.send(Tlp.config('CfgRd1', BENCH_ID, 77, bdf(BUS, 0), 0, null));
    bench.run();
    assert.equal(bench.completionsFor(read)[0].status, CPL_STATUS.UR);
    assert.equal(bench.completionsFor(cfg1)[0].status, CPL_STATUS.UR);
    assert.equal(dev.reads.length, 0);
    assert.equal(dev.counters.unsupportedRequests, 2);
  });

  it('a completion to a target-only device (it never asked) is dropped and counted', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b));
    const fake = Tlp.memRead(bdf(BUS, 0), 3, 0x1000, 4);
    bench.send(Tlp.completion(fake, BENCH_ID, CPL_STATUS.SC, le32(7), 4, 0x1000));
    bench.run();
    assert.equal(bench.got.length, 0);
    assert.deepEqual(dev.counters, { unsupportedRequests: 1, writesOutsideBar: 0 });
  });
});

describe('PcieEndpoint memory BAR with its own timing', () => {
  it('holds requests, and their link credits, until the device releases them', () => {
    const credits = { ...AMPLE_CREDITS, postedHeaders: 4, nonPostedHeaders: 2 };
    const { bench, dev } = configured((b) => new MemoryDevice(b), { downCredits: credits });
    const data = pattern(8 * 64, 1);
    for (let i = 0; i < 8; i++) bench.memWrite(BAR0 + 64 * i, data.subarray(64 * i, 64 * i + 64));
    bench.run();
    assert.equal(dev.held.length, 4, 'the device has all the credits it advertised in hand');
    assert.equal(bench.link.up.queuedTlps(), 4, 'the rest wait in the bench for credits');
    assert.deepEqual(
      dev.held.map((h) => [h.bar, h.offset]),
      [0, 1, 2, 3].map((i) => [0, 64 * i]),
    );
    dev.serveAll();
    bench.run();
    assert.equal(dev.held.length, 4, 'the released credits let the other four in');
    assert.equal(bench.link.up.queuedTlps(), 0);
    dev.serveAll();
    assert.deepEqual(dev.memory.subarray(0, data.length), data);
  });

  it('requests outside the BAR never reach memoryRequest, and their credits return at once', () => {
    const credits = { ...AMPLE_CREDITS, nonPostedHeaders: 1 };
    const { bench, dev } = configured((b) => new MemoryDevice(b), { downCredits: credits });
    const reqs = [0, 1, 2].map(() => bench.memRead(BAR0 + BAR0_BYTES, 4));
    bench.run();
    assert.equal(dev.held.length, 0);
    for (const r of reqs) assert.equal(bench.completionsFor(r)[0].status, CPL_STATUS.UR);
    assert.equal(dev.counters.unsupportedRequests, 3);
  });

  it('sendReadData splits at MPS, every completion but the last ending on the RCB', () => {
    const { bench, dev } = configured((b) => new MemoryDevice(b));
    dev.memory.set(pattern(BAR0_BYTES, 2));
    const req = bench.memRead(BAR0 + 0x44, 256);
    bench.run();
    assert.deepEqual(dev.serveAll(), [3], 'returns the number of completions');
    bench.run();
    const cpls = bench.completionsFor(req);
    assert.deepEqual(
      cpls.map((c) => [c.data!.length, c.byteCount, c.lowerAddress]),
      [
        [124, 256, 0x44], // as much as MPS allows, ending on a 64-byte boundary (0xc0)
        [128, 132, 0x40], // a whole MPS, from and to a boundary
        [4, 4, 0x40], // the rest
      ],
    );
    for (const c of cpls) assert.equal(c.completerId, bdf(BUS, 0));
    assert.deepEqual(Uint8Array.from(cpls.flatMap((c) => [...c.data!])), dev.memory.subarray(0x44, 0x44 + 256));
  });
});

describe('PcieEndpoint transmit queue', () => {
  it('queues completions the link refuses and sends them in order once it has room, then tells the device', () => {
    // The bench buffers one completion and holds it; the link queues two more; the rest wait in the core.
    const { bench, dev } = configured((b) => new RegisterDevice(b), { upCredits: { ...AMPLE_CREDITS, completionHeaders: 1 }, txQueueTlps: 2 });
    bench.hold = true;
    const reqs = [0, 1, 2, 3, 4].map((i) => {
      dev.regs[0].set(4 * i, 100 + i);
      return bench.memRead(BAR0 + 4 * i, 4);
    });
    bench.run();
    assert.equal(bench.got.length, 1);
    assert.equal(dev.endpoint.txQueue.length, 2);
    const readyBefore = dev.readyCalls;
    bench.releaseHeld();
    bench.run();
    const cpls = bench.tlps();
    assert.deepEqual(
      cpls.map((c) => c.tag),
      reqs.map((r) => r.tag),
      'in request order',
    );
    assert.deepEqual(
      cpls.map((c) => dwordLe(c.data!, 0)),
      [100, 101, 102, 103, 104],
    );
    assert.equal(dev.endpoint.txQueue.length, 0);
    assert.ok(dev.readyCalls > readyBefore, 'the device hears the link has room');
  });
});

describe('PcieEndpoint DMA and MSI', () => {
  const DMA: DmaParams = { mpsBytes: 128, mrrsBytes: 256, maxReadTags: 4 };
  const MSI_ADDRESS = 0xfee0_0000;

  function enableMsi(bench: PcieBench, data: number): void {
    const cap = findCapability({ read32: (o) => bench.readConfig(BUS, o) }, CAP_ID.MSI);
    assert.ok(cap > 0, 'an MSI capability');
    bench.writeConfig(BUS, cap + 4, MSI_ADDRESS);
    bench.writeConfig(BUS, cap + 8, 0);
    bench.writeConfig(BUS, cap + 0x0c, data);
    bench.writeConfig(BUS, cap, 1 << 16); // message control: MSI enable
  }

  it('a target-only endpoint has no DMA engine and no MSI', () => {
    const { dev } = configured((b) => new RegisterDevice(b, { msi: true }));
    assert.equal(dev.endpoint.dma, null);
    assert.equal(dev.endpoint.msi(), false);
  });

  it('msi() sends nothing until software enables MSI, then the programmed data to the programmed address', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b, { dma: DMA, msi: true }));
    assert.equal(dev.endpoint.msi(), false);
    bench.run();
    assert.equal(bench.got.length, 0);
    enableMsi(bench, 0x4021);
    bench.got.length = 0;
    assert.equal(dev.endpoint.msi(), true);
    bench.run();
    const [m] = bench.tlps();
    assert.equal(m.kind, 'MWr');
    assert.equal(m.address, MSI_ADDRESS);
    assert.equal(m.requesterId, bdf(BUS, 0));
    assert.deepEqual([...m.data!], [0x21, 0x40, 0, 0]);
  });

  it('an MSI cannot pass the DMA writes before it, even when the link refuses them', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b, { dma: DMA, msi: true }), { upCredits: { ...AMPLE_CREDITS, postedHeaders: 1 }, txQueueTlps: 2 });
    enableMsi(bench, 0x31);
    bench.got.length = 0;
    bench.hold = true;
    const dma = dev.endpoint.dma!;
    dma.write(0x8000_0000, pattern(1024, 3)); // 8 MWr of MPS: one buffered, two queued, the rest refused
    assert.equal(dev.endpoint.msi(), true);
    bench.run();
    assert.equal(bench.got.length, 1);
    bench.releaseHeld();
    bench.run();
    const writes = bench.tlps();
    assert.equal(writes.length, 9);
    assert.deepEqual(
      writes.slice(0, 8).map((t) => t.address),
      Array.from({ length: 8 }, (_, i) => 0x8000_0000 + 128 * i),
    );
    assert.equal(writes[8].address, MSI_ADDRESS, 'the interrupt comes after the data it announces');
  });

  it('DMA reads go out with the completer id as requester and take their completions', () => {
    const { bench, dev } = configured((b) => new RegisterDevice(b, { dma: DMA }));
    let got: Uint8Array | null = null;
    dev.endpoint.dma!.read([{ address: 0x9000_0000, lengthBytes: 8 }], (d) => (got = d));
    bench.run();
    const [rd] = bench.tlps();
    assert.equal(rd.kind, 'MRd');
    assert.equal(rd.requesterId, bdf(BUS, 0));
    bench.send(Tlp.completion(rd, BENCH_ID, CPL_STATUS.SC, pattern(8, 4), 8, rd.address));
    bench.run();
    assert.deepEqual(got, pattern(8, 4));
    assert.equal(dev.counters.unsupportedRequests, 0, 'an expected completion is not an error');
  });
});

describe('register helpers', () => {
  it('dwordAt reads little-endian DWs; dwords builds them from a register function', () => {
    const d = new Uint8Array([0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff]);
    assert.equal(dwordAt(d, 0), 0x12345678);
    assert.equal(dwordAt(d, 4), 0xffffffff);
    assert.deepEqual([...dwords(0x10, 8, (off) => off)], [0x10, 0, 0, 0, 0x14, 0, 0, 0]);
  });
});
