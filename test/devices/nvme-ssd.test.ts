import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSuccess, STATUS, statusName, type NvmeStatus } from '../../src/devices/nvme/nvme-defs.js';
import { NvmeSsd, sliceSegments } from '../../src/devices/nvme-ssd.js';
import { expectedPattern, SparseMemory } from '../../src/devices/sparse-memory.js';
import type { BlockStore } from '../../src/devices/block-store.js';
import type { NvmeDriver } from '../../src/host/nvme-driver.js';
import type { PciePort } from '../../src/pcie/link.js';
import type { Tlp } from '../../src/pcie/tlp.js';
import { boot, type BootedHost } from '../../src/runtime/boot.js';
import { buildFabric, type Fabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

interface Booted {
  fabric: Fabric;
  host: BootedHost;
  ssd: NvmeSsd;
  driver: NvmeDriver;
  /** Every TLP the SSD sent up its link. */
  sent: Tlp[];
}

function bootDefault(seed = 1): Booted {
  const fabric = buildFabric(loadTopology(), seed);
  const host = boot(fabric, { maxTransferBytes: 131072 });
  const slot = fabric.slots[0];
  assert.ok(slot.device instanceof NvmeSsd);
  const ssd = slot.device as NvmeSsd; // in memory: no storeFor given
  // Observe the SSD's upstream TLPs where its bridge receives them.
  const sent: Tlp[] = [];
  const bridge = slot.bridge;
  const orig = bridge.receiveTlp.bind(bridge);
  bridge.receiveTlp = (tlp: Tlp, port: PciePort) => {
    sent.push(tlp);
    orig(tlp, port);
  };
  return { fabric, host, ssd, driver: host.manager.lookup('sda').driver, sent };
}

function io(b: Booted, op: 'read' | 'write', slba: number, blocks: number, segs: { address: number; lengthBytes: number }[]): NvmeStatus {
  let st: NvmeStatus | null = null;
  b.driver.submitIo(op, slba, blocks, segs, (s) => (st = s));
  b.fabric.scheduler.run({ stop: () => st !== null, maxEvents: 5e6 });
  assert.ok(st, `${op} at block ${slba} did not complete`);
  return st;
}

function data(n: number, seed: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (seed + i * 29 + (i >> 9)) & 0xff;
  return d;
}

describe('NvmeSsd through the booted default fabric', () => {
  it('boot found both SSDs with the configured capacity and block size', () => {
    const b = bootDefault();
    const sda = b.host.manager.lookup('sda');
    assert.equal(sda.blockBytes, 512);
    assert.equal(sda.capacityBytes, 256e9);
    assert.equal(sda.serial, 'OCZ-M84-0001');
    assert.equal(b.host.manager.lookup('sdb').serial, 'OCZ-M84-0002');
    assert.equal(b.ssd.blocks, 256e9 / 512);
  });

  it('a read beyond capacity fails with LBA Out of Range and moves no data', () => {
    const b = bootDefault();
    const dest = b.host.allocator.alloc(4096);
    b.fabric.rootComplex.memory.write(dest, new Uint8Array(4096).fill(0x5a));
    const before = { ...b.ssd.counters };
    const dmaBefore = b.fabric.trace.read('ssd.box0.slot0');
    const blocks = b.ssd.blocks;
    // Straddling the end of the namespace.
    let st = io(b, 'read', blocks - 4, 8, [{ address: dest, lengthBytes: 4096 }]);
    assert.deepEqual(st, STATUS.LBA_OUT_OF_RANGE);
    assert.equal(st.sc, 0x80);
    // Entirely beyond it.
    st = io(b, 'read', blocks + 1000, 1, [{ address: dest, lengthBytes: 512 }]);
    assert.equal(st.sc, 0x80);
    assert.deepEqual(b.fabric.rootComplex.memory.read(dest, 4096), new Uint8Array(4096).fill(0x5a), 'destination untouched');
    assert.equal(b.ssd.counters.bytesRead, before.bytesRead);
    assert.equal(b.ssd.counters.errors, before.errors + 2);
    // Only completion entries (16 B) and MSIs (4 B) were written: no data.
    const dmaAfter = b.fabric.trace.read('ssd.box0.slot0');
    assert.equal(dmaAfter['dma.bytesWritten'] - dmaBefore['dma.bytesWritten'], 2 * (16 + 4));
    assert.equal(dmaAfter['readBytes'] - dmaBefore['readBytes'], 0, 'the media was not read');
  });

  it('a write beyond capacity fails and reads no data from the host', () => {
    const b = bootDefault();
    const src = b.host.allocator.alloc(4096);
    const dmaBefore = b.fabric.trace.read('ssd.box0.slot0');
    const st = io(b, 'write', b.ssd.blocks, 8, [{ address: src, lengthBytes: 4096 }]);
    assert.equal(st.sc, 0x80);
    const dmaAfter = b.fabric.trace.read('ssd.box0.slot0');
    assert.equal(dmaAfter['dma.bytesRead'] - dmaBefore['dma.bytesRead'], 64, 'only the 64-byte command was fetched');
    assert.equal(b.ssd.counters.bytesWritten, 0);
  });

  it('the last block of the namespace is readable', () => {
    const b = bootDefault();
    const last = (b.ssd.blocks - 1) * 512;
    b.ssd.store.fillPattern(last, 512, 77);
    const dest = b.host.allocator.alloc(512);
    assert.ok(isSuccess(io(b, 'read', b.ssd.blocks - 1, 1, [{ address: dest, lengthBytes: 512 }])));
    assert.deepEqual(b.fabric.rootComplex.memory.read(dest, 512), expectedPattern(77, last, 512));
  });

  it('a read into host memory lands the pattern-filled range', () => {
    const b = bootDefault();
    const off = 1 << 20;
    const len = 16 * 1024;
    b.ssd.store.fillPattern(off, len, 0xbeef);
    const dest = b.host.allocator.alloc(len);
    const st = io(b, 'read', off / 512, len / 512, [{ address: dest, lengthBytes: len }]);
    assert.ok(isSuccess(st));
    assert.deepEqual(b.fabric.rootComplex.memory.read(dest, len), expectedPattern(0xbeef, off, len));
    assert.equal(b.ssd.counters.bytesRead, len);
    // The data crossed the host link downstream-to-upstream as MWr payload.
    assert.ok(b.fabric.trace.read('hostLink.upstream').MWrPayloadBytes >= len);
  });

  it('a write from host memory lands in the SSD store', () => {
    const b = bootDefault();
    const len = 8192;
    const src = b.host.allocator.alloc(len);
    const d = data(len, 3);
    b.fabric.rootComplex.memory.write(src, d);
    const st = io(b, 'write', 100, len / 512, [{ address: src, lengthBytes: len }]);
    assert.ok(isSuccess(st));
    assert.deepEqual(b.ssd.store.read(100 * 512, len), d);
    assert.deepEqual(b.ssd.store.read(100 * 512 - 512, 512), new Uint8Array(512), 'neighbouring blocks untouched');
    assert.deepEqual(b.ssd.store.read(100 * 512 + len, 512), new Uint8Array(512));
    assert.equal(b.ssd.counters.bytesWritten, len);
  });

  it('64 KiB transfers that need a PRP list work both ways, also from an offset within a page', () => {
    const b = bootDefault();
    const len = 64 * 1024;
    const mem = b.fabric.rootComplex.memory;
    // Read 64 KiB into a buffer that starts 512 bytes into a page (PRP1 with an offset).
    b.ssd.store.fillPattern(0, len, 11);
    const dest = b.host.allocator.alloc(len + 4096) + 512;
    assert.ok(isSuccess(io(b, 'read', 0, len / 512, [{ address: dest, lengthBytes: len }])));
    assert.deepEqual(mem.read(dest, len), expectedPattern(11, 0, len));
    // Write it back elsewhere on the SSD, from the same buffer.
    assert.ok(isSuccess(io(b, 'write', 4096, len / 512, [{ address: dest, lengthBytes: len }])));
    assert.deepEqual(b.ssd.store.read(4096 * 512, len), expectedPattern(11, 0, len));
    // 128 KiB, the driver's max transfer.
    const big = 128 * 1024;
    const src = b.host.allocator.alloc(big);
    const d = data(big, 9);
    mem.write(src, d);
    assert.ok(isSuccess(io(b, 'write', 8192, big / 512, [{ address: src, lengthBytes: big }])));
    assert.deepEqual(b.ssd.store.read(8192 * 512, big), d);
  });

  it('scatter-gather: a buffer of several host segments', () => {
    const b = bootDefault();
    const a1 = b.host.allocator.alloc(8192);
    b.host.allocator.alloc(4096); // a hole between the segments
    const a2 = b.host.allocator.alloc(8192);
    b.ssd.store.fillPattern(0, 16384, 5);
    assert.ok(
      isSuccess(
        io(b, 'read', 0, 32, [
          { address: a1, lengthBytes: 8192 },
          { address: a2, lengthBytes: 8192 },
        ]),
      ),
    );
    const mem = b.fabric.rootComplex.memory;
    assert.deepEqual(mem.read(a1, 8192), expectedPattern(5, 0, 8192));
    assert.deepEqual(mem.read(a2, 8192), expectedPattern(5, 8192, 8192));
    assert.deepEqual(mem.read(a1 + 8192, 4096), new Uint8Array(4096), 'the hole is untouched');
  });

  it('several commands in flight complete with the right data each', () => {
    const b = bootDefault();
    const n = 6;
    const len = 32 * 1024;
    b.ssd.store.fillPattern(0, n * len, 21);
    const dests = Array.from({ length: n }, () => b.host.allocator.alloc(len));
    const statuses: (NvmeStatus | null)[] = new Array(n).fill(null);
    // Submit in reverse LBA order so completion order and buffer order differ from submission order.
    for (let i = n - 1; i >= 0; i--) b.driver.submitIo('read', (i * len) / 512, len / 512, [{ address: dests[i], lengthBytes: len }], (s) => (statuses[i] = s));
    b.fabric.scheduler.run({ stop: () => statuses.every((s) => s !== null), maxEvents: 5e6 });
    for (let i = 0; i < n; i++) {
      assert.ok(statuses[i] && isSuccess(statuses[i]!), `command ${i}`);
      assert.deepEqual(b.fabric.rootComplex.memory.read(dests[i], len), expectedPattern(21, i * len, len));
    }
  });

  it('MWr carry at most MPS and MRd request at most MRRS bytes; nothing crosses a 4 KiB boundary', () => {
    const b = bootDefault();
    const t = b.fabric.topology;
    const len = 64 * 1024;
    const mem = b.fabric.rootComplex.memory;
    b.ssd.store.fillPattern(0, len, 1);
    const buf = b.host.allocator.alloc(len + 4096) + 64; // not MPS/MRRS aligned: only the 4 KiB rule keeps TLPs from crossing pages
    b.sent.length = 0;
    const before = b.fabric.trace.read('box0.slot0.link.upstream');
    assert.ok(isSuccess(io(b, 'read', 0, len / 512, [{ address: buf, lengthBytes: len }])));
    mem.write(buf, data(len, 4));
    assert.ok(isSuccess(io(b, 'write', 1024, len / 512, [{ address: buf, lengthBytes: len }])));
    assert.deepEqual(b.ssd.store.read(1024 * 512, len), data(len, 4));
    const after = b.fabric.trace.read('box0.slot0.link.upstream');

    const mwr = b.sent.filter((x) => x.kind === 'MWr');
    const mrd = b.sent.filter((x) => x.kind === 'MRd');
    assert.ok(mwr.length >= len / t.pcie.mpsBytes);
    assert.ok(mrd.length >= len / t.pcie.mrrsBytes);
    for (const w of mwr) {
      assert.ok(w.data!.length <= t.pcie.mpsBytes, `MWr of ${w.data!.length} B`);
      assert.ok(Math.floor(w.address / 4096) === Math.floor((w.address + w.data!.length - 1) / 4096), `MWr at 0x${w.address.toString(16)} crosses 4 KiB`);
    }
    for (const r of mrd) {
      const n = r.lengthDw * 4;
      assert.ok(n <= t.pcie.mrrsBytes, `MRd of ${n} B`);
      assert.ok(Math.floor(r.address / 4096) === Math.floor((r.address + n - 1) / 4096), `MRd at 0x${r.address.toString(16)} crosses 4 KiB`);
    }
    // The link's analyzer counters agree.
    const dMWr = after.MWr - before.MWr;
    const dPayload = after.MWrPayloadBytes - before.MWrPayloadBytes;
    assert.equal(dMWr, mwr.length);
    assert.ok(dPayload / dMWr <= t.pcie.mpsBytes);
    assert.ok(after.payloadBytes / after.MWr <= t.pcie.mpsBytes);
    assert.equal(after.MRd - before.MRd, mrd.length);
  });

  it('is deterministic: the same seed gives the same simulated completion time, another seed differs', () => {
    const run = (seed: number) => {
      const b = bootDefault(seed);
      b.ssd.store.fillPattern(0, 65536, 1);
      const dest = b.host.allocator.alloc(65536);
      const t0 = b.fabric.scheduler.now();
      io(b, 'read', 0, 128, [{ address: dest, lengthBytes: 65536 }]);
      return { boot: t0, io: b.fabric.scheduler.now() - t0 };
    };
    const a = run(1);
    assert.deepEqual(run(1), a);
    assert.notDeepEqual(run(2).io, a.io, 'latency jitter draws from the seeded stream');
  });
});

describe('sliceSegments', () => {
  it('returns the part of a segment list covering a byte range', () => {
    const segs = [
      { address: 0x1000, lengthBytes: 100 },
      { address: 0x5000, lengthBytes: 50 },
      { address: 0x9000, lengthBytes: 200 },
    ];
    assert.deepEqual(sliceSegments(segs, 0, 100), [{ address: 0x1000, lengthBytes: 100 }]);
    assert.deepEqual(sliceSegments(segs, 90, 70), [
      { address: 0x1000 + 90, lengthBytes: 10 },
      { address: 0x5000, lengthBytes: 50 },
      { address: 0x9000, lengthBytes: 10 },
    ]);
    assert.deepEqual(sliceSegments(segs, 150, 200), [{ address: 0x9000, lengthBytes: 200 }]);
    assert.deepEqual(sliceSegments(segs, 10, 0), []);
  });
});

describe('NvmeSsd Flush and an injected store', () => {
  it('a Flush completes once the store has made the writes before it durable, however late that is; the store is the builder\'s storeFor', () => {
    const calls: string[] = [];
    /** The store's answers to flushes, in order: it makes its bytes durable later (as a file's fdatasync off the event loop does). */
    const answers: boolean[] = [true, false];
    /** An in-memory store that records when it is asked to make its bytes durable, and answers 1 us later. */
    class RecordingStore extends SparseMemory {
      override write(addr: number, d: Uint8Array): void {
        calls.push(`write ${addr}`);
        super.write(addr, d);
      }
      override flush(done: (ok: boolean) => void): void {
        calls.push('flush');
        const ok = answers.shift()!;
        fabric.scheduler.schedule(1_000_000, () => {
          calls.push('durable');
          done(ok);
        });
      }
    }
    const fabric = buildFabric(loadTopology(), { seed: 1, storeFor: (name, bytes) => new RecordingStore(`${name}.flash`, bytes) });
    const host = boot(fabric, { maxTransferBytes: 131072 });
    const sda = host.manager.lookup('sda');
    const ssd = fabric.slots[0].device as NvmeSsd<BlockStore>;
    assert.ok(ssd.store instanceof RecordingStore);
    const buf = host.allocator.alloc(4096);
    fabric.rootComplex.memory.write(buf, data(4096, 3));
    let st: NvmeStatus | null = null;
    sda.driver.submitIo('write', 8, 8, [{ address: buf, lengthBytes: 4096 }], (s) => (st = s));
    fabric.scheduler.run({ stop: () => st !== null, maxEvents: 5e6 });
    assert.ok(isSuccess(st!), statusName(st!));
    let flushed: NvmeStatus | null = null;
    sda.driver.submitFlush((s) => (flushed = s));
    fabric.scheduler.run({ stop: () => flushed !== null, maxEvents: 5e6 });
    assert.ok(isSuccess(flushed!), statusName(flushed!));
    assert.equal(ssd.counters.flushes, 1);
    assert.deepEqual(calls.slice(-2), ['flush', 'durable'], 'the flush reached the store after the write, and completed after the store said durable');
    assert.ok(calls.includes('write 4096'));
    // A store that cannot make its bytes durable fails the Flush.
    let failed: NvmeStatus | null = null;
    sda.driver.submitFlush((s) => (failed = s));
    fabric.scheduler.run({ stop: () => failed !== null, maxEvents: 5e6 });
    assert.equal(statusName(failed!), statusName(STATUS.INTERNAL_ERROR));
  });
});
