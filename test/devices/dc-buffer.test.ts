import { concat } from '../helpers/bytes.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { TraceRegistry } from '../../src/core/trace.js';
import { DcBuffer, type DcBufferParams } from '../../src/devices/dc-buffer.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import { linkBytesPerSec, SKP_OVERHEAD_FRACTION } from '../../src/pcie/link-params.js';
import { bdf, CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';
import { asBurst, constituent, readBurst, readSet, splitParts } from '../../src/pcie/burst.js';

const BASE = 0xd000_0000;
const SIZE = 1 << 20;
const HOST_ID = bdf(0, 0);
const PORT_CREDITS: FcCredits = { postedHeaders: 8, postedDataBytes: 4096, nonPostedHeaders: 8, completionHeaders: Infinity, completionDataBytes: Infinity };
const HOST_CREDITS: FcCredits = { postedHeaders: 64, postedDataBytes: 1 << 16, nonPostedHeaders: 64, completionHeaders: Infinity, completionDataBytes: Infinity };

/** The requester on the link's up port: sends with back-pressure, records completions (with arrival times). */
class Requester implements TlpReceiver {
  readonly got: { tlp: Tlp; t: number }[] = [];
  private readonly out: Tlp[] = [];
  constructor(
    private readonly s: VirtualScheduler,
    readonly port: PciePort,
  ) {
    port.attach(this);
  }
  receiveTlp(tlp: Tlp, port: PciePort): void {
    this.got.push({ tlp, t: this.s.now() });
    port.release(tlp);
  }
  send(tlp: Tlp): void {
    this.out.push(tlp);
    this.portReady();
  }
  portReady(): void {
    while (this.out.length > 0 && this.port.send(this.out[0])) this.out.shift();
  }
  cpls(): Tlp[] {
    return this.got.map((g) => g.tlp).filter((t) => t.kind === 'CplD' || t.kind === 'Cpl');
  }
}

function setup(p: Partial<DcBufferParams> = {}, opts: { enable?: boolean } = {}) {
  const s = new VirtualScheduler();
  const trace = new TraceRegistry();
  const link = new PcieLink('dc.link', s, { generation: 1, lanes: 4, latencyNs: 100, mpsBytes: 128, txQueueTlps: 8 }, HOST_CREDITS, PORT_CREDITS, trace);
  const params: DcBufferParams = { sizeBytes: SIZE, ddrMBps: 1600, ddrLatencyNs: 150, rxRequestFifoEntries: 16, pendingReadFifoEntries: 8, mpsBytes: 128, ...p };
  const dc = new DcBuffer('dc', s, params, link.down, { generation: 1, lanes: 4 }, trace);
  const host = new Requester(s, link.up);
  if (opts.enable ?? true) {
    dc.config.write32(0x10, BASE);
    dc.config.write32(0x04, 0x6);
  }
  return { s, link, dc, host, trace, params };
}

function pattern(n: number, seed: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (seed * 31 + i * 7) & 0xff;
  return d;
}

/** Splits a write into MWr of at most 128 B. */
function writeTlps(address: number, data: Uint8Array): Tlp[] {
  const out: Tlp[] = [];
  for (let off = 0; off < data.length; off += 128) out.push(Tlp.memWrite(HOST_ID, address + off, data.subarray(off, Math.min(off + 128, data.length))));
  return out;
}


describe('DcBuffer configuration', () => {
  it('presents the FPGA card: BAR0 of the configured size, Altera vendor id', () => {
    const { dc } = setup({}, { enable: false });
    assert.equal(dc.config.vendorId(), 0x1172);
    assert.equal(dc.config.deviceId(), 0xdc00);
    assert.equal(dc.config.barSize(0), SIZE);
    // BAR sizing: write all ones, read back the size mask.
    dc.config.write32(0x10, 0xffffffff);
    assert.equal((dc.config.read32(0x10) & ~0xf) >>> 0, (~(SIZE - 1)) >>> 0);
    dc.config.write32(0x10, BASE);
    assert.equal(dc.config.barAddress(0), BASE);
  });

  it('answers configuration reads over the link with its bus number as completer', () => {
    const { s, host } = setup();
    host.send(Tlp.config('CfgRd0', HOST_ID, 9, bdf(5, 0), 0x00, null));
    s.run();
    const [c] = host.cpls();
    assert.equal(c.kind, 'CplD');
    assert.equal(c.tag, 9);
    assert.equal(c.completerId, bdf(5, 0));
    const v = c.data![0] | (c.data![1] << 8) | (c.data![2] << 16) | (c.data![3] << 24);
    assert.equal(v >>> 0, ((0xdc00 << 16) | 0x1172) >>> 0);
  });
});

describe('DcBuffer memory requests', () => {
  it('MWr then MRd of the same address returns the written bytes in CplDs of at most MPS', () => {
    const { s, dc, host } = setup();
    const addr = BASE + 0x1040;
    const data = pattern(512, 1);
    for (const t of writeTlps(addr, data)) host.send(t);
    host.send(Tlp.memRead(HOST_ID, 7, addr, 512));
    s.run();
    const cpls = host.cpls();
    assert.equal(cpls.length, 4);
    cpls.forEach((c, i) => {
      assert.equal(c.kind, 'CplD');
      assert.equal(c.status, CPL_STATUS.SC);
      assert.equal(c.tag, 7);
      assert.equal(c.requesterId, HOST_ID);
      assert.ok(c.data!.length <= 128);
      assert.equal(c.lengthDw * 4, c.data!.length);
      assert.equal(c.byteCount, 512 - 128 * i, 'byte count is what remains, this completion included');
      assert.equal(c.lowerAddress, (addr + 128 * i) & 0x7f);
    });
    assert.deepEqual(concat(...cpls.map((c) => c.data!)), data);
    assert.deepEqual(dc.ddr.read(0x1040, 512), data);
    assert.equal(dc.counters.writeRequests, 4);
    assert.equal(dc.counters.bytesWritten, 512);
    assert.equal(dc.counters.readRequests, 1);
    assert.equal(dc.counters.bytesRead, 512);
    assert.equal(dc.counters.completions, 4);
  });

  it('completions follow the DC buffer MPS setting', () => {
    const { s, host } = setup({ mpsBytes: 256 });
    host.send(Tlp.memRead(HOST_ID, 1, BASE, 1024));
    s.run();
    assert.deepEqual(
      host.cpls().map((c) => [c.data!.length, c.byteCount]),
      [
        [256, 1024],
        [256, 768],
        [256, 512],
        [256, 256],
      ],
    );
  });

  it('splits completions of an unaligned read only at naturally aligned RCB boundaries', () => {
    // PCIe Base Spec 2.3.1.1: when a read is completed by several completions, every completion but
    // the last must end on a naturally aligned RCB boundary (64 B, or 128 B if so programmed); the
    // first starts at the request address. A 256-byte read at offset 0x44 may be 60 + 128 + 68, say.
    const { s, host } = setup();
    const data = pattern(256, 8);
    for (const t of writeTlps(BASE + 0x44, data)) host.send(t);
    host.send(Tlp.memRead(HOST_ID, 1, BASE + 0x44, 256));
    s.run();
    const cpls = host.cpls();
    assert.deepEqual(concat(...cpls.map((c) => c.data!)), data);
    for (const c of cpls) assert.ok(c.data!.length <= 128);
    for (const c of cpls.slice(0, -1)) {
      const end = (c.lowerAddress + c.data!.length) % 64;
      assert.equal(end, 0, `completion at lower address 0x${c.lowerAddress.toString(16)} of ${c.data!.length} B does not end on a 64-byte boundary`);
    }
  });

  it('read timing: DDR transfer then latency, then completions serialize on the link', () => {
    const { s, link, host } = setup({ ddrMBps: 1600, ddrLatencyNs: 150 });
    host.send(Tlp.memRead(HOST_ID, 1, BASE, 512));
    s.run();
    const pb = 1e12 / (linkBytesPerSec(1, 4) * (1 - SKP_OVERHEAD_FRACTION));
    const mrdArrives = Math.ceil(20 * pb) + link.latencyPs;
    const ddrDone = mrdArrives + 512 * 625 + 150_000; // 1600 MB/s = 625 ps/B
    const cplDur = Math.ceil(148 * pb);
    assert.deepEqual(
      host.got.map((g) => g.t),
      [1, 2, 3, 4].map((k) => ddrDone + k * cplDur + link.latencyPs),
    );
  });

  it('completions come back in request order, whatever their sizes', () => {
    const { s, host } = setup();
    const sizes = [512, 4, 256, 64, 128, 8, 512, 32];
    sizes.forEach((n, tag) => host.send(Tlp.memRead(HOST_ID, tag, BASE + 0x2000 * tag, n)));
    s.run();
    const cpls = host.cpls();
    const tags = cpls.map((c) => c.tag);
    const expectedTags = sizes.flatMap((n, tag) => new Array(Math.ceil(n / 128)).fill(tag));
    assert.deepEqual(tags, expectedTags);
    for (const [tag, n] of sizes.entries()) {
      const total = cpls.filter((c) => c.tag === tag).reduce((a, c) => a + c.data!.length, 0);
      assert.equal(total, n);
    }
  });

  it('rx_request_fifo back-pressure: a slow DDR stalls admission, bounds the FIFO, and withholds link credits', () => {
    const { s, dc, host, link } = setup({ rxRequestFifoEntries: 2, ddrMBps: 10 });
    const data = pattern(64 * 128, 3);
    for (const t of writeTlps(BASE, data)) host.send(t);
    s.run({ maxEvents: 1e6 });
    assert.ok(dc.counters.rxFifoFullStalls > 0);
    assert.equal(dc.counters.maxRxFifo, 2);
    assert.equal(dc.counters.writeRequests, 64);
    assert.deepEqual(dc.ddr.read(0, data.length), data);
    // The sender felt it as PCIe flow control.
    assert.ok(link.up.counters().creditStalls > 0);
    // 8 KiB through a 10 MB/s DDR takes at least 819.2 us of simulated time.
    assert.ok(s.now() >= (64 * 128 * 1e6) / 10, `finished at ${s.now()} ps`);
  });

  it('pending_read_fifo bound: never more reads pending than its entries, and all reads complete correctly', () => {
    const { s, dc, host } = setup({ pendingReadFifoEntries: 3, rxRequestFifoEntries: 16, ddrMBps: 100 });
    const data = pattern(20 * 64, 5);
    dc.ddr.write(0, data);
    for (let tag = 0; tag < 20; tag++) host.send(Tlp.memRead(HOST_ID, tag, BASE + 64 * tag, 64));
    s.run({ maxEvents: 1e6 });
    assert.equal(dc.counters.maxPendingReads, 3);
    assert.ok(dc.counters.pendingFifoFullStalls > 0);
    assert.ok(dc.counters.maxRxFifo <= 3, 'only reads were offered, so the pending FIFO bounds the request FIFO too');
    const cpls = host.cpls();
    assert.deepEqual(
      cpls.map((c) => c.tag),
      Array.from({ length: 20 }, (_, i) => i),
    );
    cpls.forEach((c, i) => assert.deepEqual(c.data, data.subarray(64 * i, 64 * i + 64)));
  });

  it('a mixed stream of writes and reads sees every write that preceded a read', () => {
    const { s, host } = setup({ rxRequestFifoEntries: 4, pendingReadFifoEntries: 2, ddrMBps: 200 });
    const expected: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      const d = pattern(128, 100 + i);
      host.send(Tlp.memWrite(HOST_ID, BASE + 0x100, d));
      host.send(Tlp.memRead(HOST_ID, i, BASE + 0x100, 128));
      expected.push(d);
    }
    s.run({ maxEvents: 1e6 });
    const cpls = host.cpls();
    assert.equal(cpls.length, 10);
    cpls.forEach((c, i) => {
      assert.equal(c.tag, i);
      assert.deepEqual(c.data, expected[i]);
    });
  });

  it('requests outside the BAR: MRd gets Unsupported Request, MWr is dropped', () => {
    const { s, dc, host } = setup();
    host.send(Tlp.memRead(HOST_ID, 1, BASE + SIZE, 64)); // just past the end
    host.send(Tlp.memRead(HOST_ID, 2, BASE + SIZE - 64, 128)); // starts inside, ends outside
    host.send(Tlp.memRead(HOST_ID, 3, BASE - 0x1000, 64)); // below
    host.send(Tlp.memWrite(HOST_ID, BASE + SIZE, pattern(64, 9)));
    host.send(Tlp.memRead(HOST_ID, 4, BASE + SIZE - 64, 64)); // the last 64 bytes are fine
    s.run();
    const cpls = host.cpls();
    const byTag = new Map(cpls.map((c) => [c.tag, c]));
    for (const tag of [1, 2, 3]) {
      const c = byTag.get(tag)!;
      assert.equal(c.kind, 'Cpl', `tag ${tag}`);
      assert.equal(c.status, CPL_STATUS.UR);
      assert.equal(c.data, null);
    }
    assert.equal(byTag.get(4)!.kind, 'CplD');
    assert.equal(byTag.get(4)!.status, CPL_STATUS.SC);
    assert.equal(dc.counters.writeRequests, 0);
    assert.equal(dc.counters.readRequests, 1);
  });

  it('with memory space disabled every MRd gets Unsupported Request', () => {
    const { s, dc, host } = setup({}, { enable: false });
    dc.config.write32(0x10, BASE); // BAR assigned but memory space still off
    host.send(Tlp.memRead(HOST_ID, 1, BASE, 64));
    host.send(Tlp.memWrite(HOST_ID, BASE, pattern(64, 1)));
    s.run();
    const cpls = host.cpls();
    assert.equal(cpls.length, 1);
    assert.equal(cpls[0].status, CPL_STATUS.UR);
    assert.equal(dc.counters.writeRequests, 0);
    assert.deepEqual(dc.ddr.read(0, 64), new Uint8Array(64));
  });

  it('registers its counters in the trace', () => {
    const { s, host, trace } = setup();
    host.send(Tlp.memWrite(HOST_ID, BASE, pattern(128, 1)));
    s.run();
    assert.equal(trace.read('dcbuffer.dc').writeRequests, 1);
    assert.ok(trace.read('dcbuffer.dc').ddrBusyPs > 0);
  });
});

describe('DcBuffer at burst granularity: the Fig. 4 FIFOs in closed form', () => {
  /** Writes then reads the same 4 KiB, as bursts (burst) or TLP by TLP, with FIFOs that bind. */
  function run(burst: boolean) {
    const ctx = setup({ rxRequestFifoEntries: 4, pendingReadFifoEntries: 2, ddrMBps: 200 });
    if (burst) ctx.link.up.burstBytes = ctx.link.down.burstBytes = 65536;
    const data = pattern(4096, 11);
    const lens = [512, 512, 512, 512, 512, 512, 512, 512];
    const tags = lens.map((_, i) => i);
    if (burst) {
      for (let off = 0; off < data.length; off += 1024) ctx.host.send(asBurst(Tlp.memWrite(HOST_ID, BASE + off, data.subarray(off, off + 1024)), splitParts(BASE + off, 1024, (_a, rest) => Math.min(128, rest))));
      ctx.host.send(readBurst(HOST_ID, readSet(BASE, tags.slice(0, 4), lens.slice(0, 4))));
      ctx.host.send(readBurst(HOST_ID, readSet(BASE + 2048, tags.slice(4), lens.slice(4))));
    } else {
      for (const t of writeTlps(BASE, data)) ctx.host.send(t);
      for (const tag of tags) ctx.host.send(Tlp.memRead(HOST_ID, tag, BASE + 512 * tag, 512));
    }
    ctx.s.run({ maxEvents: 1e6 });
    // Every completion constituent, in order, with when it arrived and what it carried.
    const cpls: { tag: number; t: number; data: Uint8Array }[] = [];
    for (const g of ctx.host.got) {
      if (g.tlp.kind !== 'CplD') continue;
      for (let i = 0; i < g.tlp.count; i++) {
        const c = g.tlp.count > 1 || g.tlp.readyPs ? constituent(g.tlp, i) : g.tlp;
        cpls.push({ tag: c.tag, t: g.tlp.readyPs ? g.tlp.readyPs[i] : g.t, data: c.data! });
      }
    }
    return { ...ctx, data, cpls };
  }

  it('every read sees the writes before it, the FIFOs stay within their depths, and the completions arrive when per-TLP\'s do', () => {
    const tlp = run(false);
    const b = run(true);
    assert.ok(b.dc.counters.rxFifoFullStalls > 0 && b.dc.counters.pendingFifoFullStalls > 0, 'both FIFOs bind');
    assert.ok(b.dc.counters.maxRxFifo <= 4 && b.dc.counters.maxPendingReads <= 2, `at most the depths: ${b.dc.counters.maxRxFifo}, ${b.dc.counters.maxPendingReads}`);
    assert.equal(b.dc.counters.writeRequests, 32);
    assert.equal(b.dc.counters.readRequests, 8);
    assert.equal(b.cpls.length, tlp.cpls.length);
    assert.deepEqual(concat(...b.cpls.map((c) => c.data)), b.data);
    assert.deepEqual(b.cpls.map((c) => c.tag), tlp.cpls.map((c) => c.tag));
    // Per-TLP serves each request as it arrives; the bursts' requests arrive as per-TLP's do (one sender,
    // the link to itself), so the DDR times and the completions' are the same, up to the credit loop's
    // batching (credits return per burst): within 2% of the last completion's time.
    const last = tlp.cpls[tlp.cpls.length - 1].t;
    b.cpls.forEach((c, i) => assert.ok(Math.abs(c.t - tlp.cpls[i].t) <= 0.02 * last, `completion ${i}: ${c.t} ps against per-TLP's ${tlp.cpls[i].t}`));
  });
});
